//! The network scenarios: our HTTPS transport alone (`https-ceiling`), the real server over
//! XML-RPC and JSON-RPC (`xmlrpc-reads`, `jsonrpc-reads`, `xmlrpc-writes`), and `event.from`
//! wake-up latency with many parked waiters (`event-latency`).
//!
//! Server and clients run in one process, by default on one tokio runtime (the server's default:
//! one worker per CPU), so the clients take CPU from the server; `cpu_s` is the whole process.
//! `--client-threads N` gives the clients a runtime of their own with N workers named
//! `bench-client`, which lets `perf report --sort comm` split client from server CPU. Every client
//! is one keep-alive connection making one call at a time, and every call is timed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use xenledger::node::{events, FirstStart, Node, Origin, Reply as NodeReply};
use xenledger::rpc::NodeHandler;
use xenledger::server::{RpcHandler, RpcRequest, RpcResponse, CONNECTIONS_MAX};
use xenledger::value::Value;
use xenledger::wire::{jsonrpc, xmlrpc};

use super::https::{self, Conn, Running, JSON_SUCCESS, XML_SUCCESS};
use super::{bench_actor, create_vms, load_avg, process_cpu_s, round2, temp_dir, Extra, Latencies, Options, Run};

/// VMs in the served state.
const VMS: usize = 100;
/// Root's password on the bench nodes.
const PASSWORD: &str = "bench-password";
/// Size of `https-ceiling`'s fixed reply body.
const CEILING_REPLY_BYTES: usize = 300;
/// Connections that may be opening (TCP + TLS handshake) at once.
const CONNECTS_IN_FLIGHT: usize = 64;
/// `event-latency`: writes measured, after the warm-up ones that are not.
const EVENT_WRITES: usize = 50;
const EVENT_WARMUP_WRITES: usize = 2;
/// `event-latency`: pause after every waiter has its reply, before the next write, so each
/// write finds every waiter parked again.
const EVENT_WRITE_GAP: Duration = Duration::from_millis(20);
/// `event-latency`: how long to let the server park the waiters before reading the RSS.
const EVENT_PARK_SETTLE: Duration = Duration::from_millis(500);
/// `event-latency`: a write whose wake-ups take longer than this fails the scenario.
const EVENT_WAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// `event-latency`: root sessions per originator (the node keeps at most 500 per originator).
const SESSIONS_PER_ORIGINATOR: usize = 250;
/// `event.from`'s timeout, in seconds, as clients such as XenCenter send it.
const EVENT_FROM_TIMEOUT_S: f64 = 30.0;

/// Throughputs measured earlier in this invocation, for the ratios of `all`.
pub static REDB_CEILING_OPS_PER_S: OnceLock<f64> = OnceLock::new();
static HTTPS_CEILING_OPS_PER_S: OnceLock<f64> = OnceLock::new();

/// The wire protocol a scenario speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    Xml,
    Json,
}

impl Wire {
    fn path(self) -> &'static str {
        match self {
            Wire::Xml => "/",
            Wire::Json => "/jsonrpc",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Wire::Xml => "text/xml",
            Wire::Json => "application/json",
        }
    }

    fn success(self) -> &'static [u8] {
        match self {
            Wire::Xml => XML_SUCCESS,
            Wire::Json => JSON_SUCCESS,
        }
    }

    fn encode(self, id: u64, method: &str, params: &[Value]) -> Vec<u8> {
        match self {
            Wire::Xml => xmlrpc::encode_call(method, params),
            Wire::Json => jsonrpc::encode_call(jsonrpc::Version::V2, &json!(id), method, params),
        }
    }

    /// Calls a method whose result is a string or ref.
    async fn call_for_string(self, conn: &mut Conn, method: &str, params: &[Value]) -> String {
        let reply = conn.post(self.path(), self.content_type(), &self.encode(0, method, params)).await.expect(method);
        let result = match self {
            Wire::Xml => https::xml_string_result(reply.body),
            Wire::Json => https::json_string_result(reply.body),
        };
        result.unwrap_or_else(|| panic!("{method}: HTTP {} {}", reply.status, https::excerpt(reply.body)))
    }

    async fn login(self, conn: &mut Conn) -> String {
        let params = [Value::str("root"), Value::str(PASSWORD), Value::str("1.0"), Value::str("throughput")];
        self.call_for_string(conn, "session.login_with_password", &params).await
    }
}

