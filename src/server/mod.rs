//! HTTP transport: the listeners (HTTPS, plain HTTP, Unix socket), HTTP/1.1 framing, routing by
//! path, the body limit, connection limits and graceful shutdown.
//!
//! This module knows nothing about XenAPI. A POST body is handed over unread, as bytes in an
//! [`RpcRequest`] tagged with the [`Protocol`] its path selects. The [`RpcHandler`] (the wire
//! codecs and dispatch, elsewhere) returns the bytes to send back in an [`RpcResponse`].
//!
//! Behaviour copies xapi's `http_svr.ml` and `api_server.ml` wherever a client could notice:
//!
//! - Routing is by longest path prefix per method, as xapi's radix tree does. `POST /jsonrpc`
//!   (and any path that starts with it) is JSON-RPC; every other POST path (`/`, `/RPC2`,
//!   `/xmlrpc`, `/json`, anything) is XML-RPC. `OPTIONS` on any path is a CORS pre-flight.
//!   `GET /` is a short text page. Any other `GET`, `HEAD` or `PUT` is a transfer (`transfer.rs`):
//!   the handler gets the body unread and may answer with a streamed one (xapi's disk transfers);
//!   the default handler has none (404). Other methods get 405.
//! - RPC replies carry the handler's content type verbatim (never a charset: xen-api falls back
//!   to XML-RPC if `application/json` has one) and xapi's two CORS headers.
//! - A body over [`BODY_SIZE_BYTES_MAX`] gets HTTP 500 with a short HTML page, as xapi's
//!   `response_internal_error`, and the connection is closed without reading the rest.
//! - Each TCP listener serves at most [`CONNECTIONS_MAX`] connections, the Unix socket at most
//!   [`UNIX_CONNECTIONS_MAX`]. At the limit a new client is admitted by closing the longest-idle
//!   keep-alive connection (as nginx does), so that idle holders cannot lock users out; if every
//!   connection is busy with a request, it waits for one to end and further clients wait in the
//!   kernel backlog, as with xapi's `server_io.ml`.
//!
//! Two deliberate differences from xapi, both more lenient: a body without `Content-Length`
//! (chunked) is accepted, still under the same limit; and leading slashes are collapsed before
//! routing, so the Go SDK's `https://host/` + `/jsonrpc` = `//jsonrpc` reaches JSON-RPC.
//!
//! Time bounds, so a slow or vanished client cannot hold a connection slot for ever:
//! [`TLS_HANDSHAKE_TIMEOUT`] for the handshake, [`HEADER_READ_TIMEOUT`] for each request head
//! (hyper starts that timer as soon as a kept-alive connection goes idle, so it is also the idle
//! keep-alive bound), [`BODY_READ_TIMEOUT`] for each body, and [`WRITE_STALL_TIMEOUT`] for a
//! reply the client does not read. The handler itself has no bound: `event.from` long-polls.
//!
//! Files: `listen.rs` binds and accepts and owns the connection life cycle, `http.rs` turns one
//! request into one response, `tls.rs` builds the rustls configuration and the self-signed
//! certificate, and `io.rs` holds the write-stall guard, `transfer.rs` the streamed requests and replies of transfers.

mod http;
mod idle;
mod io;
mod listen;
mod tls;
mod transfer;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

pub use listen::{open_connections, Server};
pub use tls::{certificate_fingerprint_sha256, CERT_FILE_NAME, KEY_FILE_NAME};
pub use transfer::{RequestBody, ResponseBody, TransferMethod, TransferRequest, TransferResponse};

/// Largest accepted request body: xapi's `http_limit_max_rpc_size`.
pub const BODY_SIZE_BYTES_MAX: usize = 300 * 1024;

/// Open connections per TCP listener: xapi's `conn_limit_tcp`.
pub const CONNECTIONS_MAX: usize = 800;

