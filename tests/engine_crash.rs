//! Crash test: an acknowledged write survives `kill -9`.
//!
//! The test re-executes its own binary as a child (`XENLEDGER_CRASH_CHILD=<dir>`, harness arguments
//! `--exact <this test> --nocapture`, so the child runs [`child`] instead of the parent's code). The
//! child opens a `Ledger` on the shared data dir and runs [`THREADS`] threads; in round `r`, thread
//! `t` creates its own network `crash-r-t` and then adds keys `0, 1, 2, …` to its `other_config`,
//! one durable call at a time, printing a line to stdout after each call returns `Ok` (flushed per
//! line, under one lock). The parent reads those lines for a random 50–400 ms, SIGKILLs the child,
//! and checks the recovered state:
//!
//! * every acknowledged create and key is present;
//! * because a thread issues key `n + 1` only after key `n` was acknowledged, the durable keys of
//!   each (round, thread) are exactly `0..=m` with `m` the last acknowledged key or one more (the
//!   one call that was in flight or answered but not yet printed) — never a gap, never further;
//! * what one recovery saw durable, every later recovery sees unchanged;
//! * the whole log verifies from seq 1 and folds to the recovered state; the structural
//!   invariants hold.
//!
//! Rounds reuse the same dir, so recovery of already recovered dirs is tested. Even rounds check
//! through `Ledger::open` (whose clean close then writes a checkpoint, so the next child recovers
//! from checkpoint + tail); odd rounds check through the bare `Store` (no checkpoint written, so
//! the next recovery folds two children's worth of tail). Set `XENLEDGER_CRASH_SEED` to replay a
//! run's kill timings.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::*;
use xenledger::engine::apply::apply_changes;
use xenledger::engine::State;
use xenledger::entry::Actor;
use xenledger::ledger::Ledger;
use xenledger::schema::schema;
use xenledger::store::Store;
use xenledger::value::Value;

const CHILD_ENV: &str = "XENLEDGER_CRASH_CHILD";
const ROUND_ENV: &str = "XENLEDGER_CRASH_ROUND";
const SEED_ENV: &str = "XENLEDGER_CRASH_SEED";
const TEST_NAME: &str = "acknowledged_writes_survive_sigkill";
/// Starts every line the child prints. The harness may print `test … ... ` without a newline just
/// before the test body runs, so a child line is found by this marker, not at the line start.
const MARK: &str = "@xl@ ";
const THREADS: usize = 64;
const ROUNDS: u32 = 20;
const KILL_AFTER_MS_MIN: u64 = 50;
const KILL_AFTER_MS_MAX: u64 = 400;
/// How long the parent waits for a child to get ready before failing.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// A child that outlives this has lost its parent and exits on its own.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(60);

fn net_label(round: u32, thread: usize) -> String {
    format!("crash-{round}-{thread}")
}

fn key_name(n: u64) -> String {
    format!("{n:08}")
}

fn key_value(thread: usize, n: u64) -> String {
    format!("t{thread}-n{n}")
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
    parent();
}