/// The server's runtime (its default: one worker per CPU) and the clients'.
struct Runtimes {
    server: Runtime,
    /// `None`: the clients run on the server's runtime.
    clients: Option<Runtime>,
}

impl Runtimes {
    fn new(options: &Options) -> Runtimes {
        let server = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
        let clients = (options.client_threads > 0).then(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(options.client_threads)
                .thread_name("bench-client")
                .enable_all()
                .build()
                .expect("client runtime")
        });
        Runtimes { server, clients }
    }

    fn clients(&self) -> &Runtime {
        self.clients.as_ref().unwrap_or(&self.server)
    }
}

/// The `runtimes` key: `"shared"`, or how many threads the clients' own runtime has.
fn runtimes_layout(options: &Options) -> serde_json::Value {
    match options.client_threads {
        0 => json!("shared"),
        threads => json!(format!("clients on {threads} own threads")),
    }
}

/// A node on a fresh data dir, with `vms` VMs (made in-process, group-committed).
fn open_node(label: &str, vms: usize) -> (TempDir, Arc<Node>, Arc<Vec<String>>) {
    let dir = temp_dir(label);
    let first =
        FirstStart { root_password: Some(PASSWORD.into()), hostname: "bench".into(), address: "127.0.0.1".into() };
    let (node, _) = Node::open(&dir.path().join("data"), &first).expect("Node::open");
    let vms = create_vms(&node, |node| &node.ledger, vms);
    (dir, node, Arc::new(vms))
}

/// Opens `count` HTTPS connections, [`CONNECTS_IN_FLIGHT`] at a time, and on each runs `setup`
/// (logging in, say); returns what each `setup` returned, in connection order.
async fn connect_all<T, F>(addr: std::net::SocketAddr, count: usize, setup: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Conn) -> Pin<Box<dyn Future<Output = T> + Send>> + Send + Sync + 'static,
{
    assert!(count <= CONNECTIONS_MAX, "the HTTPS listener serves at most {CONNECTIONS_MAX} connections");
    let (connector, gate, setup) = (https::connector(), Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT)), Arc::new(setup));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (connector, gate, setup) = (connector.clone(), gate.clone(), setup.clone());
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.expect("gate open");
                let conn = Conn::https(addr, &connector).await.expect("HTTPS connect");
                let out = setup(i, conn).await;
                drop(permit);
                out
            })
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    for task in tasks {
        out.push(task.await.expect("connect task"));
    }
    out
}

/// Writes the body of a connection's call `n` into the buffer it is given.
type BodyFn = Box<dyn FnMut(u64, &mut Vec<u8>) + Send>;

/// One connection of a throughput run.
struct Client {
    conn: Conn,
    wire: Wire,
    body: BodyFn,
}

/// What a throughput run measured besides [`Run`].
struct Traffic {
    request_bytes: usize,
    reply_bytes_mean: f64,
    cipher: Option<String>,
}

/// Runs every client for `seconds` once all are ready; each call's reply must be a success.
async fn run_timed(clients: Vec<Client>, seconds: f64) -> (Run, Traffic) {
    let start_line = Arc::new(tokio::sync::Barrier::new(clients.len() + 1));
    let cipher = clients.first().and_then(|c| c.conn.cipher.clone());
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let start_line = start_line.clone();
            tokio::spawn(async move {
                let (path, content_type, success) =
                    (client.wire.path(), client.wire.content_type(), client.wire.success());
                let mut latencies = Vec::with_capacity(1 << 16);
                let (mut body, mut reply_bytes, mut request_bytes) = (Vec::with_capacity(1024), 0usize, 0usize);
                start_line.wait().await;
                let deadline = Instant::now() + Duration::from_secs_f64(seconds);
                let mut done = 0u64;
                loop {
                    body.clear();
                    (client.body)(done, &mut body);
                    let start = Instant::now();
                    if start >= deadline {
                        break;
                    }
                    let reply = client.conn.post(path, content_type, &body).await.expect("call");
                    latencies.push(start.elapsed().as_nanos() as u64);
                    if reply.status != 200 || !reply.body.starts_with(success) {
                        panic!("call failed: HTTP {} {}", reply.status, https::excerpt(reply.body));
                    }
                    reply_bytes += reply.body.len();
                    request_bytes = body.len();
                    done += 1;
                }
                (done, latencies, reply_bytes, request_bytes)
            })
        })
        .collect();
    let load = load_avg();
    let cpu_before = process_cpu_s();
    start_line.wait().await;
    let start = Instant::now();
    let (mut ops, mut latencies, mut reply_bytes, mut request_bytes) = (0, Latencies::default(), 0, 0);
    for task in tasks {
        let (done, samples, replied, requested) = task.await.expect("client task");
        ops += done;
        latencies.0.extend(samples);
        reply_bytes += replied;
        request_bytes = request_bytes.max(requested);
    }
    let seconds = start.elapsed().as_secs_f64();
    let run = Run { ops, seconds, cpu_s: process_cpu_s() - cpu_before, load, latencies };
    let reply_bytes_mean = round2(reply_bytes as f64 / ops.max(1) as f64);
    (run, Traffic { request_bytes, reply_bytes_mean, cipher })
}

