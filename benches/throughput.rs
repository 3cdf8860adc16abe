//! Throughput benches: `cargo bench --bench throughput -- --scenario S [--clients N] [--seconds T]`.
//!
//! Prints one JSON line per scenario:
//! `{"scenario":…,"clients":N,"ops":…,"seconds":…,"ops_per_s":…,"p50_us":…,"p99_us":…, …}`.
//! Scenarios (`all` runs every one, in this order):
//!
//! - `redb-ceiling`: the group-commit ceiling of the disk and redb alone. N producers send ~300-byte
//!   records to one writer thread that drains the channel into one `Durability::Immediate` transaction
//!   per batch and acks each producer after the commit. What the engine's writer can at best reach.
//! - `engine-writes`: durable `VM.set_name_label` through `Ledger::invoke`, N threads, each on its own
//!   VM. Target: at least half of `redb-ceiling` at N = 64.
//! - `engine-reads`: `VM.get_record` through `Ledger::invoke` (the snapshot read path) over 1000 VMs,
//!   N threads. Target: 1M/s. Also `engine-reads-snapshot`: bare `State::get` lookups on a loaded
//!   snapshot, the floor under the read path.
//! - `replay`: a 1M-entry log (1000 `VM.create` then `VM.set_name_label`s, appended pre-encoded through
//!   `Store::append_batch`), then folded from seq 1 with `Store::verify_chain` + `apply_changes`.
//!   Target: 500k entries/s. The extra keys split the time: reading the records, verifying the chain,
//!   and folding.
//! - `restart`: `Ledger::open` of that dir after a checkpoint at its last entry. Target: ≤ 1 s. The
//!   first open, which folds the whole log because the dir has no checkpoint yet, is `first_open_ms`.
//! - `https-ceiling`: our HTTPS transport alone: our `Server` with a handler that answers every POST
//!   with a fixed 300-byte body without reading it, and N keep-alive HTTPS connections (default 64)
//!   each sending the `xmlrpc-reads` request back-to-back.
//! - `xmlrpc-reads`: the real server (`Node` + `NodeHandler` on HTTPS) over 100 VMs; N connections
//!   (default 64) each log in once over XML-RPC (before timing) and then call `VM.get_record`.
//!   Target: at least 0.6× `https-ceiling`. `jsonrpc-reads`: the same over JSON-RPC 2.0 at
//!   `/jsonrpc`. In `all`, both lines carry `ratio_to_https_ceiling`.
//! - `xmlrpc-writes`: durable `VM.set_name_label` over XML-RPC, N connections (default 64), each on
//!   its own VM. Targets: 25k/s and at least 0.45× `redb-ceiling` (`ratio_to_redb_ceiling`, in
//!   `all`).
//! - `event-latency`: W waiters (`--clients W`; default and in `all`: a line for 100 and one for
//!   1000) each parked in `event.from(session, ["vm"], token, 30.0)` on its own connection and
//!   session, re-parking as soon as a reply arrives; a writer commits 50 `VM.set_name_label`s one at
//!   a time. `p50_us`/`p99_us` are the delays from each write's acknowledgement to each waiter's
//!   reply. Target: p99 ≤ 2 ms with 1000 waiters. Also the server's RSS per parked waiter and its
//!   CPU per write. The waiters run in a child process. Over 800 waiters (the per-listener
//!   connection limit) half use plain HTTP.
//! - `event-fanout-ceiling`: the same waiters, writer and measurement with nothing of XenAPI behind
//!   them: our `Server` with a handler that parks each request until a `watch` passes the token it
//!   carries and answers with a fixed body (11,000 and 300 bytes) ending in the new token. The
//!   floor this machine and our transport put under `event-latency`. See `support/events.rs`.
//!
//! - `vm-lifecycle`: N clients (default 16), each looping `VM.clone` of the Debian template →
//!   `set_memory_limits` → `provision` → `start` → `shutdown` → `destroy` through `Node::call` on
//!   the simulated host with instant effects; an op is one whole cycle (11 log entries: each call
//!   but the setter is a long operation, logged as its mark and its outcome around the effect). `calls_per_s` counts the calls. `--scenario vm-lifecycle` also
//!   prints an `engine-writes` line from the same run. See `support/lifecycle.rs`.
//!
//! The other network scenarios run server and clients in this process, on one tokio runtime; see
//! `support/net.rs`. Their lines add `ops_per_cpu_s` (the rate per CPU second of the whole process,
//! clients included), the request and mean reply sizes, and the TLS cipher suite.
//!
//! More options: `--entries N` and `--vms N` size the replay log (1M, 1000); `--keep-log` keeps its
//! data dir and prints where, for trying `xenledger-replay` on it; `--client-threads N` runs the
//! network scenarios' clients on a runtime of their own with N threads named `bench-client`, so
//! that `perf report --sort comm` tells client CPU from server CPU.
//!
//! Data dirs live in temp dirs under /tmp and are removed at exit. Latencies are per operation; for
//! the replay and restart scenarios, which are one long operation, `p50_us` and `p99_us` are null.
//! `--scenario vdi-copy`: bytes per second of `VDI.copy` of a 1 GiB disk holding 256 MiB of data
//! (4 MiB every 16 MiB) through the node, with `plain_copy_bytes_per_s`, a plain copy of the same
//! file in the same run, as its ceiling. `--scenario import-raw`: bytes per second of 64 MiB
//! `PUT /import_raw_vdi` uploads over HTTPS (one connection per client), after an
//! `upload-ceiling` line: the same uploads to our server with a handler that reads and drops them.
//! `--scenario crash-restart`: five rounds of `--seconds` of hostile writes (maps grown to 1,000
//! keys, renames), each ended by an abort, each reopened in a fresh process: the restart times and
//! RSS after a crash beside a clean restart's. See `support/crash.rs`.
//! `--scenario scale`: a server holding 10,000 VMs (each with a VBD, a VIF and metrics) and 100,000
//! blobs: `VM.get_all_records` over both wires, RSS through the fill and the replies, and the write
//! rate and p99 beside the empty database's, with and without a checkpoint in the window. See
//! `support/scale.rs`.
//! Where a durable write's CPU goes, and what the scale scenarios leave to do: docs/performance.md.
//! Other work shares this machine's CPUs, so every line also says how much CPU the scenario got:
//! `cpu_s` (the whole process) and `load_avg_1m`, and for replay the main thread's CPU time and
//! run-queue wait per phase; `entries_per_cpu_s` is the rate with the CPU to itself.

