//! The `xe` binary against a real `xenledger serve`: a table of command lines with the output
//! each must print, byte for byte once uuids, refs, times and the host name are masked
//! (`tests/data/xe/*.txt`; `XENLEDGER_BLESS=1` rewrites them from what the binary prints), the
//! README's xe walkthrough (`examples/walkthrough.sh`) with the output the README shows, and the
//! bash completion. The layouts, texts and exit codes are xe's: xapi's `cli_printer.ml`,
//! `xapi_cli.ml`, `cli_operations.ml` and `newcli.ml`.

mod bin_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use bin_support::{serve, Server, BIN};

const XE: &str = env!("CARGO_BIN_EXE_xe");

fn start(dir: &Path) -> (Server, u16) {
    serve(dir, &["--sim-speed", "0"])
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Replaces what differs from run to run: uuids, refs, times, the host name.
fn mask(text: &str) -> String {
    let host = hostname();
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut l = mask_tokens(line);
        if !host.is_empty() {
            l = l.replace(&format!("Control domain on host: {host}"), "Control domain on host: <hostname>");
            for end in ["\n", ""] {
                let tail = format!(": {host}{end}");
                if l.ends_with(&tail) && !l.ends_with(&format!(" {tail}")) {
                    l = format!("{}: <hostname>{end}", &l[..l.len() - tail.len()]);
                    break;
                }
            }
        }
        out.push_str(&l);
    }
    out
}

fn mask_tokens(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        if i + 36 <= b.len() && is_uuid(&line[i..i + 36]) {
            out.push_str("<uuid>");
            i += 36;
        } else if line[i..].starts_with("OpaqueRef:") && !line[i..].starts_with("OpaqueRef:NULL") {
            out.push_str("<ref>");
            i += "OpaqueRef:".len();
            while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'-') {
                i += 1;
            }
        } else if i + 18 <= b.len() && is_time(&b[i..i + 18]) && !line[i..].starts_with("19700101T00:00:00Z") {
            out.push_str("<time>");
            i += 18;
        } else {
            let c = line[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// `YYYYMMDDThh:mm:ssZ`.
fn is_time(b: &[u8]) -> bool {
    let shape = b"ddddddddTdd:dd:ddZ";
    b.iter().zip(shape.iter()).all(|(c, s)| if *s == b'd' { c.is_ascii_digit() } else { c == s })
}

/// Splits a command line as a shell would for plain words and double quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// One entry of a table: `$ [NAME=]xe ARGS…`, then the expected stdout lines, `! ` stderr lines
/// and `? N` the exit code (0 when absent).
struct Case {
    capture: Option<String>,
    command: String,
    expected: String,
}

fn parse_table(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(cmd) = line.strip_prefix("$ ") {
            let cmd = cmd.trim_end();
            let (capture, command) = match cmd.split_once("=xe ") {
                Some((name, rest)) if !name.contains(' ') => (Some(name.to_string()), format!("xe {rest}")),
                _ => (None, cmd.to_string()),
            };
            cases.push(Case { capture, command, expected: String::new() });
        } else if line.starts_with('#') && cases.is_empty() {
            continue;
        } else if let Some(case) = cases.last_mut() {
            case.expected.push_str(line);
        }
    }
    cases
}

/// Runs a table and answers the text it should have been: each command with what it printed.
fn run_table(text: &str, port: u16, vars: &mut HashMap<String, String>) -> String {
    let mut header = String::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with("$ ") {
            break;
        }
        header.push_str(line);
    }
    let mut actual = header;
    for case in parse_table(text) {
        let mut line = case.command.clone();
        // Longest names first, so that `$NET2` is not taken for `$NET` and a `2`.
        let mut names: Vec<(&String, &String)> = vars.iter().collect();
        names.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        for (k, v) in names {
            line = line.replace(&format!("${k}"), v);
        }
        let args = words(&line);
        assert_eq!(args[0], "xe", "a table runs xe only: {line}");
        let out = Command::new(XE)
            .args(&args[1..])
            .env("XE_EXTRA_ARGS", format!("port={port},password=pw"))
            .env("HOME", "/nonexistent")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if let Some(name) = &case.capture {
            vars.insert(name.clone(), stdout.trim().to_string());
        }
        let prefix = case.capture.as_ref().map(|n| format!("{n}=")).unwrap_or_default();
        actual.push_str(&format!("$ {prefix}{}\n", case.command));
        actual.push_str(&mask(&stdout));
        for l in mask(&stderr).lines() {
            actual.push_str(&format!("! {l}\n"));
        }
        let code = out.status.code().unwrap_or(-1);
        if code != 0 {
            actual.push_str(&format!("? {code}\n"));
        }
    }
    actual
}

