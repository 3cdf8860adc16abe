//! xe's command line, as xe reads it: connection options from `~/.xe`, then `XE_EXTRA_ARGS`, then
//! argv (`-s HOST -p PORT -u USER -pw PASS -pwf FILE --nossl`, or the same as `server=`, `port=`,
//! `username=`, `password=`, `passwordfile=`, `nossl=`), the command name, and its parameters
//! (`key=value`, `--switch` as `switch=true`, `-u`-style diadic switches). The two halves follow
//! xapi's `ocaml/xe-cli/newcli.ml` (`parse_args`) and `ocaml/xapi-cli-server/cli_frontend.ml`
//! (`parse_commandline`).

use std::path::PathBuf;

use super::failure::XeError;

/// How to reach and log in to the server.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub server: String,
    /// `None`: xenledger's default HTTPS port (8443), or 80 with `--nossl`.
    pub port: Option<u16>,
    pub username: String,
    pub password: String,
    pub password_file: Option<PathBuf>,
    pub nossl: bool,
    pub debug: bool,
}

impl Default for Connection {
    fn default() -> Self {
        // newcli.ml's defaults: 127.0.0.1, root, the password "null".
        Connection {
            server: "127.0.0.1".into(),
            port: None,
            username: "root".into(),
            password: "null".into(),
            password_file: None,
            nossl: false,
            debug: false,
        }
    }
}

impl Connection {
    /// The server's base URL.
    pub fn url(&self) -> String {
        let host = if self.server.contains(':') && !self.server.starts_with('[') {
            format!("[{}]", self.server)
        } else {
            self.server.clone()
        };
        if self.nossl {
            format!("http://{host}:{}", self.port.unwrap_or(80))
        } else {
            format!("https://{host}:{}", self.port.unwrap_or(8443))
        }
    }
}

/// What a command line asks for.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    /// `xe`, `xe --help`, `xe -help`: the usage text.
    Usage,
    /// `xe -version`.
    Version,
    /// A command with its parameters, in command-line order.
    Command { connection: Connection, name: String, params: Params },
}

/// A command's parameters, in order (a key may repeat; the first wins, as `List.assoc`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A required parameter, or xe's "Required parameter not found".
    pub fn req(&self, key: &str) -> Result<&str, XeError> {
        self.get(key).ok_or_else(|| XeError::usage("Required parameter not found", key))
    }

    /// A boolean parameter, false when absent (`--force` is `force=true`), in the forms xe's
    /// `get_bool_param` takes (`Record_util.bool_of_string`).
    pub fn flag(&self, key: &str) -> Result<bool, XeError> {
        self.flag_or(key, false)
    }

    pub fn flag_or(&self, key: &str, default: bool) -> Result<bool, XeError> {
        let Some(v) = self.get(key) else { return Ok(default) };
        match v.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Ok(true),
            "false" | "f" | "no" | "n" | "0" => Ok(false),
            _ => Err(XeError::Failure(format!(
                "Failed to parse parameter '{key}': Expected 'true','t','yes','y','1','false','f','no','n','0' got {v}"
            ))),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// `read_map_params`: the `name:key=value` parameters (and the older `name-key=value`), as
    /// `(key, value)`.
    pub fn map_params(&self, name: &str) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| k.len() > name.len() + 1 && k.starts_with(name))
            .map(|(k, v)| (k[name.len() + 1..].to_string(), v.clone()))
            .collect()
    }
}

/// The boolean syntax of records.ml's setters (OCaml's `bool_of_string`: exactly `true` or
/// `false`).
pub fn parse_bool(key: &str, value: &str) -> Result<bool, XeError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(XeError::Failure(format!("Failed to parse parameter '{key}': expecting a boolean (true or false)"))),
    }
}

/// Where the rc file and the environment come from (the tests pass their own).
pub struct Environment {
    /// The contents of `~/.xe`, if it exists.
    pub rc: Option<String>,
    /// `XE_EXTRA_ARGS`.
    pub extra_args: Option<String>,
}

