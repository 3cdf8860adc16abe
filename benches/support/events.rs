//! `event.from` wake-up latency with many parked waiters (`event-latency`), and the same fan-out
//! with nothing of XenAPI behind it (`event-fanout-ceiling`): the floor our transport and this
//! machine put under the first.
//!
//! Both run W waiters, each a keep-alive connection (HTTPS; over [`CONNECTIONS_MAX`], half plain
//! HTTP) that sends `event.from(session, ["vm"], token, 30.0)` and re-sends it with the reply's
//! token as soon as the reply arrives. A writer on a plain thread makes one change at a time, each
//! once every waiter has had the previous one's reply and [`EVENT_WRITE_GAP`] has passed. The
//! latency of a reply is the time from its change's acknowledgement to its arrival, both read
//! from the wall clock.
//!
//! The waiters run in a child process of the bench (the same binary, started with
//! [`WAITERS_ENV`] set; it talks over its stdin and stdout), so that the server's RSS and CPU
//! figures are the server's own, as they would be with clients on other machines; both sides
//! still share this machine's CPUs.
//!
//! - `event-latency`: the real server (`Node` behind `NodeHandler`), one session per waiter, and
//!   the writer calling `VM.set_name_label` through `Ledger::invoke`.
//! - `event-fanout-ceiling`: our `Server` with a handler that reads the token out of the request
//!   with a byte scan, waits on a `tokio::sync::watch` for a later position, and answers with a
//!   fixed body of the given size that ends in the new token, encoded once per position. The
//!   writer bumps the watch. Nothing is decoded, checked, looked up or logged.

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::{watch, Semaphore};
use xenledger::node::{events, Origin, Reply as NodeReply};
use xenledger::rpc::NodeHandler;
use xenledger::server::{RpcHandler, RpcRequest, RpcResponse, CONNECTIONS_MAX};
use xenledger::value::Value;
use xenledger::wire::xmlrpc;

use super::https::{self, Conn, Running, XML_SUCCESS};
use super::net::{open_node_on, CONNECTS_IN_FLIGHT, VMS};
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

/// Everything the waiters' process needs, sent as one JSON line on its stdin.
#[derive(Serialize, Deserialize)]
struct WaiterSpec {
    https: SocketAddr,
    http: Option<SocketAddr>,
    /// The first this many waiters use HTTPS, the rest plain HTTP.
    https_waiters: usize,
    /// One session per waiter.
    sessions: Vec<String>,
    /// The log position the waiters' first token names.
    start_seq: u64,
    /// Replies each waiter takes (one per write) before it stops.
    writes: usize,
    /// Worker threads of the waiters' runtime.
    threads: usize,
}

/// Set in the environment of the waiters' process: the bench binary then runs [`waiters_main`].
pub const WAITERS_ENV: &str = "XENLEDGER_BENCH_EVENT_WAITERS";

/// Nanoseconds since the Unix epoch: a clock both processes read the same.
fn unix_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos() as i128
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

/// What one waiter saw: for each reply, the log position of its token and when it arrived.
struct WaiterLog {
    https: bool,
    replies: Vec<(u64, i128)>,
    reply_bytes: usize,
}

/// Parks `event.from(session, ["vm"], token, 30.0)` on `conn` and re-parks with the new token as
/// soon as each reply arrives, `writes` times; counts into `parked` and `replies`.
async fn waiter(
    mut conn: Conn,
    https: bool,
    session: String,
    mut token: String,
    writes: usize,
    (parked, replied): (Arc<AtomicUsize>, Arc<AtomicUsize>),
) -> WaiterLog {
    let (session, classes) = (Value::str(session), Value::Set(vec![Value::str("vm")]));
    let mut log = WaiterLog { https, replies: Vec::with_capacity(writes), reply_bytes: 0 };
    for i in 0..writes {
        let params = [session.clone(), classes.clone(), Value::str(&token), Value::Float(EVENT_FROM_TIMEOUT_S)];
        let body = xmlrpc::encode_call("event.from", &params);
        conn.send("/", "text/xml", &body).await.expect("send event.from");
        if i == 0 {
            parked.fetch_add(1, Ordering::SeqCst);
        }
        let reply = conn.receive().await.expect("event.from reply");
        let arrived = unix_ns();
        if reply.status != 200 || !reply.body.starts_with(XML_SUCCESS) {
            panic!("event.from failed: HTTP {} {}", reply.status, https::excerpt(reply.body));
        }
        let seq = reply_token_seq(reply.body);
        log.replies.push((seq, arrived));
        log.reply_bytes += reply.body.len();
        token = events::format_token(seq);
        replied.fetch_add(1, Ordering::SeqCst);
    }
    log
}

