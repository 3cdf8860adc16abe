//! `crash-restart`: how long a restart takes, and how much memory it holds, after the server was
//! killed (issue "Performance", P4: ≤ 1 s and ≤ 2× the RSS of a clean restart, whatever happened
//! since the last clean stop).
//!
//! Every step runs in a child process of the bench (the same binary, started with [`CHILD_ENV`]
//! naming the step and the data dir), so that each open is a fresh process whose RSS is its own:
//!
//! 1. [`ROUNDS`] times, a `fill` child opens the dir (timing the open: the restart after the
//!    previous round's crash), then writes for `--seconds` from [`FILL_THREADS`] threads the way
//!    the hostile-client run did (each thread grows one network's `other_config` to
//!    [`MAP_KEYS`] keys with `add_to_other_config`, then removes the oldest key for each new one,
//!    and renames its VM), and then aborts, with no clean stop, in the middle of writing.
//! 2. An `open` child opens the dir after the last crash and stops cleanly (a checkpoint at its
//!    last entry); another `open` child opens it again: the clean restart.
//!
//! The line reports each round's restart time, tail folded and RSS, their maxima, and the clean
//! restart's, with `rss_ratio` = max RSS after a crash ÷ RSS after a clean restart.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use xenledger::ledger::Ledger;
use xenledger::value::Value;

use super::https::rss_kb;
use super::{bench_actor, class_record, load_avg, round2, temp_dir, vm_record, Options};

/// Set in a child: `fill:<seconds>:<dir>` or `open:<dir>`.
pub const CHILD_ENV: &str = "XENLEDGER_BENCH_CRASH_CHILD";
const ROUNDS: usize = 5;
const FILL_THREADS: usize = 16;
/// Keys each thread's network map holds once full.
const MAP_KEYS: u64 = 1000;

/// A child's whole life: one step, one JSON line on stdout.
pub fn child_main() {
    let spec = std::env::var(CHILD_ENV).expect("the child's step");
    let (step, rest) = spec.split_once(':').expect("step:args");
    let (seconds, dir) = match step {
        "fill" => {
            let (seconds, dir) = rest.split_once(':').expect("fill:<seconds>:<dir>");
            (seconds.parse::<f64>().expect("seconds"), dir)
        }
        _ => (0.0, rest),
    };
    let start = Instant::now();
    let ledger = Ledger::open(std::path::Path::new(dir)).expect("Ledger::open");
    let open_ms = start.elapsed().as_secs_f64() * 1000.0;
    let report = ledger.open_report().clone();
    // What the process holds once open, before it does anything else.
    let rss = rss_kb();
    let mut line = json!({
        "open_ms": round2(open_ms),
        "rss_kb": rss,
        "checkpoint_seq": report.checkpoint_seq,
        "tail_entries": report.tail_entries,
        "last_seq": report.last_seq,
    });
    if step == "open" {
        ledger.close();
        println!("{line}");
        return;
    }
    let ledger = Arc::new(ledger);
    let (nets, vms) = fill_objects(&ledger);
    let written = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..FILL_THREADS)
        .map(|t| {
            let (ledger, written) = (ledger.clone(), written.clone());
            let (net, vm) = (nets[t].clone(), vms[t].clone());
            thread::spawn(move || fill_thread(&ledger, &net, &vm, &written))
        })
        .collect();
    thread::sleep(Duration::from_secs_f64(seconds));
    line["entries_written"] = json!(written.load(Ordering::Relaxed));
    line["seq_at_abort"] = json!(ledger.snapshot().seq);
    println!("{line}");
    use std::io::Write as _;
    std::io::stdout().flush().expect("stdout");
    // The crash: writers still writing, no clean stop, no final checkpoint.
    drop(handles);
    std::process::abort();
}

/// The fill's networks and VMs, one each per thread: made by the first round, found by the next.
fn fill_objects(ledger: &Ledger) -> (Vec<String>, Vec<String>) {
    let all = |method: &str| -> Vec<String> {
        let (refs, _) = ledger.invoke(bench_actor(), method, vec![]).expect("get_all");
        refs.as_set().expect("a set").iter().map(|r| r.as_str().expect("a ref").to_string()).collect()
    };
    let mut nets: Vec<String> = all("network.get_all");
    let mut vms: Vec<String> = all("VM.get_all");
    nets.sort();
    vms.sort();
    if nets.len() < FILL_THREADS || vms.len() < FILL_THREADS {
        for t in 0..FILL_THREADS {
            let create = |method: &str, record: Value| -> String {
                let (r, _) = ledger.invoke(bench_actor(), method, vec![record]).expect("create");
                r.as_str().expect("a ref").to_string()
            };
            nets.push(create(
                "network.create",
                class_record("network", &[("name_label", Value::str(format!("crash-net-{t}")))]),
            ));
            vms.push(create("VM.create", vm_record(&format!("crash-vm-{t}"))));
        }
    }
    (nets, vms)
}

