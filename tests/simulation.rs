//! A seeded simulation of the whole node, in the spirit of TigerBeetle's VOPR.
//!
//! Each run draws everything from one seed: clients issue random valid and invalid calls (sync
//! and `Async.`, logins, logouts, bursts of logins, reads) against a node whose log is a
//! [`FaultyLog`] (appends that fail, tear or stall on the seed's schedule) and whose clock is
//! virtual; between rounds the clock moves and the node may crash (its log handle is severed,
//! whatever was in flight is lost) and restart on the same log. After every round:
//!
//! - the projections equal a fresh fold of the log (state and snapshot hash);
//! - every acknowledged write is present (a network created, renamed or destroyed by a call that
//!   answered success is exactly so; unacknowledged ones may or may not have landed);
//! - a follower that reads `event.from` across crashes has missed no acknowledged change;
//! - no originator holds more sessions than the limit.
//!
//! A failing run prints its seed. `cargo test --test simulation` runs a fixed set of seeds (CI);
//! one seed: `XENLEDGER_SIM_SEED=42 cargo test --test simulation -- --nocapture`; a soak:
//! `XENLEDGER_SIM_RUNS=500 cargo test --release --test simulation -- --nocapture`. The node runs
//! on real threads, so a seed fixes the calls, faults, crashes and clock, not the interleaving.

mod node_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use xenledger::clock::VirtualClock;
use xenledger::engine::{snapshot, State};
use xenledger::ledger::Ledger;
use xenledger::node::{Node, Reply, SESSIONS_PER_ORIGINATOR_MAX};
use xenledger::schema::schema;
use xenledger::store::{splitmix64, FaultyLog, Log, MemoryLog, GENESIS_HASH};
use xenledger::value::Value;
use xenledger::vault::Vault;

use node_support::{first_start, unix};

/// Seeds CI runs.
const SEEDS: [u64; 6] = [1, 2, 3, 0xC0FFEE, 0xDEAD_BEEF, 20_261_202];
const ROUNDS: usize = 8;
const CLIENTS: usize = 3;
const STEPS_PER_ROUND: usize = 12;
/// Per 1000 appends: failed fsyncs, torn writes, stalls.
const FAULTS_PER_MILLE: (u64, u64, u64) = (25, 15, 20);
/// Logins of one burst, all from one originator.
const BURST_LOGINS: usize = 200;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = splitmix64(self.0);
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, per_cent: u64) -> bool {
        self.below(100) < per_cent
    }
}

/// What the clients were told about one network.
#[derive(Clone, Debug, Default)]
struct Known {
    /// The name an acknowledged call gave it last.
    name: String,
    /// A call about it failed without saying whether it landed: its name (or existence, for a
    /// destroy) is in doubt until the next acknowledged change.
    doubt: bool,
    destroyed: bool,
}

/// The model of one run: what acknowledged calls established.
#[derive(Default)]
struct Model {
    networks: BTreeMap<String, Known>,
    /// Networks an acknowledged call created, and those it destroyed: the follower must see both.
    created: BTreeSet<String>,
    destroyed: BTreeSet<String>,
}

/// One outcome of a step, folded into the model after the round (clients run concurrently, but
/// each touches only networks it created).
enum Outcome {
    Created(String, String),
    Renamed(String, String),
    Destroyed(String),
    Doubt(String),
    /// The ledger stopped accepting writes: restart.
    Poisoned,
    Nothing,
}

struct Sim {
    seed: u64,
    rng: Rng,
    log: Arc<MemoryLog>,
    vault: Vault,
    clock: Arc<VirtualClock>,
    handle: Arc<FaultyLog>,
    node: Arc<Node>,
    restarts: u64,
    model: Model,
    /// The follower's token and what it has seen: ref → last operation.
    follower_token: String,
    seen: BTreeMap<String, String>,
}