/// The keys every throughput line of these scenarios ends with: the request and mean reply
/// sizes, the cipher suite, and the rate per CPU second of the whole process (clients included),
/// which the machine's other load disturbs less than the rate.
fn traffic_extra(run: &Run, traffic: Traffic) -> Extra {
    vec![
        ("ops_per_cpu_s", json!((run.ops as f64 / run.cpu_s.max(0.01)).round())),
        ("request_bytes", json!(traffic.request_bytes)),
        ("reply_bytes", json!(traffic.reply_bytes_mean)),
        ("cipher", json!(traffic.cipher)),
    ]
}

fn ratio(ops_per_s: f64, ceiling: &OnceLock<f64>) -> serde_json::Value {
    match ceiling.get() {
        Some(ceiling) if *ceiling > 0.0 => json!((ops_per_s / ceiling * 1000.0).round() / 1000.0),
        _ => json!(null),
    }
}

// ---------------------------------------------------------------------------------------------------
// https-ceiling

/// Answers every call with the same body, reading nothing: the transport alone.
struct FixedReply(Vec<u8>);

impl RpcHandler for FixedReply {
    fn handle(&self, _req: RpcRequest) -> Pin<Box<dyn Future<Output = RpcResponse> + Send + '_>> {
        Box::pin(async move { RpcResponse { status: 200, content_type: "text/xml", body: self.0.clone() } })
    }
}

/// An XML-RPC success reply of exactly [`CEILING_REPLY_BYTES`].
fn fixed_reply() -> Vec<u8> {
    let empty = xmlrpc::encode_response(&Ok(Value::str("")));
    let padding = CEILING_REPLY_BYTES.saturating_sub(empty.len());
    let body = xmlrpc::encode_response(&Ok(Value::str("x".repeat(padding))));
    debug_assert_eq!(body.len(), CEILING_REPLY_BYTES.max(empty.len()));
    body
}

pub fn https_ceiling(options: &Options) {
    let clients = options.clients.unwrap_or(64);
    let dir = temp_dir("https");
    let runtimes = Runtimes::new(options);
    let server =
        runtimes.server.block_on(Running::start(Arc::new(FixedReply(fixed_reply())), &dir.path().join("tls"), false));
    let (run, traffic) = runtimes.clients().block_on(async {
        // The same request bodies as `xmlrpc-reads`, which the handler does not look at.
        let session = "OpaqueRef:00000000-0000-0000-0000-000000000000".to_string();
        let vm = "OpaqueRef:11111111-1111-1111-1111-111111111111".to_string();
        let request = Arc::new(xmlrpc::encode_call("VM.get_record", &[Value::str(session), Value::str(vm)]));
        let clients = connect_all(server.https, clients, move |_, conn| {
            let request = request.clone();
            Box::pin(async move {
                let body = Box::new(move |_: u64, out: &mut Vec<u8>| out.extend_from_slice(&request));
                Client { conn, wire: Wire::Xml, body }
            })
        })
        .await;
        run_timed(clients, options.seconds).await
    });
    runtimes.server.block_on(server.stop());
    let _ = HTTPS_CEILING_OPS_PER_S.set(run.ops as f64 / run.seconds);
    let mut extra = vec![
        ("transport", json!("https")),
        ("handler", json!("fixed reply, body unread")),
        ("runtimes", runtimes_layout(options)),
    ];
    extra.extend(traffic_extra(&run, traffic));
    run.report("https-ceiling", clients, extra);
}

