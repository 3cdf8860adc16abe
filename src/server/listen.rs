//! Binding the listeners, accepting connections, and each connection's life cycle.
//!
//! A connection's life:
//!
//! 1. The accept loop accepts, then takes a slot from its listener's semaphore. At the limit it
//!    asks the longest-idle keep-alive connection to close ([`IdleConnections`]) and waits for
//!    its slot; while it waits, further clients stay in the kernel backlog. Connections busy
//!    with a request are never closed for this: if all are busy, the new client waits for one
//!    to end, as with xapi's `server_io.ml`.
//! 2. A task is spawned that owns the slot. For HTTPS it does the TLS handshake first, within
//!    [`TLS_HANDSHAKE_TIMEOUT`], so a slow handshake never blocks the accept loop.
//! 3. hyper serves HTTP/1.1 with keep-alive until the client closes, a timeout fires, or
//!    shutdown begins.
//!
//! Shutdown runs in phases broadcast over a watch channel. `Draining`: the accept loops are
//! gone, and every connection gets hyper's graceful shutdown (an idle connection closes at
//! once; a busy one finishes its current request and then closes). `Aborting`, after
//! [`DRAIN_TIMEOUT`]: the remaining connection tasks drop their connections. `serve` knows
//! every connection has ended when it can take back all the semaphore slots.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::idle::{BusyHandle, IdleConnections, Registration};
use super::io::WriteDeadline;
use super::{
    http, tls, Origin, RpcHandler, ServerConfig, ServerError, CONNECTIONS_MAX, DRAIN_TIMEOUT, HEADER_READ_TIMEOUT,
    TLS_HANDSHAKE_TIMEOUT, UNIX_CONNECTIONS_MAX, WRITE_STALL_TIMEOUT,
};

/// How long dropped connection tasks get to unwind after the drain timeout.
const ABORT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a client admitted at the limit waits for the closed connection's slot before another
/// idle connection is asked to close.
const ADMIT_RETRY: Duration = Duration::from_millis(100);

/// Pause after a failed `accept`, so that running out of file descriptors does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// File mode of the Unix socket. xapi's socket is reachable by root only, and a request on it is
/// treated as root's, so only the owner may connect.
const UNIX_SOCKET_MODE: u32 = 0o600;

/// Bound listeners, ready to [`serve`](Server::serve).
pub struct Server {
    https: Option<(TcpListener, TlsAcceptor)>,
    http: Option<TcpListener>,
    unix: Option<(UnixListener, PathBuf)>,
    https_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
}

/// Where shutdown has got to; connections watch it. The order is the order they happen in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    Draining,
    Aborting,
}

/// What every connection task needs, cloned into each.
#[derive(Clone)]
struct ConnectionContext {
    handler: Arc<dyn RpcHandler>,
    http1: http1::Builder,
    phase: watch::Receiver<Phase>,
}

