//! The XenAPI as xe uses it: one session per invocation (logged in with originator `cli`, logged
//! out at the end), calls over JSON-RPC on the project's jsonrpsee client, answered blocking.

use std::time::Duration;

use jsonrpsee::http_client::HttpClient;
use serde_json::Value as Json;

use super::argv::Connection;
use super::failure::XeError;
use crate::remote::{self, CallError};

/// How long one call may take: `event-wait` parks in `event.from` for up to this long per call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3600);

/// A logged-in connection.
pub struct Api {
    runtime: tokio::runtime::Runtime,
    client: HttpClient,
    session: Json,
}

fn translate(e: CallError) -> XeError {
    match e {
        CallError::Api { code, params } => XeError::Api { code, params },
        CallError::Transport(text) => XeError::Connect(text),
    }
}

impl Api {
    /// Connects and logs in. xe does not check the server's certificate (its stunnel runs with
    /// `verify_cert:None`), and neither does this: docs/differences.md §xe.
    pub fn login(conn: &Connection) -> Result<Api, XeError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| XeError::Connect(e.to_string()))?;
        let client = remote::http_client(&conn.url(), true, CALL_TIMEOUT).map_err(translate)?;
        let params = remote::params([
            Json::String(conn.username.clone()),
            Json::String(conn.password.clone()),
            Json::String("1.0".into()),
            Json::String("cli".into()),
        ])
        .map_err(translate)?;
        let session =
            runtime.block_on(remote::request(&client, "session.login_with_password", params)).map_err(translate)?;
        Ok(Api { runtime, client, session })
    }

    /// `method(session, args…)`.
    pub fn call(&self, method: &str, args: Vec<Json>) -> Result<Json, XeError> {
        let mut values = Vec::with_capacity(args.len() + 1);
        values.push(self.session.clone());
        values.extend(args);
        let params = remote::params(values).map_err(translate)?;
        self.runtime.block_on(remote::request(&self.client, method, params)).map_err(translate)
    }

    /// A call answering a string (a ref, a uuid).
    pub fn call_str(&self, method: &str, args: Vec<Json>) -> Result<String, XeError> {
        match self.call(method, args)? {
            Json::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }

    pub fn logout(self) {
        let session = self.session.clone();
        if let Ok(params) = remote::params([session]) {
            let _ = self.runtime.block_on(remote::request(&self.client, "session.logout", params));
        }
    }
}

/// A JSON string argument.
pub fn s(text: &str) -> Json {
    Json::String(text.to_string())
}
