//! The HTTP transport over real sockets: routing, CORS, the body limit, keep-alive, the Unix
//! socket, HTTPS with the generated certificate, and graceful shutdown.
//!
//! The handler is a stub that echoes what the transport gave it (protocol, body length, origin
//! and the `x-test` header), so each test reads the transport's decisions from the reply body.
//! Requests are written by hand as raw HTTP/1.1, so no client library hides what goes on the
//! wire.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xenledger::server::{
    certificate_fingerprint_sha256, Origin, Protocol, RpcHandler, RpcRequest, RpcResponse, Server, ServerConfig,
    ServerError, TlsSource, BODY_SIZE_BYTES_MAX, CERT_FILE_NAME, KEY_FILE_NAME,
};

/// How long the stub handler takes for a body starting with `sleep`.
const SLOW_HANDLER_DELAY: Duration = Duration::from_millis(300);

/// Replies `"<protocol> <body length> <origin> <x-test header or ->"`.
struct Echo;

impl RpcHandler for Echo {
    fn handle(&self, req: RpcRequest) -> Pin<Box<dyn Future<Output = RpcResponse> + Send + '_>> {
        Box::pin(async move {
            if req.body.starts_with(b"sleep") {
                tokio::time::sleep(SLOW_HANDLER_DELAY).await;
            }
            let content_type = match req.protocol {
                Protocol::XmlRpc => "text/xml",
                Protocol::JsonRpc => "application/json",
            };
            let origin = match req.origin {
                Origin::Unix => "unix",
                Origin::Tcp { tls: true, .. } => "tls",
                Origin::Tcp { tls: false, .. } => "tcp",
            };
            let test_header = req.header("x-test").unwrap_or("-");
            let body = format!("{:?} {} {origin} {test_header}", req.protocol, req.body.len());
            RpcResponse { status: 200, content_type, body: body.into_bytes().into() }
        })
    }
}

/// A server running in a task, with a handle to stop it.
struct Running {
    http: SocketAddr,
    https: Option<SocketAddr>,
    unix: PathBuf,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl Running {
    /// Asks for shutdown and waits for `serve` to return.
    async fn stop(self) -> Result<(), ServerError> {
        let _ = self.stop.send(());
        self.task.await.expect("serve task panicked")
    }
}

/// Starts a server on 127.0.0.1 port 0 (plain HTTP, a Unix socket in `dir`, and HTTPS with its
/// certificate in `tls_dir` if given).
async fn start(dir: &Path, tls_dir: Option<&Path>) -> Running {
    let unix = dir.join("xapi.sock");
    let config = ServerConfig {
        https: tls_dir.map(|_| "127.0.0.1:0".parse().unwrap()),
        http: Some("127.0.0.1:0".parse().unwrap()),
        unix: Some(unix.clone()),
        tls: TlsSource::SelfSigned { dir: tls_dir.unwrap_or(dir).to_owned() },
    };
    let server = Server::bind(config).await.expect("bind");
    let http = server.http_addr().expect("http addr");
    let https = server.https_addr();
    assert_ne!(http.port(), 0, "the real port is reported");
    assert_eq!(tls_dir.is_some(), https.is_some());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(Arc::new(Echo), async {
        let _ = stopped.await;
    }));
    Running { http, https, unix, stop, task }
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// Reads one response with a `Content-Length` body (all of this server's responses have one).
async fn read_reply<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("status line");
    let mut parts = line.split_whitespace();
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
    let status = parts.next().expect("status").parse().expect("numeric status");
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.expect("header line");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').expect("header has a colon");
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut reply = Reply { status, headers, body: Vec::new() };
    let length: usize =
        reply.header("content-length").expect("content-length").parse().expect("numeric content-length");
    reply.body = vec![0; length];
    reader.read_exact(&mut reply.body).await.expect("body");
    reply
}

fn request(method: &str, path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n\
         Content-Length: {}\r\n{extra_headers}\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    request("POST", path, "", body)
}

/// Sends one request on a fresh stream and reads the reply.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: S, request: &[u8]) -> Reply {
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(request).await.expect("write request");
    read_reply(&mut stream).await
}

async fn exchange_tcp(addr: SocketAddr, request: &[u8]) -> Reply {
    exchange(TcpStream::connect(addr).await.expect("connect"), request).await
}

/// Asserts that the peer closes the connection without sending anything more.
async fn assert_closed<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut rest)).await;
    match read.expect("server closes the connection") {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes {rest:?}"),
        // A reset also means closed: part of the request was left unread.
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
}

fn assert_rpc_cors(reply: &Reply) {
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("access-control-allow-headers"), Some("X-Requested-With"));
}