// ---------------------------------------------------------------------------------------------------
// xmlrpc-reads, jsonrpc-reads, xmlrpc-writes

/// Starts the real server on `node`, logs `clients` connections in (argon2, before timing), and
/// runs `body(session, client)` on each.
fn run_node_clients<F>(
    node: &Arc<Node>,
    dir: &TempDir,
    options: &Options,
    clients: usize,
    wire: Wire,
    body: F,
) -> (Run, Traffic)
where
    F: Fn(String, usize) -> BodyFn + Send + Sync + 'static,
{
    let runtimes = Runtimes::new(options);
    let handler = Arc::new(NodeHandler { node: node.clone() });
    let body = Arc::new(body);
    let server = runtimes.server.block_on(Running::start(handler, &dir.path().join("tls"), false));
    let measured = runtimes.clients().block_on(async {
        let clients = connect_all(server.https, clients, move |client, mut conn| {
            let body = body.clone();
            Box::pin(async move {
                let session = wire.login(&mut conn).await;
                Client { conn, wire, body: body(session, client) }
            })
        })
        .await;
        run_timed(clients, options.seconds).await
    });
    runtimes.server.block_on(server.stop());
    measured
}

/// `VM.get_record(session, vm)` over `wire`, cycling through the VMs.
fn reads(options: &Options, wire: Wire, scenario: &str) {
    let clients = options.clients.unwrap_or(64);
    let (dir, node, vms) = open_node("net-reads", VMS);
    let (run, traffic) = run_node_clients(&node, &dir, options, clients, wire, move |session, client| {
        // Bodies made up front: the client's CPU is the server's CPU.
        let bodies: Vec<Vec<u8>> = vms
            .iter()
            .enumerate()
            .map(|(i, vm)| wire.encode(i as u64, "VM.get_record", &[Value::str(&session), Value::str(vm)]))
            .collect();
        Box::new(move |n, out| out.extend_from_slice(&bodies[(n as usize * 7 + client * 131) % bodies.len()]))
    });
    let ops_per_s = run.ops as f64 / run.seconds;
    let mut extra = vec![
        ("vms", json!(VMS)),
        ("transport", json!("https")),
        ("runtimes", runtimes_layout(options)),
        ("ratio_to_https_ceiling", ratio(ops_per_s, &HTTPS_CEILING_OPS_PER_S)),
    ];
    extra.extend(traffic_extra(&run, traffic));
    run.report(scenario, clients, extra);
    drop(node);
}

pub fn xmlrpc_reads(options: &Options) {
    reads(options, Wire::Xml, "xmlrpc-reads");
}

pub fn jsonrpc_reads(options: &Options) {
    reads(options, Wire::Json, "jsonrpc-reads");
}

/// Durable `VM.set_name_label(session, vm, "name-<n>")`, each connection on its own VM.
pub fn xmlrpc_writes(options: &Options) {
    let clients = options.clients.unwrap_or(64);
    let (dir, node, vms) = open_node("net-writes", VMS.max(clients));
    let before = node.ledger.snapshot().seq;
    let (run, traffic) = run_node_clients(&node, &dir, options, clients, Wire::Xml, move |session, client| {
        let (session, vm) = (Value::str(session), Value::str(&vms[client]));
        Box::new(move |n, out| {
            let name = Value::str(format!("name-{client}-{n}"));
            out.extend_from_slice(&xmlrpc::encode_call("VM.set_name_label", &[session.clone(), vm.clone(), name]));
        })
    });
    // The logins are entries too.
    let entries = node.ledger.snapshot().seq - before - clients as u64;
    assert_eq!(entries, run.ops, "one log entry per call");
    let ops_per_s = run.ops as f64 / run.seconds;
    let mut extra = vec![
        ("entries", json!(entries)),
        ("vms", json!(VMS.max(clients))),
        ("transport", json!("https")),
        ("runtimes", runtimes_layout(options)),
        ("ratio_to_redb_ceiling", ratio(ops_per_s, &REDB_CEILING_OPS_PER_S)),
    ];
    extra.extend(traffic_extra(&run, traffic));
    run.report("xmlrpc-writes", clients, extra);
    drop(node);
}

// ---------------------------------------------------------------------------------------------------
// event-latency

/// What one waiter saw: for each reply, the log position of its token and when it arrived.
struct WaiterLog {
    https: bool,
    replies: Vec<(u64, Instant)>,
    reply_bytes: usize,
}