/// Open connections on the Unix socket: xapi's `conn_limit_unix`.
pub const UNIX_CONNECTIONS_MAX: usize = 1024;

/// Time a client has to send a complete request head, counted from the moment the connection
/// is ready for it (just opened, or idle after the previous reply).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Time a client has to send a complete request body once its head has arrived.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Time a client has to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a reply may sit unwritten because the client is not reading it.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Time in-flight requests get to finish after shutdown is requested. Connections still open
/// after it are dropped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Which codec a request body is for, chosen by the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// XML-RPC: every POST path that does not start with `/jsonrpc`.
    XmlRpc,
    /// JSON-RPC 1.0 or 2.0: POST paths starting with `/jsonrpc`.
    JsonRpc,
}

/// Where a request came from. Dispatch treats [`Origin::Unix`] as root, as xapi does for its
/// local socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A TCP connection; `tls` tells whether it came through the HTTPS listener.
    Tcp { peer: SocketAddr, tls: bool },
    /// The local Unix socket.
    Unix,
}

/// One RPC call as it arrived: the raw body and the request headers.
#[derive(Debug, Clone)]
pub struct RpcRequest {
    pub protocol: Protocol,
    /// The whole body, at most [`BODY_SIZE_BYTES_MAX`] bytes, not decoded.
    pub body: bytes::Bytes,
    pub origin: Origin,
    /// Every request header in arrival order. Names are lower case; values that are not UTF-8
    /// are decoded lossily. Used for `task-id`, `subtask-of` and `x-http-other-config-*`.
    pub headers: Vec<(String, String)>,
}

impl RpcRequest {
    /// The value of the first header called `name`, which must be given in lower case.
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert_eq!(name, name.to_ascii_lowercase(), "header names are lower case");
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// The reply to one RPC call.
pub struct RpcResponse {
    /// HTTP status; 200 for every API-level outcome, failures included.
    pub status: u16,
    /// Sent verbatim as `Content-Type`: `text/xml` or `application/json`, without a charset.
    pub content_type: &'static str,
    /// The bytes, or (a large reply) pieces sent as they are encoded.
    pub body: ResponseBody,
}

/// The layer above the transport: decodes the body, dispatches the call, encodes the reply.
pub trait RpcHandler: Send + Sync + 'static {
    fn handle(&self, req: RpcRequest) -> Pin<Box<dyn Future<Output = RpcResponse> + Send + '_>>;

    /// A `GET` (other than `GET /`), `HEAD` or `PUT`: a transfer with a streamed body. The default
    /// serves none (404).
    fn transfer(&self, req: TransferRequest) -> Pin<Box<dyn Future<Output = TransferResponse> + Send + '_>> {
        drop(req);
        Box::pin(async { TransferResponse::page(404, "not found", "The page does not exist.") })
    }
}

/// What to listen on. Each listener is optional; a server with none serves nothing.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTPS listener (port 0 picks a free port; see [`Server::https_addr`]).
    pub https: Option<SocketAddr>,
    /// Plain HTTP listener.
    pub http: Option<SocketAddr>,
    /// Unix socket path, plain HTTP, mode 0600.
    pub unix: Option<PathBuf>,
    /// Certificate for the HTTPS listener; ignored when `https` is `None`.
    pub tls: TlsSource,
}

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files: a certificate chain (leaf first) and its private key.
    Files { cert: PathBuf, key: PathBuf },
    /// `dir/server.crt` and `dir/server.key`, generated on first use as a self-signed RSA-2048
    /// certificate for `localhost`, `127.0.0.1` and the machine's host name.
    SelfSigned { dir: PathBuf },
}

/// Failures to start the server. Once serving, per-connection errors are only logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A TCP listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    /// The Unix socket could not be bound.
    #[error("cannot listen on unix socket {}", path.display())]
    BindUnix { path: PathBuf, source: std::io::Error },
    /// The certificate or key could not be loaded, generated or used.
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