#[tokio::test]
async fn every_post_path_but_jsonrpc_is_xml_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    for path in ["/", "/RPC2", "/xmlrpc", "/json", "/anything", "/?query=1"] {
        let reply = exchange_tcp(server.http, &post(path, b"<xml/>")).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.text(), "XmlRpc 6 tcp -", "{path}");
        assert_eq!(reply.header("content-type"), Some("text/xml"), "{path}");
        assert_rpc_cors(&reply);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn jsonrpc_path_is_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    // `//jsonrpc` is what the Go SDK sends for a base URL ending in a slash.
    for path in ["/jsonrpc", "/jsonrpc/", "/jsonrpc?x=1", "//jsonrpc"] {
        let reply = exchange_tcp(server.http, &post(path, b"{}")).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.text(), "JsonRpc 2 tcp -", "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"), "{path}");
        assert_rpc_cors(&reply);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn headers_reach_the_handler_with_lower_case_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let reply = exchange_tcp(server.http, &request("POST", "/", "X-Test: Hello\r\n", b"x")).await;
    assert_eq!(reply.text(), "XmlRpc 1 tcp Hello");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn options_is_a_cors_preflight() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    for path in ["/", "/jsonrpc", "/json"] {
        let reply = exchange_tcp(server.http, &request("OPTIONS", path, "", b"")).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        assert_eq!(reply.header("access-control-allow-headers"), Some("X-Requested-With, Content-Type"));
        assert_eq!(reply.header("access-control-allow-methods"), Some("POST, OPTIONS"));
        assert!(reply.body.is_empty());
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn get_root_is_a_text_page_and_other_methods_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    // A handler without a page of its own: the short text page (the local socket; plain HTTP
    // gets none, as xapi's `website_https_only`).
    let unix = UnixStream::connect(&server.unix).await.unwrap();
    let reply = exchange(unix, &request("GET", "/", "", b"")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    assert!(reply.text().contains("xenledger"), "{}", reply.text());

    let reply = exchange_tcp(server.http, &request("GET", "/elsewhere", "", b"")).await;
    assert_eq!(reply.status, 404);

    // A PUT is a transfer; this handler serves none.
    let reply = exchange_tcp(server.http, &request("PUT", "/", "", b"data")).await;
    assert_eq!(reply.status, 404);

    let reply = exchange_tcp(server.http, &request("DELETE", "/", "", b"")).await;
    assert_eq!(reply.status, 405);
    assert!(reply.header("allow").unwrap().contains("POST"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn body_at_the_limit_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let body = vec![b'a'; BODY_SIZE_BYTES_MAX];
    let reply = exchange_tcp(server.http, &post("/", &body)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), format!("XmlRpc {BODY_SIZE_BYTES_MAX} tcp -"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn body_over_the_limit_by_content_length_gets_413_unread() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let stream = TcpStream::connect(server.http).await.unwrap();
    let mut stream = BufReader::new(stream);
    // Only the head and a little of the body are sent: the server must answer from the
    // Content-Length alone, without waiting for the rest.
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n<methodCall>",
        BODY_SIZE_BYTES_MAX + 1
    );
    stream.get_mut().write_all(head.as_bytes()).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut stream))
        .await
        .expect("answered without the rest of the body");
    // 413 (RFC 9110), where xapi answers 500: docs/differences.md.
    assert_eq!(reply.status, 413);
    assert_eq!(reply.header("content-type"), Some("text/html"));
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(reply.text().starts_with("<html><body><h1>HTTP 413"), "{}", reply.text());
    assert_closed(&mut stream).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn chunked_body_over_the_limit_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;

    // A chunked body under the limit is accepted.
    let small = b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let reply = exchange_tcp(server.http, small).await;
    assert_eq!(reply.text(), "XmlRpc 11 tcp -");

    // A chunked body over the limit is refused while it streams in. The writer runs on its own
    // task because the server stops reading part-way and the writes may then fail.
    let stream = TcpStream::connect(server.http).await.unwrap();
    let (read_half, mut write_half) = stream.into_split();
    let writer = tokio::spawn(async move {
        let head = "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
        write_half.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..(BODY_SIZE_BYTES_MAX / chunk.len() + 2) {
            write_half.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            write_half.write_all(&chunk).await?;
            write_half.write_all(b"\r\n").await?;
        }
        write_half.write_all(b"0\r\n\r\n").await?;
        std::io::Result::Ok(write_half)
    });
    let mut reader = BufReader::new(read_half);
    let reply = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut reader)).await.expect("answered");
    assert_eq!(reply.status, 413);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_closed(&mut reader).await;
    drop(writer.await.unwrap());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unsupported_transfer_coding_is_501_and_rpc_replies_say_keep_alive() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let gzip = b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_eq!(exchange_tcp(server.http, gzip).await.status, 501);
    let reply = exchange_tcp(server.http, &post("/", b"x")).await;
    assert_eq!(reply.header("connection"), Some("keep-alive"));
    // xapi's `website_https_only`: no page over plain HTTP.
    assert_eq!(exchange_tcp(server.http, &request("GET", "/", "", b"")).await.status, 403);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn keep_alive_serves_two_requests_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let stream = TcpStream::connect(server.http).await.unwrap();
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(&post("/", b"first")).await.unwrap();
    let first = read_reply(&mut stream).await;
    assert_eq!(first.text(), "XmlRpc 5 tcp -");
    stream.get_mut().write_all(&post("/jsonrpc", b"second")).await.unwrap();
    let second = read_reply(&mut stream).await;
    assert_eq!(second.text(), "JsonRpc 6 tcp -");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unix_socket_serves_plain_http_as_unix_origin() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let mode = std::fs::metadata(&server.unix).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let stream = UnixStream::connect(&server.unix).await.unwrap();
    let reply = exchange(stream, &post("/", b"<call/>")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "XmlRpc 7 unix -");

    let unix = server.unix.clone();
    server.stop().await.unwrap();
    assert!(!unix.exists(), "socket file removed on shutdown");
}