/// The waiters' process: reads a [`WaiterSpec`], connects and parks every waiter, and says on
/// stdout `PARKED <rss_before_kb> <rss_parked_kb>` once all are parked, `ALL <i>` once every
/// waiter has had write `i`'s reply, then `R <https> <seq> <arrival_unix_ns>` for every reply and
/// `END <cpu_s> <reply_bytes>`.
pub fn waiters_main() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("read the spec");
    let spec: WaiterSpec = serde_json::from_str(&line).expect("a waiter spec");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(spec.threads)
        .thread_name("bench-waiter")
        .enable_all()
        .build()
        .expect("waiters' runtime");
    let say = |text: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}").and_then(|()| out.flush()).expect("stdout");
    };
    let waiters = spec.sessions.len();
    let (logs, cpu_s) = runtime.block_on(async {
        let rss_before_kb = https::rss_kb();
        let counts = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (connector, gate) = (https::connector(), Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT)));
        let token = events::format_token(spec.start_seq);
        let tasks: Vec<_> = spec
            .sessions
            .into_iter()
            .enumerate()
            .map(|(i, session)| {
                let (connector, gate, counts, token) = (connector.clone(), gate.clone(), counts.clone(), token.clone());
                let (https_addr, http_addr, https) = (spec.https, spec.http, i < spec.https_waiters);
                tokio::spawn(async move {
                    let permit = gate.acquire_owned().await.expect("gate open");
                    let conn = match (https, http_addr) {
                        (true, _) => Conn::https(https_addr, &connector).await,
                        (false, Some(addr)) => Conn::http(addr).await,
                        (false, None) => unreachable!("an HTTP listener when waiters are split"),
                    };
                    drop(permit);
                    waiter(conn.expect("connect"), https, session, token, spec.writes, counts).await
                })
            })
            .collect();
        while counts.0.load(Ordering::SeqCst) < waiters {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(EVENT_PARK_SETTLE).await;
        say(format!("PARKED {rss_before_kb} {}", https::rss_kb()));
        let cpu_before = process_cpu_s();
        for i in 0..spec.writes {
            let since = Instant::now();
            while counts.1.load(Ordering::SeqCst) < waiters * (i + 1) {
                assert!(
                    since.elapsed() < EVENT_WAKE_TIMEOUT,
                    "write {i}: only {} replies",
                    counts.1.load(Ordering::SeqCst)
                );
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            say(format!("ALL {i}"));
        }
        let mut logs = Vec::with_capacity(waiters);
        for task in tasks {
            logs.push(task.await.expect("waiter task"));
        }
        (logs, process_cpu_s() - cpu_before)
    });
    let mut reply_bytes = 0;
    for log in &logs {
        for (seq, arrived) in &log.replies {
            say(format!("R {} {seq} {arrived}", u8::from(log.https)));
        }
        reply_bytes += log.reply_bytes;
    }
    say(format!("END {cpu_s} {reply_bytes}"));
}

/// A write the writer made: its log position, when its call returned, and how long it took.
struct Ack {
    seq: u64,
    at_ns: i128,
    took: Duration,
}

/// Makes write `i` and returns its log position once it is acknowledged.
type Write = Box<dyn FnMut(usize) -> u64 + Send>;