/// Shared between the writer and the waiters.
#[derive(Default)]
struct EventSync {
    /// Waiters that have sent their first `event.from`.
    parked: AtomicUsize,
    /// Replies received, over all waiters (checked before counting, see [`waiter`]).
    replies: AtomicUsize,
    /// Set before the last write: waiters stop after its reply.
    stop: AtomicBool,
}

/// The log position in an `event.from` reply's token (the last member of the struct).
fn reply_token_seq(body: &[u8]) -> u64 {
    const TOKEN: &[u8] = b"<name>token</name><value>";
    let at = https::rfind(body, TOKEN).unwrap_or_else(|| panic!("no token in {}", https::excerpt(body)));
    let token = &body[at + TOKEN.len()..];
    let digits = token.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&token[..digits]).ok().and_then(|d| d.parse().ok()).expect("a numeric token")
}

/// Parks `event.from(session, ["vm"], token, 30.0)` on `conn`, and re-parks with the new token as
/// soon as each reply arrives, until [`EventSync::stop`].
async fn waiter(mut conn: Conn, https: bool, session: String, mut token: String, sync: Arc<EventSync>) -> WaiterLog {
    let (session, classes) = (Value::str(session), Value::Set(vec![Value::str("vm")]));
    let mut replies = Vec::with_capacity(EVENT_WRITES + EVENT_WARMUP_WRITES);
    let (mut first, mut reply_bytes) = (true, 0);
    loop {
        let params = [session.clone(), classes.clone(), Value::str(&token), Value::Float(EVENT_FROM_TIMEOUT_S)];
        let body = xmlrpc::encode_call("event.from", &params);
        conn.send("/", "text/xml", &body).await.expect("send event.from");
        if first {
            sync.parked.fetch_add(1, Ordering::SeqCst);
            first = false;
        }
        let reply = conn.receive().await.expect("event.from reply");
        let arrived = Instant::now();
        if reply.status != 200 || !reply.body.starts_with(XML_SUCCESS) {
            panic!("event.from failed: HTTP {} {}", reply.status, https::excerpt(reply.body));
        }
        let seq = reply_token_seq(reply.body);
        replies.push((seq, arrived));
        reply_bytes += reply.body.len();
        token = events::format_token(seq);
        // Read before counting: the writer sets `stop` only after every reply of the previous
        // write is counted, so only the last write's replies can see it.
        let stop = sync.stop.load(Ordering::SeqCst);
        sync.replies.fetch_add(1, Ordering::SeqCst);
        if stop {
            return WaiterLog { https, replies, reply_bytes };
        }
    }
}

/// A write the writer made: its log position, when its call returned, and how long it took.
struct Ack {
    seq: u64,
    at: Instant,
    took: Duration,
}

/// Commits the writes one at a time from a plain thread (so the acknowledgement is seen as soon
/// as the ledger answers, not when a busy runtime gets round to it), each once every waiter has
/// had the previous one's reply and [`EVENT_WRITE_GAP`] has passed.
fn event_writer(node: Arc<Node>, vm: String, waiters: usize, sync: Arc<EventSync>) -> Vec<Ack> {
    let total = EVENT_WARMUP_WRITES + EVENT_WRITES;
    let mut acks = Vec::with_capacity(total);
    for i in 0..total {
        if i + 1 == total {
            sync.stop.store(true, Ordering::SeqCst);
        }
        let start = Instant::now();
        let args = vec![Value::str(&vm), Value::str(format!("name-{i}"))];
        let (_, seq) = node.ledger.invoke(bench_actor(), "VM.set_name_label", args).expect("VM.set_name_label");
        let at = Instant::now();
        acks.push(Ack { seq, at, took: at - start });
        let woken = waiters * (i + 1);
        while sync.replies.load(Ordering::SeqCst) < woken {
            assert!(
                at.elapsed() < EVENT_WAKE_TIMEOUT,
                "write {i}: only {} of {woken} replies",
                sync.replies.load(Ordering::SeqCst)
            );
            thread::sleep(Duration::from_micros(200));
        }
        thread::sleep(EVENT_WRITE_GAP);
    }
    acks
}

