//! `xe`: the XenServer command line, speaking the XenAPI (JSON-RPC) to a xenledger server.
//! The syntax, the layouts, the error texts and the exit codes are xe's (xapi's
//! `ocaml/xe-cli/newcli.ml` on the client side and `ocaml/xapi-cli-server/` on the server side,
//! where xapi runs the commands; here the client runs them over the API). docs/xe.md says what is
//! covered and how it differs.
//!
//! `argv` parses the command line, `table` holds every command (generated per class from
//! `records`'s field tables by `generic`, and the hand-written ones in `vm`, `storage`, `net`,
//! `tasks`), `print` lays the output out, `failure` words the errors, `progress` draws the bar of
//! a long operation, `completion` writes the bash completion from the same table.

pub mod api;
pub mod argv;
pub mod completion;
pub mod failure;
pub mod generic;
pub mod help;
mod net;
pub mod print;
pub mod progress;
pub mod records;
pub mod select;
mod storage;
pub mod table;
mod tasks;
mod vm;

use std::io::Write;
use std::process::ExitCode;

use argv::{Environment, Invocation};
use failure::XeError;

/// What a command works with: the logged-in API, the lookups it has made, its output.
pub struct Ctx {
    pub api: api::Api,
    pub res: records::Resolver,
    pub out: print::Out,
}

impl Ctx {
    /// `CLASS.get_by_uuid(uuid=)`, then `method` on it: the shape of many one-object commands.
    pub fn on_uuid(&mut self, params: &argv::Params, class: &str, method: &str) -> Result<(), XeError> {
        let r = records::ref_by_uuid(&self.api, class, params.req("uuid")?)?;
        self.api.call(method, vec![api::s(&r)])?;
        Ok(())
    }

    /// Prints the uuid of a new object, as the creating commands do.
    pub fn print_uuid_of(&mut self, class: &str, r: &str) -> Result<(), XeError> {
        let uuid = self.api.call_str(&format!("{class}.get_uuid"), vec![api::s(r)])?;
        self.out.list(&[uuid]);
        Ok(())
    }
}

/// Runs `xe ARGS…` (without argv\[0\]) and answers the exit code: 0 on success, 1 on failure
/// with the error on stderr.
pub fn main(args: &[String]) -> ExitCode {
    let env = Environment::from_process();
    match run(args, &env) {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(e @ XeError::Multiple(_)) => {
            println!("{e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Runs a command line and answers what it prints on stdout.
pub fn run(args: &[String], env: &Environment) -> Result<String, XeError> {
    let (connection, name, params) = match argv::parse(args, env)? {
        Invocation::Usage => {
            eprint!("{}", help::usage("xe"));
            return Ok(String::new());
        }
        Invocation::Version => return Ok("ThinCLI protocol: 2.2\n".into()),
        Invocation::Command { connection, name, params } => (connection, name, params),
    };
    let minimal = params.flag("minimal").unwrap_or(false);
    let table = table::table();
    if name == "help" {
        let mut out = print::Out::new(minimal);
        help::help(&table, &params, &mut out);
        return Ok(out.finish());
    }
    let command = table.iter().find(|c| c.name == name).ok_or_else(|| XeError::usage("Unknown command", &name))?;
    for key in &command.reqd {
        params.req(key)?;
    }
    let api = api::Api::login(&connection)?;
    let mut ctx = Ctx { api, res: records::Resolver::default(), out: print::Out::new(minimal) };
    let result = table::run(command, &mut ctx, &params).map_err(|e| name_refs(&ctx.api, e));
    let Ctx { api, out, .. } = ctx;
    api.logout();
    result.map(|()| out.finish())
}

/// The classes an error's refs are looked for in, most likely first.
const REF_CLASSES: &[&str] =
    &["VM", "VDI", "SR", "host", "VBD", "VIF", "network", "PIF", "PBD", "task", "pool", "VLAN", "Bond", "SM"];

/// xe shows a ref in an error as its object's `uuid (name-label)` (`cli_util.ml` `ref_convert`).
fn name_refs(api: &api::Api, e: XeError) -> XeError {
    let XeError::Api { code, params } = e else { return e };
    let params = params
        .into_iter()
        .map(|p| {
            if !p.starts_with("OpaqueRef:") || p == records::NULL_REF {
                return p;
            }
            for class in REF_CLASSES {
                if let Ok(serde_json::Value::Object(r)) = api.call(&format!("{class}.get_record"), vec![api::s(&p)]) {
                    let uuid = records::uuid_of(&r).to_string();
                    return match r.get("name_label").and_then(serde_json::Value::as_str) {
                        Some(name) => format!("{uuid} ({name})"),
                        None => uuid,
                    };
                }
            }
            p
        })
        .collect();
    XeError::Api { code, params }
}