#[path = "support/crash.rs"]
mod crash;
#[path = "support/disks.rs"]
mod disks;
#[path = "support/events.rs"]
mod events;
#[path = "support/https.rs"]
mod https;
#[path = "support/lifecycle.rs"]
mod lifecycle;
#[path = "support/net.rs"]
mod net;
#[path = "support/scale.rs"]
mod scale;

/// The same allocator as the `xenledger` binary, so the bench measures what the server runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{Database, Durability, TableDefinition};
use serde_json::json;
use tempfile::TempDir;
use xenledger::engine::apply::apply_changes;
use xenledger::engine::{execute, prepare_args, Ctx, State};
use xenledger::entry::{Actor, Change, Entry};
use xenledger::ledger::Ledger;
use xenledger::schema::{schema, zero_value, Qual};
use xenledger::store::{encode_entry, Store, GENESIS_HASH};
use xenledger::value::Value;

const SCENARIOS: [&str; 16] = [
    "redb-ceiling",
    "engine-writes",
    "engine-reads",
    "replay",
    "restart",
    "https-ceiling",
    "xmlrpc-reads",
    "jsonrpc-reads",
    "xmlrpc-writes",
    "event-fanout-ceiling",
    "event-latency",
    "vm-lifecycle",
    "vdi-copy",
    "import-raw",
    "crash-restart",
    "scale",
];
/// Records per `append_batch` when building the replay log.
const BUILD_BATCH_ENTRIES: usize = 100_000;
/// Bare snapshot lookups are ~100 ns: time one in this many so the clock does not dominate.
const SNAPSHOT_SAMPLE_EVERY: u64 = 16;
/// Most records the ceiling's writer folds into one commit (the ledger's `BATCH_JOBS_MAX`).
const CEILING_BATCH_MAX: usize = 4096;

