//! `xe help`: the usage text, the common or full command list, or one command's parameters
//! (`cli_frontend.ml` `rio_help`; the one-line descriptions are this project's own).

use super::argv::Params;
use super::print::Out;
use super::table::{Command, Selectors};

/// The connection options, as both usage texts list them (`--minimal` and `--trace` only in the
/// client's).
fn options(client: bool) -> String {
    let mut out = String::from(
        "    [ -s <server> ]            XenServer host
    [ -p <port> ]              XenServer port number
    [ -u <username> -pw <password> | -pwf <password file> ]
                               User authentication (password or file)
    [ --nossl ]                Disable SSL/TLS
    [ --debug ]                Enable debug output
    [ --debug-on-fail ]        Enable debug output only on failure
",
    );
    if client {
        out.push_str("    [ --minimal ]              Output only values in a comma-separated lists\n");
    }
    out.push_str("    [ --traceparent <value> ]  Distributed tracing context\n");
    if client {
        out.push_str("    [ --trace ]                Show task stacktrace on failure\n");
    }
    out.push_str("    [ <other arguments> ... ]  Command-specific options\n");
    out
}

/// The usage text, as xe prints it to stderr for `xe`, `xe --help` (`newcli.ml` `usage`).
pub fn usage(argv0: &str) -> String {
    format!(
        "Usage:\n  {argv0} <command>\n{}\nA full list of commands can be obtained by running\n  {argv0} help -s <server> -p <port>\n",
        options(true)
    )
}

/// The head of `xe help` (`cli_frontend.ml` `rio_help`).
fn help_header(argv0: &str) -> String {
    format!(
        "Usage:\n  {argv0} <command>\n{}\nTo get help on a specific command:\n  {argv0} help <command>\n\n",
        options(false)
    )
}

/// `make_list`: names joined with `, ` in lines of at most about 74 columns, indented by 4.
fn make_list(names: &[String]) -> Vec<String> {
    let indent = "    ";
    let Some((first, rest)) = names.split_first() else { return vec![indent.to_string()] };
    let mut lines = Vec::new();
    let mut cur = format!("{indent}{first}");
    for name in rest {
        if cur.len() + name.len() > 74 {
            lines.push(std::mem::replace(&mut cur, format!("{indent}{name}")));
        } else {
            cur = format!("{cur}, {name}");
        }
    }
    lines.push(cur);
    lines
}

pub fn help(table: &[Command], params: &Params, out: &mut Out) {
    let skip = ["server", "username", "password", "port", "minimal", "all"];
    let asked: Vec<&str> = params.0.iter().map(|(k, _)| k.as_str()).filter(|k| !skip.contains(k)).collect();
    if !asked.is_empty() {
        for name in asked {
            match table.iter().find(|c| c.name == name) {
                Some(c) => {
                    let mut optn = c.optn.clone();
                    match c.selectors {
                        Selectors::Vm => optn.push("<vm-selectors>".into()),
                        Selectors::Host => optn.push("<host-selectors>".into()),
                        Selectors::Sr => optn.push("<sr-selectors>".into()),
                        Selectors::None => {}
                    }
                    let desc = match c.selectors {
                        Selectors::Vm => format!("{} {}", c.help, super::select::VM_SELECTORS_HELP),
                        _ => c.help.clone(),
                    };
                    out.table(&[vec![
                        ("command name        ".into(), c.name.clone()),
                        ("reqd params     ".into(), c.reqd.join(", ")),
                        ("optional params ".into(), optn.join(", ")),
                        ("description     ".into(), desc),
                    ]]);
                }
                None => out.list(&[format!("Unknown command '{name}'")]),
            }
        }
        return;
    }
    let all = params.get("all") == Some("true");
    let names: Vec<String> = table.iter().filter(|c| all || c.standard).map(|c| c.name.clone()).collect();
    if out.minimal() {
        out.list(&names);
        return;
    }
    if all {
        let (host, other): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| n.starts_with("host-"));
        let (vm, other): (Vec<String>, Vec<String>) = other.into_iter().partition(|n| n.starts_with("vm-"));
        out.list(&[format!("{}Full command list\n-----------------\n", help_header("xe"))]);
        out.list(&make_list(&host));
        out.list(&make_list(&[String::new()]));
        out.list(&make_list(&vm));
        out.list(&make_list(&[String::new()]));
        out.list(&make_list(&other));
    } else {
        let head = format!(
            "{}To get a full listing of commands:\n  xe help --all\n\nCommon command list\n-------------------\n",
            help_header("xe")
        );
        out.list(&[head]);
        out.list(&make_list(&names));
    }
}
