//! The client and server plumbing of the network scenarios: a minimal keep-alive HTTP/1.1 client
//! over tokio-rustls (or plain TCP), our [`Server`] started in a task, and the few reply parsers
//! the scenarios need.
//!
//! The client is deliberately bare, because it shares the machine's CPUs with the server: one
//! request is written whole (head with `Content-Length`, then body) into a reused buffer, and the
//! reply head is scanned only for the status and `Content-Length`. Replies are checked by their
//! prefix, never decoded.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use xenledger::server::{RpcHandler, Server, ServerConfig, ServerError, TlsSource};

/// Start of every successful XML-RPC reply, up to the result's `<value>`.
pub const XML_SUCCESS: &[u8] = b"<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>\
<member><name>Status</name><value>Success</value></member><member><name>Value</name>";

/// Start of every successful JSON-RPC 2.0 reply.
pub const JSON_SUCCESS: &[u8] = b"{\"jsonrpc\":\"2.0\",\"result\":";

/// Read buffer headroom: a read into less than this first grows the buffer.
const READ_HEADROOM_BYTES: usize = 8 * 1024;

/// Anything a connection can run over: TLS or plain TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One keep-alive HTTP/1.1 connection, one request at a time.
pub struct Conn {
    stream: Box<dyn Io>,
    /// The request being written, reused.
    request: Vec<u8>,
    /// Read buffer, reused: `buffer[start..end]` is read and not yet handed out.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    /// The TLS cipher suite, for HTTPS connections.
    pub cipher: Option<String>,
}

/// A reply: its status and whole body, borrowed from the connection's buffer.
pub struct Reply<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

impl Conn {
    pub async fn https(addr: SocketAddr, connector: &TlsConnector) -> io::Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("localhost").expect("a valid server name");
        let tls = connector.connect(name, tcp).await?;
        let cipher = tls.get_ref().1.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()));
        Ok(Conn::new(Box::new(tls), cipher))
    }

    pub async fn http(addr: SocketAddr) -> io::Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Conn::new(Box::new(tcp), None))
    }

    fn new(stream: Box<dyn Io>, cipher: Option<String>) -> Conn {
        Conn {
            stream,
            request: Vec::with_capacity(1024),
            buffer: vec![0; 2 * READ_HEADROOM_BYTES],
            start: 0,
            end: 0,
            cipher,
        }
    }

    /// Sends `POST path` with `body` and reads the reply.
    pub async fn post(&mut self, path: &str, content_type: &str, body: &[u8]) -> io::Result<Reply<'_>> {
        self.send(path, content_type, body).await?;
        self.receive().await
    }

    /// Sends `PUT path` with `body` (a disk image, say) and reads the reply.
    pub async fn put(&mut self, path: &str, body: &[u8]) -> io::Result<Reply<'_>> {
        self.send_as("PUT", path, "application/octet-stream", body).await?;
        self.receive().await
    }

    /// Writes one request; [`Conn::receive`] reads its reply.
    pub async fn send(&mut self, path: &str, content_type: &str, body: &[u8]) -> io::Result<()> {
        self.send_as("POST", path, content_type, body).await
    }

    async fn send_as(&mut self, method: &str, path: &str, content_type: &str, body: &[u8]) -> io::Result<()> {
        self.request.clear();
        let mut head = String::with_capacity(128);
        let _ = write!(
            head,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.request.extend_from_slice(head.as_bytes());
        self.request.extend_from_slice(body);
        self.stream.write_all(&self.request).await?;
        self.stream.flush().await
    }

    /// Reads one reply: with a `Content-Length`, or chunked (a large reply the server streams).
    pub async fn receive(&mut self) -> io::Result<Reply<'_>> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        let mut scanned = self.start;
        let head_end = loop {
            if let Some(at) = find(&self.buffer[scanned..self.end], b"\r\n\r\n") {
                break scanned + at + 4;
            }
            scanned = self.end.saturating_sub(3).max(self.start);
            self.fill(0).await?;
        };
        let (status, length) = parse_head(&self.buffer[self.start..head_end])?;
        let Some(length) = length else { return self.receive_chunked(status, head_end).await };
        let reply_end = head_end + length;
        while self.end < reply_end {
            self.fill(reply_end - self.end).await?;
        }
        // `fill` only ever appends, so the offsets stay valid.
        self.start = reply_end;
        Ok(Reply { status, body: &self.buffer[head_end..reply_end] })
    }

    /// Reads a chunked body that starts at `body_start`, moving each chunk's data down to follow
    /// the one before, so the body is one slice as with a `Content-Length`.
    async fn receive_chunked(&mut self, status: u16, body_start: usize) -> io::Result<Reply<'_>> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("chunked reply: {what}"));
        let (mut read, mut write) = (body_start, body_start);
        loop {
            let line_end = loop {
                if let Some(at) = find(&self.buffer[read..self.end], b"\r\n") {
                    break read + at;
                }
                self.fill(0).await?;
            };
            let line = std::str::from_utf8(&self.buffer[read..line_end]).map_err(|_| bad("size not UTF-8"))?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).map_err(|_| bad(line))?;
            read = line_end + 2;
            while self.end < read + size + 2 {
                self.fill(read + size + 2 - self.end).await?;
            }
            self.buffer.copy_within(read..read + size, write);
            write += size;
            read += size + 2;
            if size == 0 {
                break;
            }
        }
        self.start = read;
        Ok(Reply { status, body: &self.buffer[body_start..write] })
    }

    /// Reads more, first making room for at least `wanted` bytes (and some headroom).
    async fn fill(&mut self, wanted: usize) -> io::Result<()> {
        let room = wanted.max(READ_HEADROOM_BYTES);
        if self.buffer.len() - self.end < room {
            self.buffer.resize(self.end + room, 0);
        }
        match self.stream.read(&mut self.buffer[self.end..]).await? {
            0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection")),
            n => {
                self.end += n;
                Ok(())
            }
        }
    }
}