/// Runs `scenario` with each waiter count (`--clients W`, or 100 and 1000) in a child process of
/// this bench, so that its RSS figures start from a fresh heap rather than one earlier scenarios
/// have grown; the child (given `--clients`) runs `with` itself. With both counts, one more line
/// gives the server's memory per parked waiter as the slope between them: the RSS a single run
/// grows by while its waiters park also depends on how much freed heap the setup left to reuse,
/// which the slope cancels (both runs make the same setup but for one session per waiter).
fn in_children(options: &Options, scenario: &str, with: fn(&Options, usize)) {
    match options.clients {
        Some(waiters) if options.scenario == scenario => with(options, waiters),
        Some(waiters) => drop(in_child(options, scenario, waiters)),
        None => {
            const COUNTS: [usize; 2] = [100, 1000];
            let parked_kb = COUNTS.map(|waiters| in_child(options, scenario, waiters));
            if let [Some(few), Some(many)] = parked_kb {
                let slope = (many as f64 - few as f64) / (COUNTS[1] - COUNTS[0]) as f64;
                let line = json!({
                    "scenario": format!("{scenario}-memory"),
                    "clients": COUNTS,
                    "server_rss_parked_kb": [few, many],
                    "server_rss_kb_per_parked_waiter": round2(slope),
                });
                println!("{line}");
            }
        }
    }
}