impl Server {
    /// Loads or generates the certificate (if HTTPS is wanted) and binds every configured
    /// listener. Port 0 binds a free port; the accessors report the real addresses.
    ///
    /// # Errors
    ///
    /// [`ServerError::Tls`] if the certificate cannot be loaded or generated, and
    /// [`ServerError::Bind`] or [`ServerError::BindUnix`] if a listener cannot be bound (a Unix
    /// socket path that another server is listening on, or that is not a socket, included).
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let https = match config.https {
            Some(addr) => {
                let source = config.tls.clone();
                let acceptor = tokio::task::spawn_blocking(move || tls::acceptor(&source))
                    .await
                    .map_err(|error| ServerError::Tls(format!("certificate task: {error}")))??;
                Some((bind_tcp(addr).await?, acceptor))
            }
            None => None,
        };
        let http = match config.http {
            Some(addr) => Some(bind_tcp(addr).await?),
            None => None,
        };
        let unix = match config.unix {
            Some(path) => Some((bind_unix(&path)?, path)),
            None => None,
        };
        let https_addr = https.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
        let http_addr = http.as_ref().map(TcpListener::local_addr).transpose()?;
        if let Some(addr) = https_addr {
            tracing::info!(%addr, "listening for HTTPS");
        }
        if let Some(addr) = http_addr {
            tracing::info!(%addr, "listening for HTTP");
        }
        if let Some((_, path)) = &unix {
            tracing::info!(path = %path.display(), "listening on unix socket");
        }
        Ok(Server { https, http, unix, https_addr, http_addr })
    }

    /// The bound HTTPS address, if HTTPS is configured.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The bound plain HTTP address, if HTTP is configured.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The Unix socket path, if one is configured.
    pub fn unix_path(&self) -> Option<&Path> {
        self.unix.as_ref().map(|(_, path)| path.as_path())
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// for up to [`DRAIN_TIMEOUT`], drops whatever is left, removes the Unix socket file and
    /// returns. Dropping the returned future instead stops accepting and drops every
    /// connection at once, without draining (their tasks see the shutdown channel close).
    ///
    /// # Errors
    ///
    /// None at present: per-connection and accept failures are logged and survived. The
    /// `Result` leaves room for failures that should stop the server.
    pub async fn serve(
        self,
        handler: Arc<dyn RpcHandler>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let (phase_tx, phase_rx) = watch::channel(Phase::Running);
        let mut http1 = http1::Builder::new();
        http1.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).keep_alive(true);
        let context = ConnectionContext { handler, http1, phase: phase_rx };

        let https_slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        let http_slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        let unix_slots = Arc::new(Semaphore::new(UNIX_CONNECTIONS_MAX));
        let slots = [
            (https_slots.clone(), CONNECTIONS_MAX),
            (http_slots.clone(), CONNECTIONS_MAX),
            (unix_slots.clone(), UNIX_CONNECTIONS_MAX),
        ];

        let https = async {
            if let Some((listener, acceptor)) = self.https {
                accept_tcp(listener, Some(acceptor), https_slots, context.clone()).await;
            }
        };
        let http = async {
            if let Some(listener) = self.http {
                accept_tcp(listener, None, http_slots, context.clone()).await;
            }
        };
        let unix_path = self.unix.as_ref().map(|(_, path)| path.clone());
        let unix = async {
            if let Some((listener, _)) = self.unix {
                accept_unix(listener, unix_slots, context.clone()).await;
            }
        };
        // The accept loops never finish on their own, and the listeners are closed when this
        // select drops them.
        tokio::select! {
            () = shutdown => {}
            _ = async { tokio::join!(https, http, unix) } => {}
        }
        tracing::info!("shutting down: no longer accepting, draining connections");
        if let Some(path) = unix_path {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot remove unix socket");
            }
        }

        phase_tx.send_replace(Phase::Draining);
        if tokio::time::timeout(DRAIN_TIMEOUT, all_closed(&slots)).await.is_err() {
            tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; dropping them");
            phase_tx.send_replace(Phase::Aborting);
            if tokio::time::timeout(ABORT_TIMEOUT, all_closed(&slots)).await.is_err() {
                tracing::warn!("connection tasks still unwinding; returning anyway");
            }
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })
}

/// Binds the Unix socket at `path` with mode [`UNIX_SOCKET_MODE`], replacing a stale socket file
/// left by a previous run. A live socket (something accepts on it) or a path that is not a
/// socket is left alone and reported. The mode is set just after binding, so for a moment the
/// socket has the umask's mode; keep it in a directory only root can enter, as xapi does.
fn bind_unix(path: &Path) -> Result<UnixListener, ServerError> {
    let error = |source: io::Error| ServerError::BindUnix { path: path.to_owned(), source };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(error(io::Error::new(io::ErrorKind::AddrInUse, "another server is listening on it")));
            }
            std::fs::remove_file(path).map_err(error)?;
        }
        Ok(_) => {
            return Err(error(io::Error::new(io::ErrorKind::AlreadyExists, "the path exists and is not a socket")));
        }
    }
    let listener = UnixListener::bind(path).map_err(error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(UNIX_SOCKET_MODE)).map_err(error)?;
    Ok(listener)
}

/// Resolves once every connection slot is free again, that is once every connection has ended.
async fn all_closed(slots: &[(Arc<Semaphore>, usize)]) {
    for (semaphore, count) in slots {
        let count = u32::try_from(*count).expect("connection limits fit in u32");
        // The semaphores are never closed, so this only waits.
        let _all = semaphore.acquire_many(count).await;
    }
}