impl Environment {
    pub fn from_process() -> Environment {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        Environment {
            rc: std::fs::read_to_string(home.join(".xe")).ok(),
            extra_args: std::env::var("XE_EXTRA_ARGS").ok(),
        }
    }
}

/// Sets a connection keyword; false when the keyword is not one.
fn set_keyword(conn: &mut Connection, key: &str, value: &str) -> Result<bool, XeError> {
    match key {
        "server" => conn.server = value.to_string(),
        "port" => conn.port = Some(parse_port(value)?),
        "username" => conn.username = value.to_string(),
        "password" => conn.password = value.to_string(),
        "passwordfile" => conn.password_file = Some(PathBuf::from(value)),
        // OCaml's bool_of_string raises on anything else, which parse_args turns into "not ours".
        "nossl" => match value {
            "true" => conn.nossl = true,
            "false" => conn.nossl = false,
            _ => return Ok(false),
        },
        "debug" | "debugonfail" => conn.debug = value == "true",
        "traceparent" => {}
        _ => return Ok(false),
    }
    Ok(true)
}

fn parse_port(text: &str) -> Result<u16, XeError> {
    text.parse::<u16>().map_err(|_| XeError::Plain("Port number must be an integer (0-65535)".into()))
}

/// Takes the connection options out of `args`, answering the rest in order.
fn process_args(conn: &mut Connection, args: &[String]) -> Result<Vec<String>, XeError> {
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let diadic = match a {
            "-s" | "-h" => Some("server"),
            "-p" => Some("port"),
            "-u" => Some("username"),
            "-pw" => Some("password"),
            "-pwf" => Some("passwordfile"),
            "--traceparent" => Some("traceparent"),
            _ => None,
        };
        if let (Some(key), Some(value)) = (diadic, args.get(i + 1)) {
            set_keyword(conn, key, value)?;
            i += 2;
            continue;
        }
        let unary = match a {
            "--nossl" => Some("nossl"),
            "--debug" => Some("debug"),
            "--debug-on-fail" => Some("debugonfail"),
            _ => None,
        };
        if let Some(key) = unary {
            set_keyword(conn, key, "true")?;
            i += 1;
            continue;
        }
        match a.split_once('=') {
            Some((k, v)) if set_keyword(conn, k, v)? => {}
            _ => rest.push(a.to_string()),
        }
        i += 1;
    }
    Ok(rest)
}

/// `XE_EXTRA_ARGS`: comma-separated, `\,` a literal comma.
fn split_extra_args(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                cur.push(',');
                chars.next();
            }
            '\\' => {}
            ',' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Reads `-pwf FILE`: the user name on its first line, the password on its second.
fn read_password_file(conn: &mut Connection) -> Result<(), XeError> {
    let Some(path) = conn.password_file.clone() else { return Ok(()) };
    let text = std::fs::read_to_string(&path)
        .map_err(|_| XeError::Plain(format!("Error opening password file '{}'", path.display())))?;
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(user), Some(password)) => {
            conn.username = user.to_string();
            conn.password = password.to_string();
            Ok(())
        }
        _ => Err(XeError::Plain(
            "Error: password file format: expecting username on the first line, password on the second line".into(),
        )),
    }
}