/// Runs one waiter count in a child process, passing its lines through; returns the server's
/// RSS with every waiter parked, from its first line that has one.
fn in_child(options: &Options, scenario: &str, waiters: usize) -> Option<u64> {
    let exe = std::env::current_exe().expect("the bench's own path");
    let output = std::process::Command::new(exe)
        .args(["--scenario", scenario, "--clients", &waiters.to_string()])
        .args(["--client-threads", &options.client_threads.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .expect("start the child");
    let text = String::from_utf8_lossy(&output.stdout);
    print!("{text}");
    assert!(output.status.success(), "{scenario} with {waiters} waiters: {}", output.status);
    text.lines().find_map(|line| {
        let report: serde_json::Value = serde_json::from_str(line).ok()?;
        report.get("server_rss_parked_kb")?.as_u64()
    })
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

/// What a fan-out run measured. RSS and CPU figures are per process: this one (the server and
/// the writer) and the waiters' one.
struct FanoutRun {
    /// (over HTTPS, log position, arrival) of every reply.
    replies: Vec<(bool, u64, i128)>,
    reply_bytes: usize,
    acks: Vec<Ack>,
    https_waiters: usize,
    http_waiters: usize,
    server_rss_kb: (u64, u64),
    waiters_rss_kb: (u64, u64),
    load: serde_json::Value,
    server_cpu_s: f64,
    waiters_cpu_s: f64,
    seconds: f64,
}

/// The server's runtime: tokio's default, one worker per CPU, as `xenledger serve` runs.
fn server_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

/// Reads the waiters' next line, which must start with `word`; returns the rest.
fn expect_line(from: &mut impl BufRead, word: &str) -> String {
    let mut line = String::new();
    let read = from.read_line(&mut line).expect("read from the waiters");
    assert!(read > 0, "the waiters' process ended before saying {word}");
    let rest = line.trim_end().strip_prefix(word).unwrap_or_else(|| panic!("expected {word}, got {line:?}"));
    rest.trim_start().to_string()
}

/// Two numbers separated by a space.
fn pair<A: std::str::FromStr, B: std::str::FromStr>(text: &str) -> (A, B) {
    let (a, b) = text.split_once(' ').unwrap_or_else(|| panic!("two numbers in {text:?}"));
    match (a.parse(), b.parse()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => panic!("two numbers in {text:?}"),
    }
}

/// Starts the server here and the waiters in a child process (so that each side's memory and CPU
/// are its own), parks them, makes the writes one at a time from this thread, each once every
/// waiter has had the previous one's reply and [`EVENT_WRITE_GAP`] has passed, and collects
/// what both sides saw.
fn run_fanout(options: &Options, runtime: &Runtime, waiters: usize, fanout: Fanout) -> FanoutRun {
    if let Some(limit) = open_files_limit() {
        let fds_needed = waiters as u64 + 64;
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
    let server = runtime.block_on(Running::start(fanout.handler, dir.path(), http_waiters > 0));
    let total = EVENT_WARMUP_WRITES + EVENT_WRITES;
    let spec = WaiterSpec {
        https: server.https,
        http: server.http,
        https_waiters,
        sessions: fanout.sessions,
        start_seq: fanout.start_seq,
        writes: total,
        threads: if options.client_threads > 0 { options.client_threads } else { 2 },
    };
    let rss_before_kb = https::rss_kb();
    let mut child = std::process::Command::new(std::env::current_exe().expect("the bench's own path"))
        .env(WAITERS_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the waiters' process");
    let mut stdin = child.stdin.take().expect("waiters' stdin");
    writeln!(stdin, "{}", serde_json::to_string(&spec).expect("spec as JSON")).expect("send the spec");
    drop(stdin);
    let mut from = std::io::BufReader::new(child.stdout.take().expect("waiters' stdout"));
    let waiters_rss_kb = pair(&expect_line(&mut from, "PARKED"));
    std::thread::sleep(EVENT_PARK_SETTLE);
    let server_rss_kb = (rss_before_kb, https::rss_kb());

    let (load, cpu_before, start) = (load_avg(), process_cpu_s(), Instant::now());
    let mut write = fanout.write;
    let mut acks = Vec::with_capacity(total);
    for i in 0..total {
        let started = Instant::now();
        let seq = write(i);
        let (at_ns, took) = (unix_ns(), started.elapsed());
        acks.push(Ack { seq, at_ns, took });
        let all: usize = expect_line(&mut from, "ALL").parse().expect("ALL <write>");
        assert_eq!(all, i, "the waiters count the writes as this side does");
        std::thread::sleep(EVENT_WRITE_GAP);
    }
    let server_cpu_s = process_cpu_s() - cpu_before;
    let seconds = start.elapsed().as_secs_f64();
    let mut replies = Vec::with_capacity(total * waiters);
    let (waiters_cpu_s, reply_bytes) = loop {
        let mut line = String::new();
        assert!(from.read_line(&mut line).expect("read from the waiters") > 0, "the waiters' process ended early");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("R") => {
                let mut number = || words.next().expect("a field").parse::<i128>().expect("a number");
                let (https, seq, arrived) = (number() == 1, number() as u64, number());
                replies.push((https, seq, arrived));
            }
            Some("END") => break pair(line.trim_end().trim_start_matches("END ")),
            _ => panic!("unexpected line from the waiters: {line:?}"),
        }
    };
    let status = child.wait().expect("reap the waiters' process");
    assert!(status.success(), "the waiters' process: {status}");
    runtime.block_on(server.stop());
    FanoutRun {
        replies,
        reply_bytes,
        acks,
        https_waiters,
        http_waiters,
        server_rss_kb,
        waiters_rss_kb,
        load,
        server_cpu_s,
        waiters_cpu_s,
        seconds,
    }
}

/// Reports a fan-out run: the delay from each measured write's acknowledgement to each waiter's
/// reply carrying it, and `extra` after the common keys. The server's RSS figures are reported
/// only from a process that ran nothing before (`fresh_heap`).
fn report_fanout(scenario: &str, waiters: usize, run: FanoutRun, fresh_heap: bool, extra: Extra) {
    let acks = &run.acks;
    let measured: HashMap<u64, &Ack> = acks[EVENT_WARMUP_WRITES..].iter().map(|ack| (ack.seq, ack)).collect();
    let (mut all, mut over_https, mut over_http) = (Latencies::default(), Latencies::default(), Latencies::default());
    let mut slowest_per_write: HashMap<u64, u64> = HashMap::new();
    let (mut before_ack, mut unmatched) = (0u64, 0u64);
    for (https, seq, arrived) in &run.replies {
        let Some(ack) = measured.get(seq) else {
            unmatched += u64::from(!acks[..EVENT_WARMUP_WRITES].iter().any(|a| a.seq == *seq));
            continue;
        };
        let delay = match u64::try_from(arrived - ack.at_ns) {
            Ok(delay) => delay,
            Err(_) => {
                before_ack += 1;
                0
            }
        };
        all.0.push(delay);
        if *https {
            over_https.0.push(delay)
        } else {
            over_http.0.push(delay)
        }
        let slowest = slowest_per_write.entry(*seq).or_default();
        *slowest = (*slowest).max(delay);
    }
    let wakeups = all.0.len() as u64;
    let reply_bytes = run.reply_bytes as f64 / run.replies.len().max(1) as f64;
    assert_eq!(wakeups, (EVENT_WRITES * waiters) as u64, "every waiter woke once per write");
    let max_us = round2(all.0.iter().copied().max().unwrap_or(0) as f64 / 1000.0);
    let mut all_woken = Latencies(slowest_per_write.into_values().collect());
    let mut write_took = Latencies(acks[EVENT_WARMUP_WRITES..].iter().map(|a| a.took.as_nanos() as u64).collect());
    let transport = if run.http_waiters > 0 { "https+http" } else { "https" };
    let percentiles = |l: &mut Latencies| {
        if l.0.is_empty() {
            json!(null)
        } else {
            json!([l.percentile_us(0.5), l.percentile_us(0.99)])
        }
    };
    let per_waiter =
        |(before, parked): (u64, u64)| json!(round2(parked.saturating_sub(before) as f64 / waiters as f64));
    let mut fields = vec![
        ("max_us", json!(max_us)),
        ("writes", json!(EVENT_WRITES)),
        ("write_gap_ms", json!(EVENT_WRITE_GAP.as_millis() as u64)),
        ("transport", json!(transport)),
        ("https_waiters", json!(run.https_waiters)),
        ("http_waiters", json!(run.http_waiters)),
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
            ("server_rss_before_kb", json!(run.server_rss_kb.0)),
            ("server_rss_parked_kb", json!(run.server_rss_kb.1)),
            ("server_rss_per_waiter_kb", per_waiter(run.server_rss_kb)),
        ]);
    } else {
        fields.push(("server_rss_note", json!("not measured: an earlier run in this process grew the heap")));
    }
    fields.extend([
        ("waiters_rss_per_waiter_kb", per_waiter(run.waiters_rss_kb)),
        ("server_cpu_ms_per_write", json!(round2(run.server_cpu_s * 1000.0 / acks.len() as f64))),
        ("waiters_cpu_ms_per_write", json!(round2(run.waiters_cpu_s * 1000.0 / acks.len() as f64))),
        ("layout", json!("server and writer in this process, the waiters in a child process")),
    ]);
    fields.extend(extra);
    fields.push(("cpu_s", json!(round2(run.server_cpu_s + run.waiters_cpu_s))));
    fields.push(("load_avg_1m", run.load));
    super::report(scenario, waiters, wakeups, run.seconds, Some(all), fields);
}

// ---------------------------------------------------------------------------------------------------
// event-latency

fn event_latency_with(options: &Options, waiters: usize) {
    // The setup runs one step at a time, so that it leaves the heap in the same shape every run
    // and the RSS the parked waiters add is comparable between runs (see `in_children`).
    let (_dir, node, vms) = open_node_on("net-events", VMS, 1);
    let runtime = server_runtime();
    let sessions = runtime.block_on(async {
        // Sessions minted in-process over the trusted unix origin: no password, so no argon2.
        let origin = Origin { unix: true, peer: "bench".into() };
        let mut sessions = Vec::with_capacity(waiters);
        for i in 0..waiters {
            let originator = format!("bench-events-{}", i / SESSIONS_PER_ORIGINATOR);
            let params = vec![Value::str("root"), Value::str(""), Value::str("1.0"), Value::str(originator)];
            match node.call("session.login_with_password", params, &origin).await {
                NodeReply::Rpc(Ok(session)) => sessions.push(session.as_str().expect("a session ref").to_owned()),
                other => panic!("login: {other:?}"),
            }
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
    let run = run_fanout(options, &runtime, waiters, fanout);
    report_fanout("event-latency", waiters, run, true, vec![("vms", json!(VMS))]);
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
            RpcResponse { status: 200, content_type: "text/xml", body: self.body(now).as_ref().clone().into() }
        })
    }
}

fn event_fanout_ceiling_with(options: &Options, waiters: usize) {
    for (i, reply_bytes) in CEILING_REPLY_BYTES.into_iter().enumerate() {
        let runtime = server_runtime();
        let (advance, position) = watch::channel(0u64);
        let handler = Arc::new(ParkedReply { position, reply_bytes, encoded: Mutex::new((0, Arc::new(Vec::new()))) });
        let write: Write = Box::new(move |_| {
            advance.send_modify(|at| *at += 1);
            *advance.borrow()
        });
        let sessions = (0..waiters).map(|i| format!("OpaqueRef:{i:08}-0000-0000-0000-000000000000")).collect();
        let fanout = Fanout { handler, sessions, start_seq: 0, write };
        let run = run_fanout(options, &runtime, waiters, fanout);
        let extra = vec![("handler", json!("parked until the position passes the token; fixed body"))];
        report_fanout("event-fanout-ceiling", waiters, run, i == 0, extra);
    }
}