/// The child: writes until killed. Output lines: `NET t`, `ACK t n`, and `READY` once every thread
/// has its network.
fn child(dir: &Path) -> ! {
    let round: u32 = std::env::var(ROUND_ENV).expect("round").parse().expect("round number");
    thread::spawn(|| {
        thread::sleep(CHILD_LIFETIME_MAX);
        std::process::exit(3);
    });
    let ledger = Arc::new(Ledger::open(dir).unwrap_or_else(|e| panic!("child: open {}: {e}", dir.display())));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = {
        let out = out.clone();
        move |line: String| {
            let mut out = out.lock().expect("stdout lock");
            out.write_all(MARK.as_bytes())
                .and_then(|()| out.write_all(line.as_bytes()))
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .expect("stdout");
        }
    };
    let ready = Arc::new(Barrier::new(THREADS + 1));
    for t in 0..THREADS {
        let (ledger, ready, say) = (ledger.clone(), ready.clone(), say.clone());
        thread::spawn(move || {
            let created =
                ledger.invoke(Actor::default(), "network.create", vec![network_record(&net_label(round, t), &[])]);
            let net = match created {
                Ok((Value::Ref(r), _)) => r,
                other => {
                    eprintln!("child: thread {t}: network.create: {other:?}");
                    std::process::exit(2);
                }
            };
            say(format!("NET {t}"));
            ready.wait();
            for n in 0u64.. {
                let args = vec![s(&net), s(&key_name(n)), s(&key_value(t, n))];
                match ledger.invoke(Actor::default(), "network.add_to_other_config", args) {
                    Ok(_) => say(format!("ACK {t} {n}")),
                    Err(e) => {
                        eprintln!("child: thread {t}: add_to_other_config {n}: {e}");
                        std::process::exit(2);
                    }
                }
            }
            unreachable!()
        });
    }
    ready.wait();
    say("READY".to_string());
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

/// What the child of one round acknowledged.
#[derive(Debug, Default)]
struct Acks {
    /// Threads whose network create was acknowledged.
    nets: BTreeSet<usize>,
    /// Last acknowledged key per thread.
    last_key: BTreeMap<usize, u64>,
    count: usize,
}

fn parse_acks(lines: &[Vec<u8>]) -> Acks {
    let mut acks = Acks::default();
    for line in lines {
        // A line cut short by the kill has no newline and was never fully printed: not an ack.
        let Some(text) = line.strip_suffix(b"\n") else { continue };
        let text = String::from_utf8_lossy(text);
        let Some(at) = text.find(MARK) else { continue };
        let words: Vec<&str> = text[at + MARK.len()..].split(' ').collect();
        match words.as_slice() {
            ["NET", t] => {
                acks.nets.insert(t.parse().expect("thread"));
            }
            ["ACK", t, n] => {
                let (t, n): (usize, u64) = (t.parse().expect("thread"), n.parse().expect("key"));
                // A thread acknowledges its keys one by one from 0.
                let expected = acks.last_key.get(&t).map_or(0, |last| last + 1);
                assert_eq!(n, expected, "thread {t} acknowledged key {n} out of order");
                acks.last_key.insert(t, n);
                acks.count += 1;
            }
            _ => {}
        }
    }
    acks
}

/// A small deterministic generator (splitmix64) for the kill timings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Runs one child round: spawn, wait for READY and a first ACK, let it write for a while, SIGKILL it. Returns all
/// complete stdout lines it printed.
fn run_child(data: &Path, err_path: &Path, round: u32, kill_after: Duration) -> Vec<Vec<u8>> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, data)
        .env(ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(err_path).expect("child stderr file"))
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let child_stderr = || std::fs::read_to_string(err_path).unwrap_or_default();
    let mut lines = Vec::new();
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let ready = line.ends_with(format!("{MARK}READY\n").as_bytes());
                lines.push(line);
                if ready {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("round {round}: the child never got ready ({status:?}); stderr:\n{}", child_stderr());
            }
        }
    }
    // The kill time counts from the first acknowledged write, so that a machine busy with other
    // tests (the child's 64 threads get little CPU then) still kills the child mid-writes.
    let ack = format!("{MARK}ACK ");
    while !lines.iter().any(|line| line.windows(ack.len()).any(|w| w == ack.as_bytes())) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("round {round}: no write acknowledged ({status:?}); stderr:\n{}", child_stderr());
            }
        }
    }
    thread::sleep(kill_after);
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    reader.join().expect("reader thread");
    lines.extend(rx.try_iter());
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "round {round}: the child ended on its own ({status:?}) instead of by SIGKILL; stderr:\n{}",
        child_stderr()
    );
    lines
}

/// For every round so far, what the recovered `state` holds: per (round, thread), whether the
/// network exists and its durable keys.
type Durable = BTreeMap<(u32, usize), (bool, Vec<u64>)>;