struct Options {
    scenario: String,
    clients: Option<usize>,
    seconds: f64,
    /// Entries in the replay log.
    entries: u64,
    /// VMs in the read and replay states.
    vms: usize,
    /// Keep the replay log's data dir (for trying `xenledger-replay` on it) instead of removing it.
    keep_log: bool,
    /// Network scenarios: worker threads of a separate client runtime; 0 runs the clients on the
    /// server's runtime.
    client_threads: usize,
}

fn main() {
    if std::env::var_os(events::WAITERS_ENV).is_some() {
        return events::waiters_main();
    }
    if std::env::var_os(scale::CHILD_ENV).is_some() {
        return scale::child_main();
    }
    if std::env::var_os(crash::CHILD_ENV).is_some() {
        return crash::child_main();
    }
    let options = parse_args();
    let run_all = options.scenario == "all";
    if !run_all && !SCENARIOS.contains(&options.scenario.as_str()) && options.scenario != "engine-reads-snapshot" {
        eprintln!("unknown scenario {:?}; expected all or one of {SCENARIOS:?}", options.scenario);
        std::process::exit(2);
    }
    let wants = |name: &str| run_all || options.scenario == name;
    if wants("redb-ceiling") {
        redb_ceiling(&options);
    }
    // `vm-lifecycle` is reported beside `engine-writes`, measured in the same run.
    if wants("engine-writes") || options.scenario == "vm-lifecycle" {
        engine_writes(&options);
    }
    if wants("engine-reads") || wants("engine-reads-snapshot") {
        engine_reads(&options);
    }
    // `restart` opens the dir `replay` built; build it once for both.
    let mut log_dir = None;
    if wants("replay") {
        replay(&options, log_dir.get_or_insert_with(|| build_log(&options)).path());
    }
    if wants("restart") {
        restart(log_dir.get_or_insert_with(|| build_log(&options)).path());
    }
    if let (true, Some(dir)) = (options.keep_log, log_dir) {
        eprintln!("kept the replay log at {}", dir.keep().display());
    }
    if wants("https-ceiling") {
        net::https_ceiling(&options);
    }
    if wants("xmlrpc-reads") {
        net::xmlrpc_reads(&options);
    }
    if wants("jsonrpc-reads") {
        net::jsonrpc_reads(&options);
    }
    if wants("xmlrpc-writes") {
        net::xmlrpc_writes(&options);
    }
    if wants("event-fanout-ceiling") {
        events::event_fanout_ceiling(&options);
    }
    if wants("event-latency") {
        events::event_latency(&options);
    }
    if wants("vm-lifecycle") {
        lifecycle::vm_lifecycle(&options);
    }
    if wants("vdi-copy") {
        disks::vdi_copy(&options);
    }
    if wants("import-raw") {
        disks::import_raw(&options);
    }
    if wants("crash-restart") {
        crash::crash_restart(&options);
    }
    if wants("scale") {
        scale::scale(&options);
    }
}

/// Hand-parsed: cargo passes `--bench` to a harness-less bench, and we want no parser dependency.
fn parse_args() -> Options {
    let mut options = Options {
        scenario: "all".into(),
        clients: None,
        seconds: 5.0,
        entries: 1_000_000,
        vms: 1000,
        keep_log: false,
        client_threads: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--scenario" => options.scenario = value("--scenario"),
            "--clients" => options.clients = Some(value("--clients").parse().expect("--clients N")),
            "--seconds" => options.seconds = value("--seconds").parse().expect("--seconds T"),
            "--entries" => options.entries = value("--entries").parse().expect("--entries N"),
            "--vms" => options.vms = value("--vms").parse().expect("--vms N"),
            "--keep-log" => options.keep_log = true,
            "--client-threads" => {
                options.client_threads = value("--client-threads").parse().expect("--client-threads N")
            }
            "--bench" => {}
            other => panic!("unknown argument {other:?}"),
        }
    }
    assert!(options.entries > options.vms as u64, "--entries must exceed --vms");
    options
}

