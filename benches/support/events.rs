//! `event.from` wake-up latency with many parked waiters (`event-latency`), and the same fan-out
//! with nothing of XenAPI behind it (`event-fanout-ceiling`): the floor our transport and this
//! machine put under the first.
//!
//! Both run W waiters, each a keep-alive connection (HTTPS; over [`CONNECTIONS_MAX`], half plain
//! HTTP) that sends `event.from(session, ["vm"], token, 30.0)` and re-sends it with the reply's
//! token as soon as the reply arrives. A writer on a plain thread makes one change at a time, each
//! once every waiter has had the previous one's reply and [`EVENT_WRITE_GAP`] has passed. The
//! latency of a reply is the time from its change's acknowledgement to its arrival.
//!
//! - `event-latency`: the real server (`Node` behind `NodeHandler`), one session per waiter, and
//!   the writer calling `VM.set_name_label` through `Ledger::invoke`.
//! - `event-fanout-ceiling`: our `Server` with a handler that reads the token out of the request
//!   with a byte scan, waits on a `tokio::sync::watch` for a later position, and answers with a
//!   fixed body of the given size that ends in the new token, encoded once per position. The
//!   writer bumps the watch. Nothing is decoded, checked, looked up or logged.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{watch, Semaphore};
use xenledger::node::{events, Origin, Reply as NodeReply};
use xenledger::rpc::NodeHandler;
use xenledger::server::{RpcHandler, RpcRequest, RpcResponse, CONNECTIONS_MAX};
use xenledger::value::Value;
use xenledger::wire::xmlrpc;

use super::https::{self, Conn, Running, XML_SUCCESS};
use super::net::{open_node, runtimes_layout, Runtimes, CONNECTS_IN_FLIGHT, VMS};
use super::{bench_actor, load_avg, process_cpu_s, round2, temp_dir, Extra, Latencies, Options};

/// Writes measured, after the warm-up ones that are not.
const EVENT_WRITES: usize = 50;
const EVENT_WARMUP_WRITES: usize = 2;
/// Pause after every waiter has its reply, before the next write, so each write finds every
/// waiter parked again.
const EVENT_WRITE_GAP: Duration = Duration::from_millis(20);
/// How long to let the server park the waiters before reading the RSS.
const EVENT_PARK_SETTLE: Duration = Duration::from_millis(500);
/// A write whose wake-ups take longer than this fails the scenario.
const EVENT_WAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// Root sessions per originator (the node keeps at most 500 per originator).
const SESSIONS_PER_ORIGINATOR: usize = 250;
/// `event.from`'s timeout, in seconds, as clients such as XenCenter send it.
const EVENT_FROM_TIMEOUT_S: f64 = 30.0;
/// `event-fanout-ceiling`'s reply sizes: about what `event-latency` sends (one VM event, its
/// snapshot, and `valid_ref_counts` of every class), and a bare minimum.
const CEILING_REPLY_BYTES: [usize; 2] = [11_000, 300];

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
    leading_number(&body[at + TOKEN.len()..]).expect("a numeric token")
}