fn durable_in(state: &State, rounds: u32) -> Durable {
    let network = schema().class("network").expect("network class");
    let table = state.table(network.id);
    let mut out = Durable::new();
    for round in 0..rounds {
        for t in 0..THREADS {
            let label = net_label(round, t);
            let refs: Vec<String> = table
                .by_name_label
                .get(label.as_str())
                .map(|s| s.iter().map(|r| r.to_string()).collect())
                .unwrap_or_default();
            assert!(refs.len() <= 1, "{label}: {} networks; a create was applied twice", refs.len());
            let Some(r) = refs.first() else {
                out.insert((round, t), (false, Vec::new()));
                continue;
            };
            let mut keys = Vec::new();
            for (k, v) in string_pairs(field(state, "network", r, "other_config")) {
                let n: u64 = k.parse().unwrap_or_else(|_| panic!("{label}: foreign key {k}"));
                assert_eq!(v, key_value(t, n), "{label}: value of key {k}");
                keys.push(n);
            }
            out.insert((round, t), (true, keys));
        }
    }
    out
}

/// Checks the acks of `round` against what recovery found, and that earlier rounds are unchanged.
fn check_round(round: u32, acks: &Acks, durable: &Durable, earlier: &Durable) {
    for t in 0..THREADS {
        let (exists, keys) = &durable[&(round, t)];
        let ctx = format!("round {round} thread {t}");
        if acks.nets.contains(&t) {
            assert!(exists, "{ctx}: acknowledged network lost");
        }
        // Keys are added in order, so the durable ones are 0..=m with no gap (the map keeps
        // insertion order, so they also come in order).
        let expected: Vec<u64> = (0..keys.len() as u64).collect();
        assert_eq!(*keys, expected, "{ctx}: durable keys are not a prefix");
        match acks.last_key.get(&t) {
            Some(&last) => {
                let durable_last = keys.len() as u64 - 1;
                assert!(
                    !keys.is_empty() && (durable_last == last || durable_last == last + 1),
                    "{ctx}: last acknowledged key {last}, durable keys 0..{}",
                    keys.len()
                );
            }
            None => assert!(keys.len() <= 1, "{ctx}: nothing acknowledged but {} keys durable", keys.len()),
        }
    }
    for (at, seen) in earlier {
        assert_eq!(durable.get(at), Some(seen), "round {} thread {}: durable data changed after recovery", at.0, at.1);
    }
}

fn parent() {
    let started = Instant::now();
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1));
    println!("{SEED_ENV}={seed}");
    let mut rng = Rng(seed);
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let mut seen = Durable::new();
    let mut total_acks = 0;
    for round in 0..ROUNDS {
        let kill_after =
            Duration::from_millis(KILL_AFTER_MS_MIN + rng.next() % (KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN + 1));
        let err_path = root.path().join(format!("child-{round}.stderr"));
        let lines = run_child(&data, &err_path, round, kill_after);
        let acks = parse_acks(&lines);
        assert_eq!(acks.nets.len(), THREADS, "round {round}: READY comes after every create was acknowledged");
        assert!(acks.count > 0, "round {round}: no write was acknowledged in {kill_after:?}");
        total_acks += acks.count;

        let recovered = if round % 2 == 0 {
            let ledger = Ledger::open(&data).unwrap_or_else(|e| panic!("round {round}: reopen after SIGKILL: {e}"));
            let state = (*ledger.snapshot()).clone();
            assert_eq!(
                fold_log(ledger.store()),
                state,
                "round {round}: the log folds to another state than open recovered"
            );
            ledger.close();
            state
        } else {
            let store = Store::open(&data, &schema().hash).unwrap_or_else(|e| panic!("round {round}: store open: {e}"));
            let full = fold_log(&store);
            // What `Ledger::open` would do: the newest checkpoint plus the verified tail.
            if let Some(cp) = store.latest_checkpoint().expect("checkpoint verifies") {
                let mut state = xenledger::engine::snapshot::decode(&cp.state).expect("checkpoint decodes");
                store
                    .verify_chain(cp.seq + 1, cp.entry_hash, |e| apply_changes(&mut state, e.seq, &e.changes))
                    .expect("tail verifies");
                assert_eq!(state, full, "round {round}: checkpoint {} + tail differs from the full fold", cp.seq);
            }
            full
        };
        check_invariants(&recovered);
        let durable = durable_in(&recovered, round + 1);
        check_round(round, &acks, &durable, &seen);
        seen = durable;
        println!("round {round}: killed after {kill_after:?}, {} acks, log at {}", acks.count, recovered.seq);
    }
    println!("{ROUNDS} rounds, {total_acks} acknowledged writes, {:?}", started.elapsed());
}