/// Per-operation latencies in nanoseconds, merged from every client.
#[derive(Default)]
struct Latencies(Vec<u64>);

impl Latencies {
    fn percentile_us(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let index = ((self.0.len() - 1) as f64 * p).round() as usize;
        round2(self.0[index] as f64 / 1000.0)
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What [`run_clients`] measured.
struct Run {
    ops: u64,
    seconds: f64,
    /// CPU seconds the whole process used meanwhile (clients, writer, everything).
    cpu_s: f64,
    /// The machine's load when the run started.
    load: serde_json::Value,
    latencies: Latencies,
}

impl Run {
    fn report(self, scenario: &str, clients: usize, mut extra: Extra) {
        extra.push(("cpu_s", json!(round2(self.cpu_s))));
        extra.push(("load_avg_1m", self.load));
        report(scenario, clients, self.ops, self.seconds, Some(self.latencies), extra);
    }
}

/// Runs `clients` threads for `seconds`, each calling `op(client, n)` in a loop (`n` counts its
/// calls). Ops are timed one in `sample_every`.
fn run_clients(
    clients: usize,
    seconds: f64,
    sample_every: u64,
    op: impl Fn(usize, u64) + Send + Sync + 'static,
) -> Run {
    let op = Arc::new(op);
    let barrier = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let (op, barrier) = (op.clone(), barrier.clone());
            thread::spawn(move || {
                let mut latencies = Vec::with_capacity(1 << 16);
                barrier.wait();
                let deadline = Instant::now() + Duration::from_secs_f64(seconds);
                let mut done = 0u64;
                while Instant::now() < deadline {
                    if done.is_multiple_of(sample_every) {
                        let start = Instant::now();
                        op(client, done);
                        latencies.push(start.elapsed().as_nanos() as u64);
                    } else {
                        op(client, done);
                    }
                    done += 1;
                }
                (done, latencies)
            })
        })
        .collect();
    let load = load_avg();
    let cpu_before = process_cpu_s();
    barrier.wait();
    let start = Instant::now();
    let mut ops = 0;
    let mut latencies = Latencies::default();
    for handle in handles {
        let (done, samples) = handle.join().expect("client thread");
        ops += done;
        latencies.0.extend(samples);
    }
    let seconds = start.elapsed().as_secs_f64();
    Run { ops, seconds, cpu_s: process_cpu_s() - cpu_before, load, latencies }
}

/// One result line: the fixed keys in order, then `extra`.
fn report(scenario: &str, clients: usize, ops: u64, seconds: f64, latencies: Option<Latencies>, extra: Extra) {
    let (p50, p99) = match latencies {
        Some(mut l) => (json!(l.percentile_us(0.50)), json!(l.percentile_us(0.99))),
        None => (json!(null), json!(null)),
    };
    let mut fields: Extra = vec![
        ("scenario", json!(scenario)),
        ("clients", json!(clients)),
        ("ops", json!(ops)),
        ("seconds", json!((seconds * 1000.0).round() / 1000.0)),
        ("ops_per_s", json!((ops as f64 / seconds).round())),
        ("p50_us", p50),
        ("p99_us", p99),
    ];
    fields.extend(extra);
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", json!(k))).collect();
    println!("{{{}}}", body.join(","));
}