async fn call(node: &Arc<Node>, method: &str, params: Vec<Value>) -> Result<Value, Vec<String>> {
    match node.call(method, params, &unix()).await {
        Reply::Rpc(r) => r.map_err(|e| e.to_wire()),
        Reply::Bare(v) => Ok(v),
    }
}

fn is_log_failure(error: &[String]) -> bool {
    error.first().is_some_and(|c| c == "INTERNAL_ERROR")
}

async fn login(node: &Arc<Node>, originator: &str) -> Result<Value, Vec<String>> {
    call(
        node,
        "session.login_with_password",
        vec![Value::str("root"), Value::str(""), Value::str("1.0"), Value::str(originator)],
    )
    .await
}

/// Opens a node on a new handle of the shared log; a fault during start-up (first-start objects,
/// failing orphaned tasks) is a crash during start-up: try again on a new handle.
fn open(
    seed: u64,
    restarts: &mut u64,
    log: &Arc<MemoryLog>,
    vault: &Vault,
    clock: &Arc<VirtualClock>,
) -> (Arc<FaultyLog>, Arc<Node>) {
    for _ in 0..50 {
        *restarts += 1;
        let (fail, torn, delay) = FAULTS_PER_MILLE;
        let handle = Arc::new(FaultyLog::new(log.clone(), splitmix64(seed ^ *restarts), fail, torn, delay));
        let ledger = match Ledger::open_on(handle.clone(), vault.clone(), clock.clone()) {
            Ok(ledger) => ledger,
            Err(e) => panic!("seed {seed}: the log does not reopen after restart {restarts}: {e}"),
        };
        match tokio::task::block_in_place(|| Node::start(ledger, &first_start())) {
            Ok((node, _)) => return (handle, node),
            Err(_) => handle.sever(),
        }
    }
    panic!("seed {seed}: 50 restarts in a row failed");
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let log = Arc::new(MemoryLog::new());
        let vault = Vault::generate();
        let clock = Arc::new(VirtualClock::at_2026());
        let mut restarts = 0;
        let (handle, node) = open(seed, &mut restarts, &log, &vault, &clock);
        Sim {
            seed,
            rng: Rng(seed),
            log,
            vault,
            clock,
            handle,
            node,
            restarts,
            model: Model::default(),
            follower_token: String::new(),
            seen: BTreeMap::new(),
        }
    }

    fn restart(&mut self) {
        self.handle.sever();
        let (handle, node) = open(self.seed, &mut self.restarts, &self.log, &self.vault, &self.clock);
        self.handle = handle;
        self.node = node;
    }

    async fn run(&mut self) {
        for round in 0..ROUNDS {
            let mut clients = tokio::task::JoinSet::new();
            for c in 0..CLIENTS {
                let node = self.node.clone();
                let seed = self.rng.next();
                // A network in doubt is left alone: it may or may not exist.
                let mine: Vec<String> = self
                    .model
                    .networks
                    .iter()
                    .filter(|(r, k)| !k.destroyed && !k.doubt && owner(r, &self.model) == Some(c))
                    .map(|(r, _)| r.clone())
                    .collect();
                clients.spawn(client(node, c, round, seed, mine));
            }
            let mut outcomes = Vec::new();
            while let Some(done) = clients.join_next().await {
                outcomes.extend(done.unwrap_or_else(|e| panic!("seed {}: a client panicked: {e}", self.seed)));
            }
            let poisoned = self.fold_outcomes(outcomes);
            if self.rng.chance(50) {
                self.burst().await;
            }
            self.clock.advance(Duration::from_secs(1 + self.rng.below(120)));
            if poisoned || self.rng.chance(25) {
                self.restart();
            }
            self.check(round).await;
        }
    }

    fn fold_outcomes(&mut self, outcomes: Vec<Outcome>) -> bool {
        let mut poisoned = false;
        for outcome in outcomes {
            match outcome {
                Outcome::Created(r, name) => {
                    self.model.created.insert(r.clone());
                    self.model.networks.insert(r, Known { name, doubt: false, destroyed: false });
                }
                Outcome::Renamed(r, name) => {
                    let known = self.model.networks.entry(r).or_default();
                    known.name = name;
                    known.doubt = false;
                }
                Outcome::Destroyed(r) => {
                    self.model.destroyed.insert(r.clone());
                    self.model.networks.entry(r).or_default().destroyed = true;
                }
                Outcome::Doubt(r) => {
                    self.model.networks.entry(r).or_default().doubt = true;
                    poisoned = true;
                }
                Outcome::Poisoned => poisoned = true,
                Outcome::Nothing => {}
            }
        }
        poisoned
    }

    /// Many logins from one originator at once; the limit must hold however they interleave.
    async fn burst(&mut self) {
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..BURST_LOGINS {
            let node = self.node.clone();
            logins.spawn(async move { login(&node, "burst").await });
        }
        while let Some(done) = logins.join_next().await {
            if let Err(e) = done.unwrap() {
                assert!(is_log_failure(&e), "seed {}: a login failed with {e:?}", self.seed);
            }
        }
    }

    /// Waits for the node's `Async.` calls to finish, so that the log stands still while it is
    /// checked.
    async fn quiesce(&self) {
        for _ in 0..2_000 {
            if self.node.running_tasks.lock().unwrap().is_empty() {
                return;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("seed {}: Async calls still running", self.seed);
    }

    async fn check(&mut self, round: usize) {
        self.quiesce().await;
        // A torn write leaves records the node never published (nor acknowledged), and the node
        // refuses writes from then on: such a node must restart before its state can match.
        let log_end = self.log.last().unwrap().map_or(0, |(seq, _)| seq);
        if log_end != self.node.ledger.snapshot().seq {
            self.restart();
        }
        let seed = self.seed;
        let ctx = format!("seed {seed}, round {round}, restart {}", self.restarts);
        // Projections equal a fresh fold of the log.
        let live = self.node.ledger.snapshot();
        let mut folded = State::new();
        let report = (self.log.clone() as Arc<dyn Log>)
            .verify_chain(1, GENESIS_HASH, |e| xenledger::engine::apply::apply_changes(&mut folded, e.seq, &e.changes))
            .unwrap_or_else(|e| panic!("{ctx}: the log does not verify: {e}"));
        assert_eq!(report.last_seq, live.seq, "{ctx}: the published state is not at the end of the log");
        assert_eq!(folded, *live, "{ctx}: projections differ from the fold of the log");
        assert_eq!(snapshot::hash(&folded), snapshot::hash(&live), "{ctx}");
        // Every acknowledged write is there.
        let class = schema().class("network").unwrap();
        let name_field = class.field("name_label").unwrap();
        for (r, known) in &self.model.networks {
            let object = live.get(class.id, r);
            match (known.destroyed, known.doubt, object) {
                (true, false, Some(_)) => panic!("{ctx}: network {r} was destroyed (acknowledged) but exists"),
                (false, false, None) => panic!("{ctx}: network {r} was acknowledged but is gone"),
                (false, false, Some(o)) => {
                    assert_eq!(o.fields[name_field].as_str(), Some(known.name.as_str()), "{ctx}: network {r} name")
                }
                _ => {}
            }
        }
        // The follower, reading across crashes with the same token, misses nothing.
        self.follow(&ctx).await;
        // (A network in doubt may be gone, destroyed by a call that failed after it landed.)
        let certain = |r: &&String| !self.model.networks.get(*r).is_some_and(|k| k.doubt);
        for r in self.model.created.difference(&self.model.destroyed).filter(certain) {
            let object = live.get(class.id, r).map(|o| (o.created, o.modified));
            assert!(
                self.seen.contains_key(r),
                "{ctx}: the follower never saw network {r} (created, modified: {object:?}; token {})",
                self.follower_token
            );
        }
        // An object created and destroyed between two reads is never seen at all (as with xapi);
        // one the follower saw must end with its `del`.
        for r in &self.model.destroyed {
            if let Some(op) = self.seen.get(r) {
                assert_eq!(op, "del", "{ctx}: the follower missed the del of {r}");
            }
        }
        // No originator holds more sessions than the limit.
        let session = schema().class("session").unwrap();
        let originator = session.field("originator").unwrap();
        let mut per_originator: BTreeMap<String, usize> = BTreeMap::new();
        for o in live.table(session.id).objects.values() {
            *per_originator.entry(o.fields[originator].as_str().unwrap_or("").to_string()).or_default() += 1;
        }
        for (who, count) in per_originator {
            assert!(count <= SESSIONS_PER_ORIGINATOR_MAX, "{ctx}: originator {who:?} holds {count} sessions");
        }
    }

    /// Reads `event.from(["network"])` from the follower's token up to the current position.
    async fn follow(&mut self, ctx: &str) {
        let session = loop {
            match login(&self.node, "follower").await {
                Ok(s) => break s,
                Err(e) if is_log_failure(&e) => self.restart(),
                Err(e) => panic!("{ctx}: follower login: {e:?}"),
            }
        };
        loop {
            let token = Value::str(&self.follower_token);
            let batch = call(
                &self.node,
                "event.from",
                vec![session.clone(), Value::Set(vec![Value::str("network")]), token, Value::Float(0.0)],
            )
            .await
            .unwrap_or_else(|e| panic!("{ctx}: event.from: {e:?}"));
            let events = batch.member("events").unwrap();
            for event in events.as_set().unwrap() {
                let r = event.member("ref").unwrap().as_str().unwrap().to_string();
                let op = event.member("operation").unwrap().as_str().unwrap().to_string();
                self.seen.insert(r, op);
            }
            let token = batch.member("token").unwrap().as_str().unwrap().to_string();
            let done = events.as_set().unwrap().is_empty() || token == self.follower_token;
            self.follower_token = token;
            if done {
                break;
            }
        }
        // The follower logs out only sometimes: sessions also survive restarts.
        if self.rng.chance(50) {
            let _ = call(&self.node, "session.logout", vec![session]).await;
        }
    }
}

/// Which client created a network, from its name (`n<client>-…`).
fn owner(r: &str, model: &Model) -> Option<usize> {
    let name = &model.networks.get(r)?.name;
    name.strip_prefix('n')?.split('-').next()?.parse().ok()
}

/// One client's steps in one round: random valid and invalid calls on its own networks.
async fn client(node: Arc<Node>, c: usize, round: usize, seed: u64, mut mine: Vec<String>) -> Vec<Outcome> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let session = match login(&node, &format!("client-{c}")).await {
        Ok(s) => s,
        Err(e) if is_log_failure(&e) => return vec![Outcome::Poisoned],
        Err(e) => panic!("client {c}: login: {e:?}"),
    };
    for step in 0..STEPS_PER_ROUND {
        let name = format!("n{c}-r{round}-s{step}");
        let pick = if mine.is_empty() { None } else { Some(mine[rng.below(mine.len() as u64) as usize].clone()) };
        let outcome = match (rng.below(9), pick) {
            (0..=2, _) => {
                let record = Value::Record(vec![
                    ("name_label".into(), Value::str(&name)),
                    ("name_description".into(), Value::str("")),
                    ("other_config".into(), Value::Map(vec![])),
                ]);
                match call(&node, "network.create", vec![session.clone(), record]).await {
                    Ok(r) => {
                        let r = r.as_str().unwrap().to_string();
                        mine.push(r.clone());
                        Outcome::Created(r, name)
                    }
                    Err(e) if is_log_failure(&e) => Outcome::Poisoned,
                    Err(e) => panic!("client {c}: network.create: {e:?}"),
                }
            }
            (3..=4, Some(r)) => {
                match call(&node, "network.set_name_label", vec![session.clone(), Value::str(&r), Value::str(&name)])
                    .await
                {
                    Ok(_) => Outcome::Renamed(r, name),
                    Err(e) if is_log_failure(&e) => Outcome::Doubt(r),
                    Err(e) => panic!("client {c}: set_name_label {r}: {e:?}"),
                }
            }
            (5, Some(r)) => match call(&node, "network.destroy", vec![session.clone(), Value::str(&r)]).await {
                Ok(_) => {
                    mine.retain(|m| *m != r);
                    Outcome::Destroyed(r)
                }
                Err(e) if is_log_failure(&e) => {
                    mine.retain(|m| *m != r);
                    Outcome::Doubt(r)
                }
                Err(e) => panic!("client {c}: network.destroy {r}: {e:?}"),
            },
            (6, _) => {
                // Invalid calls get their exact errors and change nothing.
                let bogus = "OpaqueRef:00000000-0000-4000-8000-000000000000";
                let e =
                    call(&node, "network.set_name_label", vec![session.clone(), Value::str(bogus), Value::str("x")])
                        .await
                        .unwrap_err();
                if is_log_failure(&e) {
                    // A writer that lost its log refuses every write, checked or not.
                    out.push(Outcome::Poisoned);
                    break;
                }
                assert_eq!(e, ["HANDLE_INVALID", "network", bogus], "client {c}");
                let e = call(&node, "network.get_record", vec![session.clone()]).await.unwrap_err();
                assert_eq!(e[0], "MESSAGE_PARAMETER_COUNT_MISMATCH", "client {c}");
                let e = call(&node, "network.no_such_message", vec![session.clone()]).await.unwrap_err();
                assert_eq!(e[0], "MESSAGE_METHOD_UNKNOWN", "client {c}");
                let e = call(&node, "pool.get_all", vec![Value::str(bogus)]).await.unwrap_err();
                assert_eq!(e, ["SESSION_INVALID", bogus], "client {c}");
                Outcome::Nothing
            }
            (7, _) => {
                // An Async call answers a task at once; its outcome is not awaited (a crash may
                // leave it pending, and the next start must fail it).
                let record = Value::Record(vec![
                    ("name_label".into(), Value::str(format!("async-{name}"))),
                    ("name_description".into(), Value::str("")),
                    ("other_config".into(), Value::Map(vec![])),
                ]);
                match call(&node, "Async.network.create", vec![session.clone(), record]).await {
                    Ok(_) => Outcome::Nothing,
                    Err(e) if is_log_failure(&e) => Outcome::Poisoned,
                    Err(e) => panic!("client {c}: Async.network.create: {e:?}"),
                }
            }
            (_, Some(r)) => match call(&node, "network.get_name_label", vec![session.clone(), Value::str(&r)]).await {
                Ok(_) => Outcome::Nothing,
                Err(e) => panic!("client {c}: get_name_label {r}: {e:?}"),
            },
            (_, None) => Outcome::Nothing,
        };
        let stop = matches!(outcome, Outcome::Poisoned | Outcome::Doubt(_));
        out.push(outcome);
        if stop {
            break;
        }
    }
    if rng.chance(50) {
        let _ = call(&node, "session.logout", vec![session]).await;
    }
    out
}

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("XENLEDGER_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![seed];
    }
    if let Some(runs) = std::env::var("XENLEDGER_SIM_RUNS").ok().and_then(|s| s.parse::<u64>().ok()) {
        let base = splitmix64(std::process::id() as u64);
        return (0..runs).map(|i| splitmix64(base ^ i)).collect();
    }
    SEEDS.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_runs_keep_log_projections_acknowledgements_events_and_limits() {
    for seed in seeds() {
        println!("simulation seed {seed} (re-run with XENLEDGER_SIM_SEED={seed})");
        let mut sim = Sim::new(seed);
        sim.run().await;
        println!("  seed {seed}: {} restarts, log at {}", sim.restarts, sim.node.ledger.snapshot().seq);
    }
}