/// Grows one map to [`MAP_KEYS`] keys and then keeps it there (remove the oldest, add a new one),
/// renaming the VM between; the key counter carries on from what the map already holds.
fn fill_thread(ledger: &Ledger, net: &str, vm: &str, written: &AtomicU64) {
    let call = |method: &str, args: Vec<Value>| {
        ledger.invoke(bench_actor(), method, args).unwrap_or_else(|e| panic!("{method}: {e}"));
        written.fetch_add(1, Ordering::Relaxed);
    };
    let (map, _) = ledger.invoke(bench_actor(), "network.get_other_config", vec![Value::str(net)]).expect("map");
    let held: Vec<u64> =
        map.as_map().expect("a map").iter().filter_map(|(k, _)| k.as_str()?.strip_prefix("k")?.parse().ok()).collect();
    let mut next = held.iter().max().map_or(0, |m| m + 1);
    let padding = "v".repeat(64);
    // Until the process aborts.
    loop {
        if next >= MAP_KEYS {
            let old = Value::str(format!("k{}", next - MAP_KEYS));
            call("network.remove_from_other_config", vec![Value::str(net), old]);
        }
        let key = Value::str(format!("k{next}"));
        call("network.add_to_other_config", vec![Value::str(net), key, Value::str(&padding)]);
        call("VM.set_name_label", vec![Value::str(vm), Value::str(format!("crash-vm-{next}"))]);
        next += 1;
    }
}

fn run_child(spec: String) -> serde_json::Value {
    let output = std::process::Command::new(std::env::current_exe().expect("the bench's own path"))
        .env(CHILD_ENV, &spec)
        .stderr(Stdio::inherit())
        .output()
        .expect("start the child");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_else(|| panic!("{spec}: no line ({})", output.status));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{spec}: {e}: {line}"))
}

pub fn crash_restart(options: &Options) {
    let dir = temp_dir("crash");
    let path = dir.path().display().to_string();
    let load = load_avg();
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        rounds.push(run_child(format!("fill:{}:{path}", options.seconds)));
    }
    // The restart after the last round's crash, which stops cleanly; then the clean restart.
    let after_last = run_child(format!("open:{path}"));
    let clean = run_child(format!("open:{path}"));
    // Round 1 opened a fresh dir; every later open, and `after_last`, followed a crash.
    let crashed: Vec<&serde_json::Value> = rounds.iter().skip(1).chain([&after_last]).collect();
    let field = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let max_of = |k: &str| crashed.iter().map(|v| field(v, k)).fold(0.0, f64::max);
    let clean_rss = field(&clean, "rss_kb");
    let log_bytes = std::fs::metadata(xenledger::store::database_path(dir.path())).map_or(0, |m| m.len());
    let entries = field(&after_last, "last_seq");
    let extra = vec![
        ("rounds", json!(ROUNDS)),
        ("seconds_per_round", json!(options.seconds)),
        ("restart_ms", json!(crashed.iter().map(|v| field(v, "open_ms")).collect::<Vec<_>>())),
        ("tail_entries", json!(crashed.iter().map(|v| field(v, "tail_entries")).collect::<Vec<_>>())),
        ("rss_kb", json!(crashed.iter().map(|v| field(v, "rss_kb")).collect::<Vec<_>>())),
        ("max_restart_ms", json!(max_of("open_ms"))),
        ("max_rss_kb", json!(max_of("rss_kb"))),
        ("clean_restart_ms", json!(field(&clean, "open_ms"))),
        ("clean_rss_kb", json!(clean_rss)),
        ("rss_ratio", json!(round2(max_of("rss_kb") / clean_rss.max(1.0)))),
        ("entries", json!(entries)),
        ("log_bytes", json!(log_bytes)),
        ("log_bytes_per_entry", json!(round2(log_bytes as f64 / entries.max(1.0)))),
        ("load_avg_1m", load),
    ];
    let worst_s = max_of("open_ms") / 1000.0;
    super::report("crash-restart", FILL_THREADS, ROUNDS as u64, worst_s, None, extra);
}