/// Extra keys of a result line, in order.
type Extra = Vec<(&'static str, serde_json::Value)>;

/// The ledger's group commits over a run: `commits`, `entries_per_commit` and `disk_busy`, the
/// share of the timed seconds the committer spent appending and syncing (the rest it waited for
/// work or answered callers).
struct CommitWindow {
    /// Commits, entries and microseconds committing when the window opened.
    at_start: [u64; 3],
}

impl CommitWindow {
    fn totals(ledger: &Ledger) -> [u64; 3] {
        let stats = ledger.commit_stats();
        let commits = stats.commits.load(std::sync::atomic::Ordering::Acquire);
        [
            commits,
            stats.entries.load(std::sync::atomic::Ordering::Relaxed),
            stats.busy_us.load(std::sync::atomic::Ordering::Relaxed),
        ]
    }

    fn start(ledger: &Ledger) -> CommitWindow {
        CommitWindow { at_start: CommitWindow::totals(ledger) }
    }

    fn extra(&self, ledger: &Ledger, seconds: f64) -> Extra {
        let [commits, entries, busy_us] = CommitWindow::totals(ledger);
        let [commits, entries, busy_us] =
            [commits - self.at_start[0], entries - self.at_start[1], busy_us - self.at_start[2]];
        vec![
            ("commits", json!(commits)),
            ("entries_per_commit", json!(round2(entries as f64 / commits.max(1) as f64))),
            ("disk_busy", json!(round2(busy_us as f64 / 1e6 / seconds))),
        ]
    }
}

/// CPU seconds (user + system) of the whole process so far, from `/proc/self/stat` (10 ms ticks).
/// Other builds share this machine's CPUs; comparing this with wall time shows when they did.
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name.split_whitespace().skip(11).take(2).filter_map(|t| t.parse::<u64>().ok()).sum();
    ticks as f64 / 100.0
}

/// The calling thread's time on a CPU and waiting in the run queue for one, in seconds, from
/// `/proc/thread-self/schedstat`.
fn thread_sched_s() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0) as f64 / 1e9);
    (fields.next().unwrap_or(0.0), fields.next().unwrap_or(0.0))
}

/// The 1-minute load average when a scenario starts.
fn load_avg() -> serde_json::Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().and_then(|l| l.parse::<f64>().ok()).map_or(json!(null), |l| json!(l))
}

fn temp_dir(label: &str) -> TempDir {
    tempfile::Builder::new().prefix(&format!("xenledger-bench-{label}-")).tempdir_in("/tmp").expect("temp dir")
}

// ---------------------------------------------------------------------------------------------------
// redb-ceiling

const CEILING_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

/// A record from a producer, and who to ack.
type Append = (usize, Vec<u8>);

fn redb_ceiling(options: &Options) {
    let clients = options.clients.unwrap_or(64);
    let dir = temp_dir("redb");
    let db = Database::create(dir.path().join("ceiling.redb")).expect("redb create");
    let (queue, rx) = mpsc::sync_channel::<Append>(16_384);
    let (acks, ack_rxs): (Vec<SyncSender<()>>, Vec<Receiver<()>>) = (0..clients).map(|_| mpsc::sync_channel(1)).unzip();
    let writer = thread::spawn(move || ceiling_writer(db, rx, acks));
    let ack_rxs: Vec<_> = ack_rxs.into_iter().map(std::sync::Mutex::new).collect();
    let ack_rxs = Arc::new(ack_rxs);
    let run = run_clients(clients, options.seconds, 1, move |client, n| {
        // ~300 bytes that differ per record, like framed log entries.
        let mut record = vec![0u8; 300];
        record[..8].copy_from_slice(&n.to_le_bytes());
        record[8..16].copy_from_slice(&(client as u64).to_le_bytes());
        queue.send((client, record)).expect("writer alive");
        ack_rxs[client].lock().expect("one thread per client").recv().expect("ack");
    });
    let (entries, commits) = writer.join().expect("writer thread");
    let _ = net::REDB_CEILING_OPS_PER_S.set(run.ops as f64 / run.seconds);
    let extra = vec![
        ("commits", json!(commits)),
        ("entries_per_commit", json!(round2(entries as f64 / commits.max(1) as f64))),
    ];
    run.report("redb-ceiling", clients, extra);
}

