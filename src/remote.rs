//! `xenledger call`: a command-line XenAPI client over JSON-RPC 2.0, on jsonrpsee's HTTP client
//! (the design's choice for the project's JSON-RPC client side; its server side rejects JSON-RPC
//! 1.0, so the server adapter is our own). Logs in, makes one call, logs out.

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// How long one call may take (an `event.from` with a long timeout needs more; pass `--timeout`).
pub const CALL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(120);

/// What `xenledger call` needs.
pub struct CallArgs {
    /// Server base URL, e.g. `https://127.0.0.1:8443`.
    pub url: String,
    pub user: String,
    pub password: String,
    /// Skip TLS certificate verification (the default server certificate is self-signed).
    pub insecure: bool,
    pub timeout: Duration,
    pub method: String,
    /// Arguments after the session: each parsed as JSON, else taken as a string.
    pub args: Vec<String>,
}

/// A XenAPI failure as the server sent it, or a transport problem.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{code} {params:?}")]
    Api { code: String, params: Vec<String> },
    #[error("{0}")]
    Transport(String),
}

fn client(args: &CallArgs) -> Result<HttpClient, CallError> {
    http_client(&args.url, args.insecure, args.timeout)
}

/// A JSON-RPC client posting to `BASE/jsonrpc` (`https://` or `http://`); `insecure` accepts any
/// server certificate. Shared by `call` and `xe`.
pub fn http_client(base: &str, insecure: bool, timeout: Duration) -> Result<HttpClient, CallError> {
    let url = format!("{}/jsonrpc", base.trim_end_matches('/'));
    let mut builder = HttpClientBuilder::default().request_timeout(timeout).max_response_size(u32::MAX);
    if url.starts_with("https://") {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let config = if insecure {
            config
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_roots() {
                let _ = roots.add(cert);
            }
            config.with_root_certificates(roots).with_no_client_auth()
        };
        builder = builder.with_custom_cert_store(config);
    }
    builder.build(&url).map_err(|e| CallError::Transport(e.to_string()))
}

/// The system's CA certificates (Debian's bundle), for verified connections.
fn rustls_native_roots() -> Vec<CertificateDer<'static>> {
    let Ok(pem) = std::fs::read("/etc/ssl/certs/ca-certificates.crt") else { return Vec::new() };
    rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok).collect()
}

pub fn params(values: impl IntoIterator<Item = serde_json::Value>) -> Result<ArrayParams, CallError> {
    let mut p = ArrayParams::new();
    for v in values {
        p.insert(v).map_err(|e| CallError::Transport(e.to_string()))?;
    }
    Ok(p)
}

/// One call; a XenAPI failure comes back as `CallError::Api`.
pub async fn request(client: &HttpClient, method: &str, p: ArrayParams) -> Result<serde_json::Value, CallError> {
    client.request(method, p).await.map_err(|e| match e {
        ClientError::Call(obj) => {
            // xapi's 2.0 failure: {"code":1,"message":CODE,"data":[params…]}.
            let params = obj.data().and_then(|d| serde_json::from_str::<Vec<String>>(d.get()).ok()).unwrap_or_default();
            CallError::Api { code: obj.message().to_string(), params }
        }
        other => CallError::Transport(other.to_string()),
    })
}

/// A transport error, with a hint when the likely cause is the self-signed certificate.
fn explain(args: &CallArgs, e: CallError) -> CallError {
    match e {
        CallError::Transport(text) if args.url.starts_with("https://") && !args.insecure => CallError::Transport(
            format!("{text} (if the server uses its self-signed certificate, pass --insecure / -k)"),
        ),
        other => other,
    }
}

/// Parses a command-line argument: JSON if it is JSON, else the text as a string.
pub fn parse_arg(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// Logs in, calls `method(session, args…)`, logs out; answers the call's result.
pub async fn call(args: &CallArgs) -> Result<serde_json::Value, CallError> {
    let client = client(args)?;
    let login = params([
        serde_json::Value::String(args.user.clone()),
        serde_json::Value::String(args.password.clone()),
        serde_json::Value::String("1.0".into()),
        serde_json::Value::String("xenledger-cli".into()),
    ])?;
    let session = request(&client, "session.login_with_password", login).await.map_err(|e| explain(args, e))?;
    let mut values = vec![session.clone()];
    values.extend(args.args.iter().map(|a| parse_arg(a)));
    let result = request(&client, &args.method, params(values)?).await;
    let _ = request(&client, "session.logout", params([session])?).await;
    result
}

/// Accepts any server certificate (`--insecure`, and the tests and benches, which check the
/// transport rather than the PKI), still checking handshake signatures with the provider.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