/// Parses a whole command line (without argv\[0\]).
pub fn parse(args: &[String], env: &Environment) -> Result<Invocation, XeError> {
    if args.iter().any(|a| a == "-version") {
        return Ok(Invocation::Version);
    }
    let mut conn = Connection::default();
    // ~/.xe: `key=value` lines; blank lines skipped; keys that are not connection keywords join
    // the command's parameters.
    let mut rc_rest = Vec::new();
    if let Some(rc) = &env.rc {
        let mut pairs = Vec::new();
        for line in rc.lines().filter(|l| !l.is_empty()) {
            match line.split_once('=') {
                Some((k, v)) => pairs.push((k.to_string(), v.to_string())),
                None => {
                    eprintln!("Error parsing rc file. No defaults loaded");
                    pairs.clear();
                    break;
                }
            }
        }
        for (k, v) in pairs {
            if !set_keyword(&mut conn, &k, &v)? {
                rc_rest.push(format!("{k}={v}"));
            }
        }
    }
    let extras = env.extra_args.as_deref().map(split_extra_args).unwrap_or_default();
    let extras_rest = process_args(&mut conn, &extras)?;
    let help = args.iter().any(|a| a == "-help" || a == "--help");
    let args: Vec<String> = args.iter().filter(|a| *a != "-help" && *a != "--help").cloned().collect();
    let mut rest = process_args(&mut conn, &args)?;
    if help {
        return Ok(Invocation::Usage);
    }
    read_password_file(&mut conn)?;
    rest.extend(extras_rest);
    rest.extend(rc_rest);
    let Some((name, params)) = rest.split_first() else { return Ok(Invocation::Usage) };
    // xapi's parse_commandline turns every parse error into `ParseError ""`, so the detail
    // (a missing command name, an unknown switch) never reaches the user.
    if name.contains('=') {
        return Err(XeError::usage("Syntax error", ""));
    }
    Ok(Invocation::Command { connection: conn, name: name.clone(), params: parse_params(params)? })
}

/// `cli_frontend.ml`'s `parse_params_2`.
fn parse_params(args: &[String]) -> Result<Params, XeError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let p = &args[i];
        if let Some(name) = p.strip_prefix("--") {
            out.push((name.to_string(), "true".to_string()));
        } else if p.starts_with('-') {
            let key = match p.as_str() {
                "-u" => "username",
                "-pw" => "password",
                "-s" | "-h" => "server",
                "-p" => "port",
                _ => return Err(XeError::usage("Syntax error", "")),
            };
            let Some(value) = args.get(i + 1) else {
                return Err(XeError::usage("Syntax error", ""));
            };
            out.push((key.to_string(), value.clone()));
            i += 1;
        } else {
            let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
            out.push((k.to_string(), v.to_string()));
        }
        i += 1;
    }
    Ok(Params(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn no_env() -> Environment {
        Environment { rc: None, extra_args: None }
    }

    #[test]
    fn options_come_out_and_params_stay_in_order() {
        let args =
            strings(&["-s", "h1", "vm-list", "-u", "admin", "-pw", "x", "name-label=a=b", "--minimal", "-p", "9"]);
        let Invocation::Command { connection, name, params } = parse(&args, &no_env()).unwrap() else { panic!() };
        assert_eq!(name, "vm-list");
        assert_eq!((connection.server.as_str(), connection.username.as_str()), ("h1", "admin"));
        assert_eq!((connection.password.as_str(), connection.port), ("x", Some(9)));
        assert_eq!(params.0, vec![("name-label".into(), "a=b".into()), ("minimal".into(), "true".into())]);
    }

    #[test]
    fn argv_beats_extra_args_beats_rc() {
        let env = Environment {
            rc: Some("server=rc\nusername=rcuser\n\nfoo=bar\n".into()),
            extra_args: Some("server=extra,password=p\\,q".into()),
        };
        let args = strings(&["vm-list", "server=argv"]);
        let Invocation::Command { connection, params, .. } = parse(&args, &env).unwrap() else { panic!() };
        assert_eq!(connection.server, "argv");
        assert_eq!(connection.username, "rcuser");
        assert_eq!(connection.password, "p,q");
        assert_eq!(params.0, vec![("foo".into(), "bar".into())]);
    }

    #[test]
    fn usage_version_and_syntax_errors() {
        assert_eq!(parse(&[], &no_env()).unwrap(), Invocation::Usage);
        assert_eq!(parse(&strings(&["vm-list", "--help"]), &no_env()).unwrap(), Invocation::Usage);
        assert_eq!(parse(&strings(&["-version"]), &no_env()).unwrap(), Invocation::Version);
        let e = parse(&strings(&["uuid=1"]), &no_env()).unwrap_err();
        assert_eq!(e.to_string(), "Syntax error: \nFor usage run: 'xe help'");
        let e = parse(&strings(&["vm-list", "-x", "1"]), &no_env()).unwrap_err();
        assert_eq!(e.to_string(), "Syntax error: \nFor usage run: 'xe help'");
    }
}