/// `event-latency --clients W` runs in this process. Otherwise (no `--clients`, or `all`) each
/// waiter count runs in a child process of this bench, so that its RSS figures start from a fresh
/// heap rather than one earlier scenarios have grown.
pub fn event_latency(options: &Options) {
    match options.clients {
        Some(waiters) if options.scenario == "event-latency" => event_latency_with(options, waiters),
        Some(waiters) => event_latency_child(options, waiters),
        None => {
            for waiters in [100, 1000] {
                event_latency_child(options, waiters);
            }
        }
    }
}

fn event_latency_child(options: &Options, waiters: usize) {
    let exe = std::env::current_exe().expect("the bench's own path");
    let status = std::process::Command::new(exe)
        .args(["--scenario", "event-latency", "--clients", &waiters.to_string()])
        .args(["--client-threads", &options.client_threads.to_string()])
        .status()
        .expect("start the event-latency child");
    assert!(status.success(), "event-latency with {waiters} waiters: {status}");
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (raising it needs `unsafe`, which the
/// workspace forbids).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn event_latency_with(options: &Options, waiters: usize) {
    // Both ends of every connection are in this process, plus the data dir and listeners.
    let fds_needed = 2 * waiters as u64 + 64;
    if let Some(limit) = open_files_limit() {
        assert!(limit >= fds_needed, "{waiters} waiters need ~{fds_needed} open files; `ulimit -n` is {limit}");
    }
    let (dir, node, vms) = open_node("net-events", VMS);
    // Each TCP listener serves at most CONNECTIONS_MAX connections and the server has one HTTPS
    // listener: beyond that, half the waiters use the plain HTTP listener.
    let https_waiters = if waiters > CONNECTIONS_MAX { waiters.div_ceil(2) } else { waiters };
    let http_waiters = waiters - https_waiters;
    assert!(
        https_waiters <= CONNECTIONS_MAX && http_waiters <= CONNECTIONS_MAX,
        "at most {} waiters",
        2 * CONNECTIONS_MAX
    );
    let runtimes = Runtimes::new(options);
    let handler = Arc::new(NodeHandler { node: node.clone() });
    let sync = Arc::new(EventSync::default());
    let server = runtimes.server.block_on(Running::start(handler, &dir.path().join("tls"), http_waiters > 0));
    let sessions = runtimes.server.block_on(async {
        // Sessions minted in-process over the trusted unix origin: no password, so no argon2.
        let origin = Origin { unix: true, peer: "bench".into() };
        let logins: Vec<_> = (0..waiters)
            .map(|i| {
                let (node, origin) = (node.clone(), origin.clone());
                let originator = format!("bench-events-{}", i / SESSIONS_PER_ORIGINATOR);
                tokio::spawn(async move {
                    let params = vec![Value::str("root"), Value::str(""), Value::str("1.0"), Value::str(originator)];
                    match node.call("session.login_with_password", params, &origin).await {
                        NodeReply::Rpc(Ok(session)) => session.as_str().expect("a session ref").to_owned(),
                        other => panic!("login: {other:?}"),
                    }
                })
            })
            .collect();
        let mut sessions = Vec::with_capacity(waiters);
        for login in logins {
            sessions.push(login.await.expect("login task"));
        }
        sessions
    });
    let (logs, acks, rss_before_kb, rss_parked_kb, load, cpu_s, seconds) = runtimes.clients().block_on(async {
        let token = events::format_token(node.ledger.snapshot().seq);
        let rss_before_kb = https::rss_kb();

        let (connector, gate) = (https::connector(), Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT)));
        let (https_addr, http_addr) = (server.https, server.http);
        let tasks: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(i, session)| {
                let (connector, gate, sync, token) = (connector.clone(), gate.clone(), sync.clone(), token.clone());
                tokio::spawn(async move {
                    let permit = gate.acquire_owned().await.expect("gate open");
                    let https = i < https_waiters;
                    let conn = match (https, http_addr) {
                        (true, _) => Conn::https(https_addr, &connector).await,
                        (false, Some(addr)) => Conn::http(addr).await,
                        (false, None) => unreachable!("an HTTP listener when waiters are split"),
                    };
                    drop(permit);
                    waiter(conn.expect("connect"), https, session, token, sync).await
                })
            })
            .collect();
        while sync.parked.load(Ordering::SeqCst) < waiters {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(EVENT_PARK_SETTLE).await;
        let rss_parked_kb = https::rss_kb();

        let (load, cpu_before, start) = (load_avg(), process_cpu_s(), Instant::now());
        let (node, vm, writer_sync) = (node.clone(), vms[0].clone(), sync.clone());
        let writer = tokio::task::spawn_blocking(move || event_writer(node, vm, waiters, writer_sync));
        let acks = writer.await.expect("writer");
        let mut logs = Vec::with_capacity(waiters);
        for task in tasks {
            logs.push(task.await.expect("waiter task"));
        }
        let (cpu_s, seconds) = (process_cpu_s() - cpu_before, start.elapsed().as_secs_f64());
        (logs, acks, rss_before_kb, rss_parked_kb, load, cpu_s, seconds)
    });
    runtimes.server.block_on(server.stop());

    // Delay from each measured write's acknowledgement to each waiter's reply carrying it.
    let measured: HashMap<u64, &Ack> = acks[EVENT_WARMUP_WRITES..].iter().map(|ack| (ack.seq, ack)).collect();
    let (mut all, mut over_https, mut over_http) = (Latencies::default(), Latencies::default(), Latencies::default());
    let mut slowest_per_write: HashMap<u64, u64> = HashMap::new();
    let (mut before_ack, mut unmatched) = (0u64, 0u64);
    for log in &logs {
        for (seq, arrived) in &log.replies {
            let Some(ack) = measured.get(seq) else {
                unmatched += u64::from(!acks[..EVENT_WARMUP_WRITES].iter().any(|a| a.seq == *seq));
                continue;
            };
            let delay = match arrived.checked_duration_since(ack.at) {
                Some(delay) => delay.as_nanos() as u64,
                None => {
                    before_ack += 1;
                    0
                }
            };
            all.0.push(delay);
            if log.https {
                over_https.0.push(delay)
            } else {
                over_http.0.push(delay)
            }
            let slowest = slowest_per_write.entry(*seq).or_default();
            *slowest = (*slowest).max(delay);
        }
    }
    let wakeups = all.0.len() as u64;
    let replies: usize = logs.iter().map(|log| log.replies.len()).sum();
    let reply_bytes = logs.iter().map(|log| log.reply_bytes).sum::<usize>() as f64 / replies.max(1) as f64;
    assert_eq!(wakeups, (EVENT_WRITES * waiters) as u64, "every waiter woke once per write");
    let max_us = round2(all.0.iter().copied().max().unwrap_or(0) as f64 / 1000.0);
    let mut all_woken = Latencies(slowest_per_write.into_values().collect());
    let mut write_took = Latencies(acks[EVENT_WARMUP_WRITES..].iter().map(|a| a.took.as_nanos() as u64).collect());
    let parked_kb = rss_parked_kb.saturating_sub(rss_before_kb);
    let transport = if http_waiters > 0 { "https+http" } else { "https" };
    let percentiles = |l: &mut Latencies| {
        if l.0.is_empty() {
            json!(null)
        } else {
            json!([l.percentile_us(0.5), l.percentile_us(0.99)])
        }
    };
    let extra = vec![
        ("max_us", json!(max_us)),
        ("writes", json!(EVENT_WRITES)),
        ("write_gap_ms", json!(EVENT_WRITE_GAP.as_millis() as u64)),
        ("transport", json!(transport)),
        ("https_waiters", json!(https_waiters)),
        ("http_waiters", json!(http_waiters)),
        ("https_p50_p99_us", percentiles(&mut over_https)),
        ("http_p50_p99_us", percentiles(&mut over_http)),
        ("all_woken_p50_p99_us", percentiles(&mut all_woken)),
        ("write_call_p50_p99_us", percentiles(&mut write_took)),
        ("reply_bytes", json!(reply_bytes.round())),
        ("replies_before_ack", json!(before_ack)),
        ("unmatched_replies", json!(unmatched)),
        ("rss_before_kb", json!(rss_before_kb)),
        ("rss_parked_kb", json!(rss_parked_kb)),
        ("rss_per_waiter_kb", json!(round2(parked_kb as f64 / waiters as f64))),
        ("rss_note", json!("server and client in one process: both sides of each connection")),
        ("vms", json!(VMS)),
        ("runtimes", runtimes_layout(options)),
        ("cpu_s", json!(round2(cpu_s))),
        ("load_avg_1m", load),
    ];
    super::report("event-latency", waiters, wakeups, seconds, Some(all), extra);
    drop(node);
}