#[tokio::test]
async fn stale_unix_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xapi.sock");
    // A socket file nobody listens on, as a crashed run leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = start(dir.path(), None).await;
    let reply = exchange(UnixStream::connect(&path).await.unwrap(), &post("/", b"x")).await;
    assert_eq!(reply.text(), "XmlRpc 1 unix -");

    // A live socket is not taken over.
    let config = ServerConfig {
        https: None,
        http: None,
        unix: Some(path.clone()),
        tls: TlsSource::SelfSigned { dir: dir.path().to_owned() },
    };
    let refused = Server::bind(config).await;
    assert!(matches!(refused, Err(ServerError::BindUnix { .. })));
    server.stop().await.unwrap();
}

/// Connects over TLS (only TLS 1.2 if `tls12_only`), offering ALPN `http/1.1`.
async fn connect_tls(addr: SocketAddr, tls12_only: bool) -> tokio_rustls::client::TlsStream<TcpStream> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone());
    let builder = if tls12_only {
        builder.with_protocol_versions(&[&rustls::version::TLS12])
    } else {
        builder.with_safe_default_protocol_versions()
    };
    let mut config = builder
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(xenledger::remote::AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("TLS handshake")
}

#[tokio::test]
async fn https_with_a_generated_certificate_that_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = dir.path().join("tls");
    let server = start(dir.path(), Some(&tls_dir)).await;
    let https = server.https.unwrap();

    let key_mode = std::fs::metadata(tls_dir.join(KEY_FILE_NAME)).unwrap().permissions().mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let certificate = std::fs::read(tls_dir.join(CERT_FILE_NAME)).unwrap();
    let fingerprint = certificate_fingerprint_sha256(&tls_dir).expect("fingerprint");
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");

    let stream = connect_tls(https, false).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let reply = exchange(stream, &post("/", b"hello")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "XmlRpc 5 tls -");

    // The Go SDK limits TLS 1.2 to ECDHE-RSA suites, which need an RSA certificate.
    let stream = connect_tls(https, true).await;
    let suite = stream.get_ref().1.negotiated_cipher_suite().unwrap();
    assert!(format!("{:?}", suite.suite()).contains("ECDHE_RSA"), "{suite:?}");
    let reply = exchange(stream, &post("/jsonrpc", b"{}")).await;
    assert_eq!(reply.text(), "JsonRpc 2 tls -");
    server.stop().await.unwrap();

    // A second start loads the same files instead of generating new ones.
    let server = start(dir.path(), Some(&tls_dir)).await;
    assert_eq!(std::fs::read(tls_dir.join(CERT_FILE_NAME)).unwrap(), certificate);
    assert_eq!(certificate_fingerprint_sha256(&tls_dir), Some(fingerprint));
    let reply = exchange(connect_tls(server.https.unwrap(), false).await, &post("/", b"")).await;
    assert_eq!(reply.text(), "XmlRpc 0 tls -");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_finishes_the_in_flight_request_then_returns() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let http = server.http;

    // An idle kept-alive connection must not hold shutdown up.
    let idle = TcpStream::connect(http).await.unwrap();
    let mut idle = BufReader::new(idle);
    idle.get_mut().write_all(&post("/", b"x")).await.unwrap();
    assert_eq!(read_reply(&mut idle).await.status, 200);

    let sent = Instant::now();
    let slow = tokio::spawn(async move { exchange_tcp(http, &post("/", b"sleep")).await });
    // Let the slow request reach the handler before asking for shutdown.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = server.stop.send(());

    let reply = slow.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "XmlRpc 5 tcp -");
    assert!(sent.elapsed() >= SLOW_HANDLER_DELAY);

    let served = tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns well before the drain timeout");
    served.unwrap().unwrap();
    assert_closed(&mut idle).await;
    assert!(TcpStream::connect(http).await.is_err(), "no longer accepting");
}