/// The status and `Content-Length` of a reply head (which ends with the blank line); no length
/// for a chunked reply.
fn parse_head(head: &[u8]) -> io::Result<(u16, Option<usize>)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("reply head: {what}"));
    let text = std::str::from_utf8(head).map_err(|_| bad("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad(status_line))?;
    let headers: Vec<(&str, &str)> = lines.filter_map(|line| line.split_once(':')).collect();
    let header =
        |wanted: &str| headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(wanted)).map(|(_, v)| v.trim());
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Ok((status, None));
    }
    let length =
        header("content-length").and_then(|value| value.parse().ok()).ok_or_else(|| bad("no Content-Length"))?;
    Ok((status, Some(length)))
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Where `needle` last occurs in `haystack`.
pub fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|window| window == needle)
}

/// The text of a successful XML-RPC reply whose result is a string or ref.
pub fn xml_string_result(body: &[u8]) -> Option<String> {
    let rest = body.strip_prefix(XML_SUCCESS)?.strip_prefix(b"<value>")?;
    let end = find(rest, b"</value>")?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

/// The result of a successful JSON-RPC reply whose result is a string or ref.
pub fn json_string_result(body: &[u8]) -> Option<String> {
    let reply: serde_json::Value = serde_json::from_slice(body).ok()?;
    reply.get("result")?.as_str().map(str::to_owned)
}

/// The start of a body for an error message.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned()
}

/// A TLS client that offers ALPN `http/1.1` and accepts any certificate: the benches measure the
/// transport, not the PKI. The same provider as the server's.
pub fn connector() -> TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(xenledger::remote::AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// Our server, serving in a task of the current runtime.
pub struct Running {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServerError>>,
}

/// How long [`Running::stop`] waits for the server to drain.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

impl Running {
    /// Binds HTTPS on 127.0.0.1 (certificate generated in `tls_dir`), and plain HTTP too if
    /// `with_http`, and serves with `handler`.
    pub async fn start(handler: Arc<dyn RpcHandler>, tls_dir: &Path, with_http: bool) -> Running {
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let config = ServerConfig {
            https: Some(any_port),
            http: with_http.then_some(any_port),
            unix: None,
            tls: TlsSource::SelfSigned { dir: tls_dir.to_owned() },
        };
        let server = Server::bind(config).await.expect("Server::bind");
        let https = server.https_addr().expect("an HTTPS address");
        let http = server.http_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(handler, async {
            let _ = stopped.await;
        }));
        Running { https, http, stop, task }
    }

    /// Asks for shutdown and waits (boundedly) for the drain.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Ok(served) = tokio::time::timeout(STOP_TIMEOUT, self.task).await {
            served.expect("serve task").expect("serve");
        }
    }
}

/// The process's resident set size in KiB, from `/proc/self/status`.
pub fn rss_kb() -> u64 {
    status_kb("VmRSS:")
}

/// A KiB figure of `/proc/self/status` (`VmRSS:`, `VmHWM:` for the peak RSS).
pub fn status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}