/// Drains the queue into one durable transaction per batch; acks after each commit. Returns the
/// records and commits made, once every producer has hung up.
fn ceiling_writer(db: Database, rx: Receiver<Append>, acks: Vec<SyncSender<()>>) -> (u64, u64) {
    let (mut seq, mut commits) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(CEILING_BATCH_MAX);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < CEILING_BATCH_MAX {
            match rx.try_recv() {
                Ok(append) => batch.push(append),
                Err(_) => break,
            }
        }
        let mut txn = db.begin_write().expect("begin_write");
        txn.set_durability(Durability::Immediate).expect("durability");
        {
            let mut log = txn.open_table(CEILING_LOG).expect("open table");
            for (_, record) in &batch {
                seq += 1;
                log.insert(seq, record.as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
        commits += 1;
        for (client, _) in batch.drain(..) {
            let _ = acks[client].send(());
        }
    }
    (seq, commits)
}

// ---------------------------------------------------------------------------------------------------
// engine-writes and engine-reads

fn bench_actor() -> Actor {
    Actor { session: String::new(), user: "bench".into(), originator: "throughput".into() }
}

/// A constructor argument of `class`: every member without a datamodel default at its zero value,
/// then `set`.
pub fn class_record(class: &str, set: &[(&str, Value)]) -> Value {
    let class = schema().class(class).expect("a class of the schema");
    let mut members: Vec<(String, Value)> = class
        .fields
        .iter()
        .filter(|f| f.qual != Qual::RoRuntime && f.default.is_none())
        .map(|f| (f.name.clone(), zero_value(&f.ty)))
        .collect();
    for (name, value) in set {
        match members.iter_mut().find(|(n, _)| n == name) {
            Some(member) => member.1 = value.clone(),
            None => members.push((name.to_string(), value.clone())),
        }
    }
    Value::Record(members)
}

/// A `VM.create` argument: every constructor field without a datamodel default (the mandatory
/// members), at its zero value, with plausible memory and vCPU numbers.
fn vm_record(name: &str) -> Value {
    let gib = Value::Int(1 << 30);
    class_record(
        "VM",
        &[
            ("memory_static_max", gib.clone()),
            ("memory_dynamic_max", gib.clone()),
            ("memory_dynamic_min", gib.clone()),
            ("memory_static_min", gib),
            ("VCPUs_max", Value::Int(1)),
            ("VCPUs_at_startup", Value::Int(1)),
            ("name_label", Value::str(name)),
        ],
    )
}

/// Creates `count` VMs from 64 threads (so they group-commit) in the ledger `ledger(owner)`;
/// returns their refs.
fn create_vms<T: Send + Sync + 'static>(owner: &Arc<T>, ledger: fn(&T) -> &Ledger, count: usize) -> Vec<String> {
    create_vms_on(owner, ledger, count, 64)
}

/// [`create_vms`] on at most `threads` threads (1: one after the other, which leaves the heap in
/// the same shape every run).
fn create_vms_on<T: Send + Sync + 'static>(
    owner: &Arc<T>,
    ledger: fn(&T) -> &Ledger,
    count: usize,
    threads: usize,
) -> Vec<String> {
    let threads = threads.min(count.max(1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let owner = owner.clone();
            thread::spawn(move || {
                (t..count)
                    .step_by(threads)
                    .map(|i| {
                        let (vm, _) = ledger(&owner)
                            .invoke(bench_actor(), "VM.create", vec![vm_record(&format!("vm-{i}"))])
                            .expect("VM.create");
                        vm.as_str().expect("a ref").to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().expect("create thread")).collect()
}

fn engine_writes(options: &Options) {
    let clients = options.clients.unwrap_or(64);
    let dir = temp_dir("writes");
    let ledger = Arc::new(Ledger::open(dir.path()).expect("Ledger::open"));
    let vms = Arc::new(create_vms(&ledger, |l| l, clients));
    let before = ledger.snapshot().seq;
    let writer = ledger.clone();
    let window = CommitWindow::start(&ledger);
    let run = run_clients(clients, options.seconds, 1, move |client, n| {
        let args = vec![Value::str(&vms[client]), Value::str(format!("vm-{client}-{n}"))];
        writer.invoke(bench_actor(), "VM.set_name_label", args).expect("VM.set_name_label");
    });
    let entries = ledger.snapshot().seq - before;
    assert_eq!(entries, run.ops, "one log entry per call");
    let mut extra = vec![("entries", json!(entries))];
    extra.extend(window.extra(&ledger, run.seconds));
    run.report("engine-writes", clients, extra);
    drop(ledger);
}

fn engine_reads(options: &Options) {
    let clients = options.clients.unwrap_or(2);
    let dir = temp_dir("reads");
    let ledger = Arc::new(Ledger::open(dir.path()).expect("Ledger::open"));
    let vms = Arc::new(create_vms(&ledger, |l| l, options.vms));
    let extra = vec![("vms", json!(vms.len()))];
    if options.scenario != "engine-reads-snapshot" {
        let (reader, refs) = (ledger.clone(), vms.clone());
        let run = run_clients(clients, options.seconds, 1, move |client, n| {
            let vm = &refs[(n as usize * 7 + client * 131) % refs.len()];
            let (record, _) = reader.invoke(bench_actor(), "VM.get_record", vec![Value::str(vm)]).expect("get_record");
            debug_assert!(matches!(record, Value::Record(_) | Value::Lazy(_)));
        });
        run.report("engine-reads", clients, extra.clone());
    }
    let state = ledger.snapshot();
    let vm_class = schema().class_id("VM").expect("VM");
    let run = run_clients(clients, options.seconds, SNAPSHOT_SAMPLE_EVERY, move |client, n| {
        let vm = &vms[(n as usize * 7 + client * 131) % vms.len()];
        std::hint::black_box(state.get(vm_class, vm).expect("VM present"));
    });
    run.report("engine-reads-snapshot", clients, extra);
}

// ---------------------------------------------------------------------------------------------------
// replay and restart

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Writes a log of `options.entries` entries straight through the store: `options.vms` `VM.create`s
/// (executed by the engine, so the changes are the real ones) then `VM.set_name_label`s round-robin,
/// pre-encoded and appended in batches of [`BUILD_BATCH_ENTRIES`].
fn build_log(options: &Options) -> TempDir {
    let started = Instant::now();
    let dir = temp_dir("log");
    let store = Store::open(dir.path(), &schema().hash).expect("Store::open");
    let (class, msg) = schema().lookup("VM.create").expect("VM.create");
    let mut state = State::new();
    let mut vms = Vec::with_capacity(options.vms);
    let mut prev = GENESIS_HASH;
    let mut batch = Vec::with_capacity(BUILD_BATCH_ENTRIES);
    let base_us = now_us();
    for seq in 1..=options.entries {
        let timestamp_us = base_us + seq as i64;
        let entry = if seq <= options.vms as u64 {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&seq.to_le_bytes());
            let ctx = Ctx { now_us: timestamp_us, actor: bench_actor(), seed };
            let args = prepare_args("VM.create", msg, vec![vm_record(&format!("vm-{seq}"))]).expect("args");
            let (vm, next, changes) = execute(&state, &ctx, class, msg, &args).expect("VM.create");
            state = next;
            vms.push(vm.as_str().expect("a ref").to_string());
            Entry { seq, timestamp_us, actor: bench_actor(), method: "VM.create".into(), params: args, changes }
        } else {
            let vm = &vms[seq as usize % vms.len()];
            let name = Value::str(format!("vm-renamed-{seq}"));
            Entry {
                seq,
                timestamp_us,
                actor: bench_actor(),
                method: "VM.set_name_label".into(),
                params: vec![Value::Ref(vm.clone()), name.clone()],
                changes: vec![Change::Set {
                    class: "VM".into(),
                    reference: vm.clone(),
                    field: "name_label".into(),
                    value: name,
                }],
            }
        };
        let (record, hash) = encode_entry(&prev, &entry).expect("encode");
        prev = hash;
        batch.push((seq, record));
        if batch.len() == BUILD_BATCH_ENTRIES {
            store.append_batch(&batch).expect("append");
            batch.clear();
        }
    }
    store.append_batch(&batch).expect("append");
    let size_bytes = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "built a {}-entry log ({} MB) in {:.1} s at {}",
        options.entries,
        size_bytes >> 20,
        started.elapsed().as_secs_f64(),
        dir.path().display()
    );
    dir
}

/// Folds the whole log from seq 1 three ways, each on a freshly opened store: reading the records,
/// verifying the chain (decode + hash + link), and verifying plus folding (what `verify` and a
/// checkpoint-less startup do). The last is the reported rate.
fn replay(options: &Options, dir: &Path) {
    let load = load_avg();
    let read = timed(|| {
        let store = Store::open(dir, &schema().hash).expect("Store::open");
        let mut bytes = 0usize;
        store
            .for_each_record(1, None, |_, record| -> Result<(), xenledger::store::StoreError> {
                bytes += record.len();
                Ok(())
            })
            .expect("read");
        std::hint::black_box(bytes);
    });
    let verify = timed(|| {
        let store = Store::open(dir, &schema().hash).expect("Store::open");
        let report = store.verify_chain(1, GENESIS_HASH, |entry| drop(std::hint::black_box(entry))).expect("verify");
        assert_eq!(report.checked, options.entries);
    });
    let mut state = State::new();
    let fold = timed(|| {
        let store = Store::open(dir, &schema().hash).expect("Store::open");
        store
            .verify_chain(1, GENESIS_HASH, |entry| apply_changes(&mut state, entry.seq, &entry.changes))
            .expect("verify");
    });
    assert_eq!(state.seq, options.entries);
    let extra = vec![
        ("entries_per_s", json!((options.entries as f64 / fold.wall_s).round())),
        ("entries_per_cpu_s", json!((options.entries as f64 / fold.cpu_s).round())),
        ("read_only_s", json!(round2(read.wall_s))),
        ("verify_only_s", json!(round2(verify.wall_s))),
        ("verify_only_cpu_s", json!(round2(verify.cpu_s))),
        ("verify_and_fold_s", json!(round2(fold.wall_s))),
        ("verify_and_fold_cpu_s", json!(round2(fold.cpu_s))),
        ("run_queue_wait_s", json!(round2(read.wait_s + verify.wait_s + fold.wait_s))),
        ("vms", json!(options.vms)),
        ("load_avg_1m", load),
    ];
    report("replay", 1, options.entries, fold.wall_s, None, extra);
}

fn restart(dir: &Path) {
    // The built dir has no checkpoint yet: this open folds the whole log.
    let mut first = None;
    let first_open = timed(|| first = Some(Ledger::open(dir).expect("Ledger::open")));
    let first = first.expect("opened");
    let first_tail = first.open_report().tail_entries;
    let seq = first.checkpoint().expect("checkpoint");
    assert_eq!(seq, first.snapshot().seq, "checkpoint at the last entry");
    first.close();
    let load = load_avg();
    let mut opened = None;
    let open = timed(|| opened = Some(Ledger::open(dir).expect("Ledger::open")));
    let ledger = opened.expect("opened");
    let opened_report = ledger.open_report().clone();
    assert_eq!(opened_report.checkpoint_seq, opened_report.last_seq, "opened from the checkpoint at the end");
    drop(ledger);
    let extra = vec![
        ("ms", json!(round2(open.wall_s * 1000.0))),
        ("cpu_ms", json!(round2(open.cpu_s * 1000.0))),
        ("entries", json!(opened_report.last_seq)),
        ("checkpoint_seq", json!(opened_report.checkpoint_seq)),
        ("tail_entries", json!(opened_report.tail_entries)),
        ("first_open_ms", json!(round2(first_open.wall_s * 1000.0))),
        ("first_open_cpu_ms", json!(round2(first_open.cpu_s * 1000.0))),
        ("first_open_tail_entries", json!(first_tail)),
        ("load_avg_1m", load),
    ];
    report("restart", 1, 1, open.wall_s, None, extra);
}

/// Wall time, and this thread's CPU time and run-queue wait, of one phase.
struct Timing {
    wall_s: f64,
    cpu_s: f64,
    wait_s: f64,
}

fn timed(f: impl FnOnce()) -> Timing {
    let (cpu_before, wait_before) = thread_sched_s();
    let start = Instant::now();
    f();
    let wall_s = start.elapsed().as_secs_f64();
    let (cpu_after, wait_after) = thread_sched_s();
    Timing { wall_s, cpu_s: cpu_after - cpu_before, wait_s: wait_after - wait_before }
}