fn check_table(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = start(dir.path());
    let path = Path::new("tests/data/xe").join(name);
    let expected = std::fs::read_to_string(&path).unwrap();
    let mut vars = HashMap::new();
    vars.insert("TMP".to_string(), dir.path().display().to_string());
    let actual = run_table(&expected, port, &mut vars);
    if std::env::var_os("XENLEDGER_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    if actual != expected {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  expected {a:?}\n  actual   {b:?}", i + 1))
            .collect();
        panic!("{} differs from what xe prints (XENLEDGER_BLESS=1 rewrites it):\n{}", path.display(), diff.join("\n"));
    }
}

#[test]
fn lists_and_records() {
    check_table("lists.txt");
}

#[test]
fn params_get_set_add_remove_clear() {
    check_table("params.txt");
}

#[test]
fn vm_lifecycle_and_devices() {
    check_table("lifecycle.txt");
}

#[test]
fn storage_and_network() {
    check_table("storage.txt");
}

#[test]
fn the_rest_of_the_commands() {
    check_table("more.txt");
}

#[test]
fn errors_and_help() {
    check_table("errors.txt");
}

/// The README's quick start: `examples/walkthrough.sh`, through `xe` only, prints what the
/// README shows.
#[test]
fn readme_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = start(dir.path());
    let bin_dir = Path::new(XE).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("examples/walkthrough.sh")
        .env("PATH", path)
        .env("HOME", "/nonexistent")
        .env("XE_EXTRA_ARGS", format!("port={port},password=pw"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the walkthrough failed: {stderr}");
    let printed = mask(&String::from_utf8_lossy(&out.stdout));
    let readme = std::fs::read_to_string("README.md").unwrap();
    let begin = "<!-- xe-walkthrough-output:begin -->\n```\n";
    let end = "```\n<!-- xe-walkthrough-output:end -->";
    let (Some(a), Some(b)) = (readme.find(begin), readme.find(end)) else {
        panic!("README.md lacks the walkthrough's output markers")
    };
    let shown = &readme[a + begin.len()..b];
    if std::env::var_os("XENLEDGER_BLESS").is_some() {
        let updated = format!("{}{printed}{}", &readme[..a + begin.len()], &readme[b..]);
        std::fs::write("README.md", updated).unwrap();
        return;
    }
    assert_eq!(shown, printed, "README.md's walkthrough output differs from what examples/walkthrough.sh prints");
}

/// The completion `xenledger xe-completion` writes completes command names, a command's
/// parameters and, asking the server, uuids.
#[test]
fn bash_completion() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = start(dir.path());
    let script = Command::new(BIN).arg("xe-completion").output().unwrap();
    assert!(script.status.success());
    let script_path = dir.path().join("xe-completion.bash");
    std::fs::write(&script_path, &script.stdout).unwrap();
    let bin_dir = Path::new(XE).parent().unwrap();
    let complete = |line: &str| -> String {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "source {}; COMP_LINE='{line}'; COMP_POINT={}; COMP_WORDS=({}); COMP_CWORD={}; _xe; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script_path.display(),
            line.len(),
            words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            words.len() - 1
        );
        let out = Command::new("bash")
            .args(["-c", &program])
            .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()))
            .env("HOME", "/nonexistent")
            .env("XE_EXTRA_ARGS", format!("port={port},password=pw"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(complete("xe vm-shut"), "vm-shutdown\n");
    assert_eq!(complete("xe vm-param-get param-"), "param-name=\nparam-key=\n");
    let uuids = complete("xe sr-param-list uuid=");
    let listed = Command::new(XE)
        .args(["sr-list", "params=uuid", "--minimal"])
        .env("XE_EXTRA_ARGS", format!("port={port},password=pw"))
        .output()
        .unwrap();
    let expected: Vec<String> = String::from_utf8_lossy(&listed.stdout).trim().split(',').map(str::to_string).collect();
    assert!(!expected.is_empty() && is_uuid(&expected[0]));
    let mut got: Vec<String> = uuids.lines().map(str::to_string).collect();
    got.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(got, expected);
}