/// The decimal number `bytes` start with.
fn leading_number(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()
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

/// Makes write `i` and returns its log position once it is acknowledged.
type Write = Box<dyn FnMut(usize) -> u64 + Send>;

/// Makes the writes one at a time from a plain thread (so the acknowledgement is seen as soon as
/// it is given, not when a busy runtime gets round to it), each once every waiter has had the
/// previous one's reply and [`EVENT_WRITE_GAP`] has passed.
fn event_writer(mut write: Write, waiters: usize, sync: Arc<EventSync>) -> Vec<Ack> {
    let total = EVENT_WARMUP_WRITES + EVENT_WRITES;
    let mut acks = Vec::with_capacity(total);
    for i in 0..total {
        if i + 1 == total {
            sync.stop.store(true, Ordering::SeqCst);
        }
        let start = Instant::now();
        let seq = write(i);
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

/// Runs `scenario` with each waiter count (`--clients W`, or 100 and 1000) in a child process of
/// this bench, so that its RSS figures start from a fresh heap rather than one earlier scenarios
/// have grown; the child (given `--clients`) runs `with` itself.
fn in_children(options: &Options, scenario: &str, with: fn(&Options, usize)) {
    match options.clients {
        Some(waiters) if options.scenario == scenario => with(options, waiters),
        Some(waiters) => in_child(options, scenario, waiters),
        None => {
            for waiters in [100, 1000] {
                in_child(options, scenario, waiters);
            }
        }
    }
}

fn in_child(options: &Options, scenario: &str, waiters: usize) {
    let exe = std::env::current_exe().expect("the bench's own path");
    let status = std::process::Command::new(exe)
        .args(["--scenario", scenario, "--clients", &waiters.to_string()])
        .args(["--client-threads", &options.client_threads.to_string()])
        .status()
        .expect("start the child");
    assert!(status.success(), "{scenario} with {waiters} waiters: {status}");
}

pub fn event_latency(options: &Options) {
    in_children(options, "event-latency", event_latency_with);
}

pub fn event_fanout_ceiling(options: &Options) {
    in_children(options, "event-fanout-ceiling", event_fanout_ceiling_with);
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (raising it needs `unsafe`, which the
/// workspace forbids).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// What a fan-out run is made of: the server's handler, each waiter's session, the position the
/// waiters start from, and the writer.
struct Fanout {
    handler: Arc<dyn RpcHandler>,
    sessions: Vec<String>,
    start_seq: u64,
    write: Write,
}

/// What a fan-out run measured.
struct FanoutRun {
    logs: Vec<WaiterLog>,
    acks: Vec<Ack>,
    https_waiters: usize,
    http_waiters: usize,
    rss_before_kb: u64,
    rss_parked_kb: u64,
    load: serde_json::Value,
    cpu_s: f64,
    seconds: f64,
}

/// Parks the waiters, runs the writer, and collects what each side saw.
fn run_fanout(runtimes: &Runtimes, waiters: usize, fanout: Fanout) -> FanoutRun {
    // Both ends of every connection are in this process, plus the data dir and listeners.
    let fds_needed = 2 * waiters as u64 + 64;
    if let Some(limit) = open_files_limit() {
        assert!(limit >= fds_needed, "{waiters} waiters need ~{fds_needed} open files; `ulimit -n` is {limit}");
    }
    // Each TCP listener serves at most CONNECTIONS_MAX connections and the server has one HTTPS
    // listener: beyond that, half the waiters use the plain HTTP listener.
    let https_waiters = if waiters > CONNECTIONS_MAX { waiters.div_ceil(2) } else { waiters };
    let http_waiters = waiters - https_waiters;
    assert!(
        https_waiters <= CONNECTIONS_MAX && http_waiters <= CONNECTIONS_MAX,
        "at most {} waiters",
        2 * CONNECTIONS_MAX
    );
    assert_eq!(fanout.sessions.len(), waiters, "a session per waiter");
    let dir = temp_dir("fanout-tls");
    let server = runtimes.server.block_on(Running::start(fanout.handler, dir.path(), http_waiters > 0));
    let sync = Arc::new(EventSync::default());
    let (sessions, write) = (fanout.sessions, fanout.write);
    let run = runtimes.clients().block_on(async {
        let token = events::format_token(fanout.start_seq);
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
        let writer_sync = sync.clone();
        let writer = tokio::task::spawn_blocking(move || event_writer(write, waiters, writer_sync));
        let acks = writer.await.expect("writer");
        let mut logs = Vec::with_capacity(waiters);
        for task in tasks {
            logs.push(task.await.expect("waiter task"));
        }
        let (cpu_s, seconds) = (process_cpu_s() - cpu_before, start.elapsed().as_secs_f64());
        FanoutRun { logs, acks, https_waiters, http_waiters, rss_before_kb, rss_parked_kb, load, cpu_s, seconds }
    });
    runtimes.server.block_on(server.stop());
    run
}

/// Reports a fan-out run: the delay from each measured write's acknowledgement to each waiter's
/// reply carrying it, and `extra` after the common keys. The RSS figures are reported only from a
/// process that ran nothing before (`fresh_heap`).
fn report_fanout(scenario: &str, options: &Options, waiters: usize, run: FanoutRun, fresh_heap: bool, extra: Extra) {
    let FanoutRun { logs, acks, https_waiters, http_waiters, .. } = &run;
    let measured: HashMap<u64, &Ack> = acks[EVENT_WARMUP_WRITES..].iter().map(|ack| (ack.seq, ack)).collect();
    let (mut all, mut over_https, mut over_http) = (Latencies::default(), Latencies::default(), Latencies::default());
    let mut slowest_per_write: HashMap<u64, u64> = HashMap::new();
    let (mut before_ack, mut unmatched) = (0u64, 0u64);
    for log in logs {
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
    let parked_kb = run.rss_parked_kb.saturating_sub(run.rss_before_kb);
    let transport = if *http_waiters > 0 { "https+http" } else { "https" };
    let percentiles = |l: &mut Latencies| {
        if l.0.is_empty() {
            json!(null)
        } else {
            json!([l.percentile_us(0.5), l.percentile_us(0.99)])
        }
    };
    let mut fields = vec![
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
    ];
    if fresh_heap {
        fields.extend([
            ("rss_before_kb", json!(run.rss_before_kb)),
            ("rss_parked_kb", json!(run.rss_parked_kb)),
            ("rss_per_waiter_kb", json!(round2(parked_kb as f64 / waiters as f64))),
            ("rss_note", json!("server and client in one process: both sides of each connection")),
        ]);
    } else {
        fields.push(("rss_note", json!("not measured: an earlier run in this process grew the heap")));
    }
    fields.extend(extra);
    fields.push(("runtimes", runtimes_layout(options)));
    fields.push(("cpu_s", json!(round2(run.cpu_s))));
    fields.push(("load_avg_1m", run.load));
    super::report(scenario, waiters, wakeups, run.seconds, Some(all), fields);
}

// ---------------------------------------------------------------------------------------------------
// event-latency

fn event_latency_with(options: &Options, waiters: usize) {
    let (_dir, node, vms) = open_node("net-events", VMS);
    let runtimes = Runtimes::new(options);
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
    let (writer_node, vm) = (node.clone(), vms[0].clone());
    let write: Write = Box::new(move |i| {
        let args = vec![Value::str(&vm), Value::str(format!("name-{i}"))];
        writer_node.ledger.invoke(bench_actor(), "VM.set_name_label", args).expect("VM.set_name_label").1
    });
    let handler = Arc::new(NodeHandler { node: node.clone() });
    let fanout = Fanout { handler, sessions, start_seq: node.ledger.snapshot().seq, write };
    let run = run_fanout(&runtimes, waiters, fanout);
    report_fanout("event-latency", options, waiters, run, true, vec![("vms", json!(VMS))]);
}

// ---------------------------------------------------------------------------------------------------
// event-fanout-ceiling

/// Answers a request carrying token position `t` once the watched position passes `t`, with a
/// fixed-size body ending in the new token: `event.from`'s traffic without `event.from`.
struct ParkedReply {
    position: watch::Receiver<u64>,
    reply_bytes: usize,
    /// The body for the latest position, encoded by the first request to need it.
    encoded: Mutex<(u64, Arc<Vec<u8>>)>,
}

impl ParkedReply {
    fn body(&self, position: u64) -> Arc<Vec<u8>> {
        let mut encoded = self.encoded.lock().expect("encoded lock");
        if encoded.0 != position || encoded.1.is_empty() {
            let token = Value::str(events::format_token(position));
            let with = |padding: usize| {
                let members = vec![
                    ("padding".to_string(), Value::str("x".repeat(padding))),
                    ("token".to_string(), token.clone()),
                ];
                xmlrpc::encode_response(&Ok(Value::Record(members)))
            };
            let bare = with(0).len();
            *encoded = (position, Arc::new(with(self.reply_bytes.saturating_sub(bare))));
        }
        encoded.1.clone()
    }
}

/// The token position in an `event.from` request: the first number of the `"gen,msggen"` pair,
/// found by a byte scan for twenty digits, a comma and twenty digits.
fn request_token_seq(body: &[u8]) -> Option<u64> {
    const DIGITS: usize = 20;
    let comma = body
        .windows(2 * DIGITS + 1)
        .position(|w| w[DIGITS] == b',' && w[..DIGITS].iter().chain(&w[DIGITS + 1..]).all(u8::is_ascii_digit))?;
    leading_number(&body[comma..])
}

impl RpcHandler for ParkedReply {
    fn handle(&self, req: RpcRequest) -> Pin<Box<dyn Future<Output = RpcResponse> + Send + '_>> {
        Box::pin(async move {
            let since = request_token_seq(&req.body).expect("a token in the request");
            let mut position = self.position.clone();
            let now = *position.wait_for(|at| *at > since).await.expect("the writer outlives the server");
            RpcResponse { status: 200, content_type: "text/xml", body: self.body(now).as_ref().clone() }
        })
    }
}

fn event_fanout_ceiling_with(options: &Options, waiters: usize) {
    for (i, reply_bytes) in CEILING_REPLY_BYTES.into_iter().enumerate() {
        let runtimes = Runtimes::new(options);
        let (advance, position) = watch::channel(0u64);
        let handler = Arc::new(ParkedReply { position, reply_bytes, encoded: Mutex::new((0, Arc::new(Vec::new()))) });
        let write: Write = Box::new(move |_| {
            advance.send_modify(|at| *at += 1);
            *advance.borrow()
        });
        let sessions = (0..waiters).map(|i| format!("OpaqueRef:{i:08}-0000-0000-0000-000000000000")).collect();
        let fanout = Fanout { handler, sessions, start_seq: 0, write };
        let run = run_fanout(&runtimes, waiters, fanout);
        let extra = vec![("handler", json!("parked until the position passes the token; fixed body"))];
        report_fanout("event-fanout-ceiling", options, waiters, run, i == 0, extra);
    }
}
