//! The network scenarios: our HTTPS transport alone (`https-ceiling`) and the real server over
//! XML-RPC and JSON-RPC (`xmlrpc-reads`, `jsonrpc-reads`, `xmlrpc-writes`). The `event.from`
//! scenarios are in `events.rs`.
//!
//! Server and clients run in one process, by default on one tokio runtime (the server's default:
//! one worker per CPU), so the clients take CPU from the server; `cpu_s` is the whole process.
//! `--client-threads N` gives the clients a runtime of their own with N workers named
//! `bench-client`, which lets `perf report --sort comm` split client from server CPU. Every client
//! is one keep-alive connection making one call at a time, and every call is timed.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use xenledger::node::{FirstStart, Node};
use xenledger::rpc::NodeHandler;
use xenledger::server::{RpcHandler, RpcRequest, RpcResponse, CONNECTIONS_MAX};
use xenledger::value::Value;
use xenledger::wire::{jsonrpc, xmlrpc};

use super::https::{self, Conn, Running, JSON_SUCCESS, XML_SUCCESS};
use super::{create_vms_on, load_avg, process_cpu_s, round2, temp_dir, CommitWindow, Extra, Latencies, Options, Run};

/// VMs in the served state.
pub const VMS: usize = 100;
/// Root's password on the bench nodes.
pub const PASSWORD: &str = "bench-password";
/// Size of `https-ceiling`'s fixed reply body.
const CEILING_REPLY_BYTES: usize = 300;
/// Connections that may be opening (TCP + TLS handshake) at once.
pub const CONNECTS_IN_FLIGHT: usize = 64;

/// Throughputs measured earlier in this invocation, for the ratios of `all`.
pub static REDB_CEILING_OPS_PER_S: OnceLock<f64> = OnceLock::new();
static HTTPS_CEILING_OPS_PER_S: OnceLock<f64> = OnceLock::new();

/// The wire protocol a scenario speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Xml,
    Json,
}

impl Wire {
    pub fn path(self) -> &'static str {
        match self {
            Wire::Xml => "/",
            Wire::Json => "/jsonrpc",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Wire::Xml => "text/xml",
            Wire::Json => "application/json",
        }
    }

    pub fn success(self) -> &'static [u8] {
        match self {
            Wire::Xml => XML_SUCCESS,
            Wire::Json => JSON_SUCCESS,
        }
    }

    pub fn encode(self, id: u64, method: &str, params: &[Value]) -> Vec<u8> {
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

    pub async fn login(self, conn: &mut Conn) -> String {
        let params = [Value::str("root"), Value::str(PASSWORD), Value::str("1.0"), Value::str("throughput")];
        self.call_for_string(conn, "session.login_with_password", &params).await
    }
}

/// The server's runtime (its default: one worker per CPU) and the clients'.
pub struct Runtimes {
    pub server: Runtime,
    /// `None`: the clients run on the server's runtime.
    clients: Option<Runtime>,
}

impl Runtimes {
    pub fn new(options: &Options) -> Runtimes {
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

    pub fn clients(&self) -> &Runtime {
        self.clients.as_ref().unwrap_or(&self.server)
    }
}

/// The `runtimes` key: `"shared"`, or how many threads the clients' own runtime has.
pub fn runtimes_layout(options: &Options) -> serde_json::Value {
    match options.client_threads {
        0 => json!("shared"),
        threads => json!(format!("clients on {threads} own threads")),
    }
}

/// A node on a fresh data dir, with `vms` VMs (made in-process, group-committed).
pub fn open_node(label: &str, vms: usize) -> (TempDir, Arc<Node>, Arc<Vec<String>>) {
    open_node_on(label, vms, 64)
}

/// [`open_node`], making the VMs on at most `threads` threads.
pub fn open_node_on(label: &str, vms: usize, threads: usize) -> (TempDir, Arc<Node>, Arc<Vec<String>>) {
    let dir = temp_dir(label);
    let first =
        FirstStart { root_password: Some(PASSWORD.into()), hostname: "bench".into(), address: "127.0.0.1".into() };
    let (node, _) = Node::open(&dir.path().join("data"), &first).expect("Node::open");
    let vms = create_vms_on(&node, |node| &node.ledger, vms, threads);
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
        Box::pin(async move { RpcResponse { status: 200, content_type: "text/xml", body: self.0.clone().into() } })
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
    let window = CommitWindow::start(&node.ledger);
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
    // The logins' commits (one entry each, before timing) are counted too.
    extra.extend(window.extra(&node.ledger, run.seconds));
    run.report("xmlrpc-writes", clients, extra);
    drop(node);
}