/// A slot for a client just accepted. At the limit, closes the longest-idle connection to make
/// room, and waits (asking again every [`ADMIT_RETRY`]) while every connection is busy.
async fn admit(slots: &Arc<Semaphore>, idle: &IdleConnections, listener: &'static str) -> OwnedSemaphorePermit {
    if let Ok(permit) = slots.clone().try_acquire_owned() {
        return permit;
    }
    let mut warned = false;
    loop {
        if idle.close_longest_idle() {
            tracing::debug!(listener, "connection limit reached; closed the longest-idle connection");
        } else if !warned {
            tracing::warn!(listener, "connection limit reached and every connection busy; waiting for one to end");
            warned = true;
        }
        // The semaphores are never closed.
        if let Ok(permit) = tokio::time::timeout(ADMIT_RETRY, slots.clone().acquire_owned()).await {
            return permit.expect("semaphore never closed");
        }
    }
}

async fn accept_tcp(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    slots: Arc<Semaphore>,
    context: ConnectionContext,
) {
    let kind = if tls.is_some() { "https" } else { "http" };
    let idle = Arc::new(IdleConnections::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(listener = kind, %error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let slot = admit(&slots, &idle, kind).await;
        let registration = idle.register();
        // Replies are written whole; waiting to coalesce them only adds latency.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let context = context.clone();
        match &tls {
            None => {
                let origin = Origin::Tcp { peer, tls: false };
                spawn_connection(slot, context.clone(), serve_http(stream, origin, registration, context));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let origin = Origin::Tcp { peer, tls: true };
                spawn_connection(slot, context.clone(), async move {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => serve_http(stream, origin, registration, context).await,
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_elapsed) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

async fn accept_unix(listener: UnixListener, slots: Arc<Semaphore>, context: ConnectionContext) {
    let idle = Arc::new(IdleConnections::default());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::warn!(listener = "unix", %error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let slot = admit(&slots, &idle, "unix").await;
        let registration = idle.register();
        let context = context.clone();
        spawn_connection(slot, context.clone(), serve_http(stream, Origin::Unix, registration, context));
    }
}

/// Resolves once shutdown has reached `target` (or passed it), or the server is gone.
async fn reached(phase: &mut watch::Receiver<Phase>, target: Phase) {
    // The guard `wait_for` returns must not live across an await: it is not `Send`.
    let _ = phase.wait_for(|now| *now >= target).await;
}

/// Client connections open now, over every listener of the process.
static OPEN_CONNECTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many client connections are open (for `/metrics`).
pub fn open_connections() -> usize {
    OPEN_CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts a connection while its task lives.
struct OpenConnection;

impl OpenConnection {
    fn new() -> OpenConnection {
        OPEN_CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        OPEN_CONNECTIONS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs `connection` in its own task holding `slot`, and drops it if shutdown reaches
/// [`Phase::Aborting`].
fn spawn_connection(
    slot: OwnedSemaphorePermit,
    context: ConnectionContext,
    connection: impl Future<Output = ()> + Send + 'static,
) {
    let mut phase = context.phase;
    tokio::spawn(async move {
        let _slot = slot;
        let _open = OpenConnection::new();
        tokio::select! {
            () = connection => {}
            () = reached(&mut phase, Phase::Aborting) => {
                tracing::debug!("connection dropped at the end of the drain");
            }
        }
    });
}

/// Serves HTTP/1.1 on one established connection until it ends, switching to hyper's graceful
/// shutdown when the server starts draining or the connection is chosen to make room at the limit
/// (an idle connection then closes at once).
async fn serve_http<T>(io: T, origin: Origin, registration: Registration, context: ConnectionContext)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handler = context.handler;
    let activity: BusyHandle = registration.handle();
    let service = service_fn(move |req| {
        let handler = handler.clone();
        let busy = activity.busy();
        async move {
            let response = http::respond(req, origin, handler).await;
            drop(busy);
            Ok::<_, Infallible>(response)
        }
    });
    let io = TokioIo::new(WriteDeadline::new(io, WRITE_STALL_TIMEOUT));
    let connection = context.http1.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut phase = context.phase;
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = reached(&mut phase, Phase::Draining) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = registration.close.notified() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // Timeouts, resets and malformed requests: routine on a public port.
        tracing::debug!(?origin, %error, "connection ended with an error");
    }
}
