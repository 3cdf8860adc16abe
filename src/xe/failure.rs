//! How xe reports a failure: its text on stderr and exit code 1, as xapi's CLI server words them
//! (`ocaml/xapi-cli-server/xapi_cli.ml` `exception_handler`, `cli_util.ml` `server_error`).

use std::fmt;

/// A failed command.
#[derive(Debug)]
pub enum XeError {
    /// A XenAPI failure from the server: `[code, params…]`.
    Api { code: String, params: Vec<String> },
    /// A usage problem: `"{what}: {detail}"`, then the pointer to `xe help` (`param_error`).
    Usage { what: String, detail: String },
    /// A command's own refusal, printed `Error: …` (`Cli_failure`, `Record_failure`).
    Failure(String),
    /// A message printed as it is (client-side problems: the password file, the port).
    Plain(String),
    /// The server could not be reached.
    Connect(String),
    /// Some of a `--multiple` operation's objects failed: `(uuid, message)` in xe's order. xe
    /// prints these on stdout (`xapi_cli.ml` `multiple_error`).
    Multiple(Vec<(String, String)>),
}

impl XeError {
    pub fn usage(what: &str, detail: &str) -> XeError {
        XeError::Usage { what: what.into(), detail: detail.into() }
    }

    pub fn failure(text: impl Into<String>) -> XeError {
        XeError::Failure(text.into())
    }

    /// A XenAPI failure built on this side (e.g. a uuid that matches nothing).
    pub fn api(code: &str, params: &[&str]) -> XeError {
        XeError::Api { code: code.into(), params: params.iter().map(|s| s.to_string()).collect() }
    }
}

impl fmt::Display for XeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XeError::Usage { what, detail } => {
                if what.is_empty() {
                    write!(f, "{detail}\nFor usage run: 'xe help'")
                } else {
                    write!(f, "{what}: {detail}\nFor usage run: 'xe help'")
                }
            }
            XeError::Failure(text) => write!(f, "Error: {text}"),
            XeError::Plain(text) => write!(f, "{text}"),
            XeError::Connect(detail) => {
                write!(f, "Unable to contact server. Please check server and port settings.")?;
                if !detail.is_empty() {
                    write!(f, "\n({detail})")?;
                }
                Ok(())
            }
            XeError::Api { code, params } => write_api_error(f, code, params),
            XeError::Multiple(failures) => {
                let lines: Vec<String> =
                    failures.iter().map(|(uuid, msg)| format!("operation failed on {uuid}: {msg}")).collect();
                write!(f, "{}", lines.join("\n"))
            }
        }
    }
}

/// A XenAPI failure as xe shows it. xe prints the error's description from the datamodel, then
/// one `name: value` line per declared parameter (`<extra>` past the declared ones, `<unknown>`
/// for missing ones). This project copies no description text (docs/differences.md §xe), so the
/// first line is xe's own wording for an error it has no description of: `Error code: CODE`.
fn write_api_error(f: &mut fmt::Formatter<'_>, code: &str, params: &[String]) -> fmt::Result {
    if code == "SESSION_AUTHENTICATION_FAILED" {
        let user = params.first().map(String::as_str).unwrap_or("");
        let text = if user.is_empty() { "Username/password must be specified" } else { "Authentication failed" };
        return write!(f, "{text}\nFor usage run: 'xe help'");
    }
    let Some(names) = crate::schema::schema().errors.get(code) else {
        return write!(f, "Error code: {code}\nError parameters: {}", params.join(", "));
    };
    write!(f, "Error code: {code}")?;
    let mut values = params.iter();
    for name in names {
        match values.next() {
            Some(v) => write!(f, "\n{name}: {v}")?,
            None => write!(f, "\n{name}: <unknown>")?,
        }
    }
    for v in values {
        write!(f, "\n<extra>: {v}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_name_their_parameters() {
        // UUID_INVALID's parameters are `type` and `uuid` (xapi's datamodel errors).
        let e = XeError::api("UUID_INVALID", &["VM", "123"]);
        assert_eq!(e.to_string(), "Error code: UUID_INVALID\ntype: VM\nuuid: 123");
        let e = XeError::api("NOT_A_REAL_CODE", &["a", "b"]);
        assert_eq!(e.to_string(), "Error code: NOT_A_REAL_CODE\nError parameters: a, b");
        let e = XeError::api("SESSION_AUTHENTICATION_FAILED", &["root", "x"]);
        assert_eq!(e.to_string(), "Authentication failed\nFor usage run: 'xe help'");
    }
}
