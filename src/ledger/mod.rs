//! `Ledger`: the engine, its projections and its log, behind one handle.
//!
//! One writer thread owns the store's write side. Callers submit jobs (data: [`Job`]);
//! the writer executes each job as it comes against a working copy of the state and adds the
//! entries to the batch waiting for the committer (`handover.rs`); the committer appends all of a
//! batch's entries in one durable redb transaction (group commit), publishes the new state as a
//! snapshot, wakes waiters, and only then answers each caller. Readers load the current snapshot
//! and never wait for the writer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

mod checkpoint;
mod handover;
mod keys;

pub use keys::{rekey, Rekeyed};

use arc_swap::ArcSwap;
use tokio::sync::{oneshot, watch};

use crate::clock::{Clock, SystemClock};
use crate::engine::apply::apply_changes;
use crate::engine::internal::InternalOp;
use crate::engine::{snapshot, Ctx, Invocation, Op, Route, State, Tx};
use crate::entry::{Actor, Entry};
use crate::error::ApiError;
use crate::schema::schema;
use crate::store::{codec, Log, Store, StoreError};
use crate::value::Value;
use crate::vault::Vault;

/// Most jobs folded into one durable commit.
pub const BATCH_JOBS_MAX: usize = 4096;
/// Jobs that may wait for the writer before `submit` blocks.
pub const QUEUE_JOBS_MAX: usize = 16_384;
/// A checkpoint is written after this many entries, or [`CHECKPOINT_INTERVAL_BYTES`] of records,
/// or [`CHECKPOINT_INTERVAL`] with any entry since, whichever comes first (and at clean shutdown),
/// so that a restart after a crash folds a bounded tail.
pub const CHECKPOINT_INTERVAL_ENTRIES: u64 = 100_000;
pub const CHECKPOINT_INTERVAL_BYTES: u64 = 64 << 20;
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// A job for the writer, as data: who, what ([`Op`]: a datamodel message or an internal
/// operation), and the parameters as logged.
#[derive(Debug)]
pub struct Job {
    pub actor: Actor,
    pub op: Op,
    /// Parameters as logged (secrets already redacted, session omitted).
    pub params: Vec<Value>,
}

impl Job {
    /// A call of a datamodel message, logged with `params`.
    pub fn call(actor: Actor, call: Invocation, params: Vec<Value>) -> Job {
        Job { actor, op: Op::Call(call), params }
    }

    /// An internal operation, logged as it says.
    pub fn internal(actor: Actor, op: InternalOp) -> Job {
        Job { actor, params: op.logged_params(), op: Op::Internal(op) }
    }
}

/// What a committed call answers: its result and the log position of its entry (0 if it changed nothing).
pub type Outcome = Result<(Value, u64), ApiError>;

enum Request {
    Job(Job, oneshot::Sender<Outcome>),
    Checkpoint(oneshot::Sender<Result<u64, String>>),
    Stop,
}

/// What opening a data dir found.
#[derive(Clone, Debug)]
pub struct OpenReport {
    pub checkpoint_seq: u64,
    pub tail_entries: u64,
    pub last_seq: u64,
}

/// What the committer's checkpoints have done, readable while it runs (benches, metrics).
#[derive(Debug, Default)]
pub struct CheckpointStats {
    /// Checkpoints stored since open.
    pub taken: AtomicU64,
    /// When the newest was stored, by the ledger's clock (0: none since open).
    pub last_at_us: AtomicI64,
    /// An image is being encoded off the writer's path.
    pub encoding: AtomicBool,
}

impl CheckpointStats {
    fn stored(&self, at_us: i64) {
        self.last_at_us.store(at_us, Ordering::Relaxed);
        self.taken.fetch_add(1, Ordering::Release);
    }
}

/// The committer's group commits since open: how many, the entries they carried and the time
/// spent in them (appending and making durable), so that a bench can tell how full the commits
/// are and how busy the disk is.
#[derive(Default, Debug)]
pub struct CommitStats {
    pub commits: AtomicU64,
    pub entries: AtomicU64,
    pub busy_us: AtomicU64,
}

impl CommitStats {
    fn committed(&self, entries: usize, busy_us: i64) {
        self.entries.fetch_add(entries as u64, Ordering::Relaxed);
        self.busy_us.fetch_add(busy_us.max(0) as u64, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Release);
    }
}

pub struct Ledger {
    state: Arc<ArcSwap<State>>,
    checkpoint_stats: Arc<CheckpointStats>,
    commit_stats: Arc<CommitStats>,
    queue: SyncSender<Request>,
    committed: watch::Receiver<u64>,
    writer: Option<JoinHandle<()>>,
    store: Arc<dyn Log>,
    dir: Option<PathBuf>,
    report: OpenReport,
    /// The data dir's key (`None` only while `open` sets it up).
    vault: Option<crate::vault::Vault>,
    clock: Arc<dyn Clock>,
}

impl Ledger {
    /// Opens (or creates) a data dir: loads the newest checkpoint, verifies and folds the tail.
    /// Entries are stamped by the machine's clock.
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        Ledger::open_with(dir, Arc::new(SystemClock))
    }

    /// [`Ledger::open`] with the clock that stamps entries and calls' `Ctx`.
    pub fn open_with(dir: &Path, clock: Arc<dyn Clock>) -> Result<Ledger, LedgerError> {
        crate::datadir::prepare(dir).map_err(|e| LedgerError::Io(dir.display().to_string(), e))?;
        let store = Store::open(dir, &schema().hash)?;
        crate::datadir::restrict_files(dir).map_err(|e| LedgerError::Io(dir.display().to_string(), e))?;
        let mut ledger = Ledger::start(Arc::new(store), Some(dir.to_path_buf()), clock)?;
        ledger.vault = Some(keys::open_vault(&ledger)?);
        Ok(ledger)
    }

    /// A ledger on any [`Log`] (in memory, faulty), with no data dir: `vault` is its key. Opening
    /// again on the same log (and vault) is a restart.
    pub fn open_on(log: Arc<dyn Log>, vault: Vault, clock: Arc<dyn Clock>) -> Result<Ledger, LedgerError> {
        let mut ledger = Ledger::start(log, None, clock)?;
        ledger.vault = Some(vault);
        Ok(ledger)
    }

    /// Recovers the state from `store` and starts the writer.
    fn start(store: Arc<dyn Log>, dir: Option<PathBuf>, clock: Arc<dyn Clock>) -> Result<Ledger, LedgerError> {
        let (state, report, last_hash) = recover(&*store)?;
        let seq = state.seq;
        let state = Arc::new(ArcSwap::from_pointee(state));
        let (queue, rx) = mpsc::sync_channel(QUEUE_JOBS_MAX);
        let (committed_tx, committed) = watch::channel(seq);
        let checkpoint_stats = Arc::new(CheckpointStats::default());
        let commit_stats = Arc::new(CommitStats::default());
        let writer = Writer {
            store: store.clone(),
            published: state.clone(),
            committed: committed_tx,
            last_hash,
            since_checkpoint: report.tail_entries,
            seed_key: random_key(),
            jobs_run: 0,
            clock: clock.clone(),
            checkpoint_stats: checkpoint_stats.clone(),
            commit_stats: commit_stats.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("xenledger-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LedgerError::Io("writer thread".into(), e))?;
        Ok(Ledger {
            state,
            checkpoint_stats,
            commit_stats,
            queue,
            committed,
            writer: Some(handle),
            store,
            dir,
            report,
            vault: None,
            clock,
        })
    }

    /// The committer's checkpoints so far.
    pub fn checkpoint_stats(&self) -> &CheckpointStats {
        &self.checkpoint_stats
    }

    /// The committer's group commits so far.
    pub fn commit_stats(&self) -> &CommitStats {
        &self.commit_stats
    }

    /// The clock that stamps entries; the node reads time from it too.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The data dir's key: secret values are sealed under it before they are logged.
    pub fn vault(&self) -> &crate::vault::Vault {
        self.vault.as_ref().expect("the vault is set up by open")
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The data dir, for a ledger on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn store(&self) -> &Arc<dyn Log> {
        &self.store
    }

    /// The current snapshot. Cheap; never waits for the writer.
    pub fn snapshot(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// A receiver of the last committed log position, for waiters (`event.from`).
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Queues a job; the receiver yields once its entry is durable (or it failed).
    pub fn submit(&self, job: Job) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::SendError(Request::Job(_, reply))) = self.queue.send(Request::Job(job, tx)) {
            let _ = reply.send(Err(ApiError::internal("the writer has stopped")));
        }
        rx
    }

    /// Submits a job and waits for it (blocking; for the CLI, tests and benches).
    pub fn call_blocking(&self, job: Job) -> Outcome {
        self.submit(job).blocking_recv().unwrap_or_else(|_| Err(ApiError::internal("the writer has stopped")))
    }

    /// Submits a job and awaits it.
    pub async fn call(&self, job: Job) -> Outcome {
        self.submit(job).await.unwrap_or_else(|_| Err(ApiError::internal("the writer has stopped")))
    }

    /// Writes a checkpoint of the current state now; returns its position.
    pub fn checkpoint(&self) -> Result<u64, String> {
        let (tx, rx) = oneshot::channel();
        self.queue.send(Request::Checkpoint(tx)).map_err(|_| "the writer has stopped".to_string())?;
        rx.blocking_recv().map_err(|_| "the writer has stopped".to_string())?
    }

    /// Stops the writer after the queued jobs, writing a final checkpoint.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(handle) = self.writer.take() {
            let _ = self.queue.send(Request::Stop);
            let _ = handle.join();
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    #[error("checkpoint at entry {seq}: {reason}")]
    Checkpoint { seq: u64, reason: String },
}

/// Loads the newest checkpoint and folds the verified tail onto it.
fn recover(store: &dyn Log) -> Result<(State, OpenReport, [u8; 32]), LedgerError> {
    let (mut state, mut prev) = match store.latest_checkpoint()? {
        // A checkpoint in an older image layout is not damage: fold the whole log instead.
        Some(cp) if cp.state.first().is_some_and(|v| (1..snapshot::IMAGE_VERSION).contains(v)) => {
            tracing::warn!("checkpoint at entry {} has an older state layout; replaying the whole log", cp.seq);
            (State::new(), [0u8; 32])
        }
        Some(cp) => {
            let state =
                snapshot::decode(&cp.state).map_err(|reason| LedgerError::Checkpoint { seq: cp.seq, reason })?;
            if state.seq != cp.seq {
                return Err(LedgerError::Checkpoint { seq: cp.seq, reason: format!("holds state at {}", state.seq) });
            }
            (state, cp.entry_hash)
        }
        None => (State::new(), [0u8; 32]),
    };
    let checkpoint_seq = state.seq;
    let mut tail = 0u64;
    let report = store.verify_chain(checkpoint_seq + 1, prev, |entry: Entry| {
        apply_changes(&mut state, entry.seq, &entry.changes);
        tail += 1;
    })?;
    if report.checked > 0 {
        prev = report.last_hash;
    }
    let last_seq = state.seq;
    Ok((state, OpenReport { checkpoint_seq, tail_entries: tail, last_seq }, prev))
}

/// The executing half of the writer: runs jobs against the working state and encodes entries.
/// It adds what it executed to the batch waiting for the committer and goes on with the next jobs
/// while the committer makes the previous batch durable, so execution overlaps the fsync and a
/// commit carries every job executed meanwhile. Callers are answered by the committer.
struct Writer {
    store: Arc<dyn Log>,
    published: Arc<ArcSwap<State>>,
    committed: watch::Sender<u64>,
    last_hash: [u8; 32],
    since_checkpoint: u64,
    /// Random per writer; each job's id seed is derived from it (one syscall per process, not per job).
    seed_key: [u8; 32],
    jobs_run: u64,
    clock: Arc<dyn Clock>,
    checkpoint_stats: Arc<CheckpointStats>,
    commit_stats: Arc<CommitStats>,
}

/// One executed batch on its way to the disk.
struct Batch {
    records: Vec<(u64, Vec<u8>)>,
    replies: Vec<(oneshot::Sender<Outcome>, Outcome)>,
    /// The state once the batch is folded in; published after the commit.
    state: Arc<State>,
    checkpoints: Vec<oneshot::Sender<Result<u64, String>>>,
    stop: bool,
}

impl Batch {
    /// Adds `later` (executed after this batch) to it; returns the state it no longer ends in.
    fn append(&mut self, later: Batch) -> Arc<State> {
        self.records.extend(later.records);
        self.replies.extend(later.replies);
        self.checkpoints.extend(later.checkpoints);
        self.stop |= later.stop;
        std::mem::replace(&mut self.state, later.state)
    }
}

/// How long an idle committer waits for a batch while a checkpoint's parts are being stored.
const STREAM_IDLE_WAIT: Duration = Duration::from_millis(2);
/// The rate a checkpoint image is stored at, a part per turn at most, so that no commit waits
/// behind more than a part and the disk's writes are spread: one part per group commit, as fast
/// as they came, left parts taking 20-30 ms now and then and the writes' p99 doubled while an
/// image was stored (bench `scale`). 32 MiB/s stores the 38 MB image of 10,000 VMs in about 1.2 s.
const CHECKPOINT_STORE_BYTES_PER_S: u64 = 32 << 20;

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    crate::entropy::fill(&mut key);
    key
}

impl Writer {
    fn run(mut self, rx: Receiver<Request>) {
        let mut state: State = (**self.published.load()).clone();
        let poisoned = Arc::new(AtomicBool::new(false));
        let handover = Arc::new(handover::Handover::default());
        let committer = Committer {
            store: self.store.clone(),
            published: self.published.clone(),
            committed: self.committed.clone(),
            since_checkpoint: self.since_checkpoint,
            bytes_since_checkpoint: 0,
            // A tail folded at open (a crash since the last clean stop) is checkpointed at once,
            // so that crash after crash never lengthens the next restart's fold.
            last_checkpoint_us: match self.since_checkpoint {
                0 => self.clock.now_us(),
                _ => self.clock.now_us() - CHECKPOINT_INTERVAL.as_micros() as i64,
            },
            clock: self.clock.clone(),
            stream: None,
            // A crash may have left parts; the store knows which.
            sweeping: true,
            pace: crate::clock::Pace::new(CHECKPOINT_STORE_BYTES_PER_S),
            stats: self.checkpoint_stats.clone(),
            commit_stats: self.commit_stats.clone(),
            poisoned: poisoned.clone(),
        };
        let committer = std::thread::Builder::new()
            .name("xenledger-commit".into())
            .spawn({
                let handover = handover.clone();
                move || committer.run(&handover)
            })
            .expect("spawn the committer thread");
        let closer = handover::CloseOnDrop(&handover);
        loop {
            let first = match rx.recv_timeout(Duration::from_secs(3600)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => Request::Stop,
            };
            let mut messages = vec![first];
            while messages.len() < BATCH_JOBS_MAX {
                match rx.try_recv() {
                    Ok(m) => messages.push(m),
                    Err(_) => break,
                }
            }
            let mut batch = Batch {
                records: Vec::new(),
                replies: Vec::new(),
                state: Arc::default(),
                checkpoints: Vec::new(),
                stop: false,
            };
            let failed = poisoned.load(Ordering::Acquire);
            for message in messages {
                match message {
                    Request::Job(_, reply) if failed => {
                        batch
                            .replies
                            .push((reply, Err(ApiError::internal("the log cannot be written; restart the server"))));
                    }
                    Request::Job(job, reply) => {
                        let outcome = self.run_job(&mut state, job, &mut batch.records);
                        batch.replies.push((reply, outcome));
                    }
                    Request::Checkpoint(reply) => batch.checkpoints.push(reply),
                    Request::Stop => batch.stop = true,
                }
            }
            batch.state = Arc::new(state.clone());
            let stop = batch.stop;
            handover.put(batch);
            if stop {
                break;
            }
        }
        drop(closer);
        let _ = committer.join();
    }

    fn run_job(&mut self, state: &mut State, job: Job, records: &mut Vec<(u64, Vec<u8>)>) -> Outcome {
        self.jobs_run += 1;
        let seed = *blake3::keyed_hash(&self.seed_key, &self.jobs_run.to_le_bytes()).as_bytes();
        let ctx = Ctx { now_us: self.clock.now_us(), actor: job.actor, seed };
        let method = job.op.method().to_string();
        let mut tx = Tx::new(state.clone(), &ctx);
        let value = crate::engine::run(&mut tx, job.op)?;
        let (new_state, changes) = tx.finish();
        if changes.is_empty() {
            return Ok((value, 0));
        }
        let entry = Entry {
            seq: new_state.seq,
            timestamp_us: ctx.now_us,
            actor: ctx.actor.clone(),
            method,
            params: job.params,
            changes,
        };
        let (record, hash) =
            codec::encode_entry(&self.last_hash, &entry).map_err(|e| ApiError::internal(format!("log entry: {e}")))?;
        self.last_hash = hash;
        records.push((entry.seq, record));
        *state = new_state;
        Ok((value, entry.seq))
    }
}

/// The durable half of the writer: appends each batch in one Immediate transaction, then
/// publishes its state, wakes waiters and answers its callers. If an append fails, nothing of that
/// batch (or of any later one, which was executed on top of it) becomes visible: every later write
/// fails until the server is restarted and recovers from the log.
struct Committer {
    store: Arc<dyn Log>,
    published: Arc<ArcSwap<State>>,
    committed: watch::Sender<u64>,
    since_checkpoint: u64,
    bytes_since_checkpoint: u64,
    last_checkpoint_us: i64,
    clock: Arc<dyn Clock>,
    /// A checkpoint image being encoded on a thread of its own and stored a part per turn.
    stream: Option<checkpoint::ImageStream>,
    /// Parts of dropped or abandoned checkpoints may remain: removed a part per turn.
    sweeping: bool,
    /// The rate parts are stored at.
    pace: crate::clock::Pace,
    stats: Arc<CheckpointStats>,
    commit_stats: Arc<CommitStats>,
    poisoned: Arc<AtomicBool>,
}

impl Committer {
    fn run(mut self, handover: &handover::Handover) {
        loop {
            // Waking now and then stores the parts of a checkpoint encoded while no batch came (soon
            // while one is being stored), and starts one that fell due with no batch since (a tail
            // recovered at open, the time bound).
            let idle =
                if self.stream.is_some() || self.sweeping { STREAM_IDLE_WAIT } else { Duration::from_millis(500) };
            let batch = match handover.take(idle) {
                handover::Taken::Batch(batch) => batch,
                handover::Taken::Idle => {
                    self.store_checkpoint_parts();
                    if !self.poisoned.load(Ordering::Acquire) && self.checkpoint_due() {
                        self.encode_checkpoint(self.published.load_full());
                    }
                    continue;
                }
                handover::Taken::Closed => break,
            };
            let mut replies = batch.replies;
            // The state this batch replaces, dropped once the callers are answered: it may hold the
            // last copies of the objects the batch changed, and freeing them is not the callers' wait.
            let mut replaced = None;
            if !batch.records.is_empty() {
                let started_us = self.clock.now_us();
                let result = if self.poisoned.load(Ordering::Acquire) {
                    Err("an earlier append failed".to_string())
                } else {
                    self.store.append_batch(&batch.records).map_err(|e| e.to_string())
                };
                match result {
                    Ok(()) => {
                        self.commit_stats.committed(batch.records.len(), self.clock.now_us() - started_us);
                        self.since_checkpoint += batch.records.len() as u64;
                        self.bytes_since_checkpoint += batch.records.iter().map(|(_, r)| r.len() as u64).sum::<u64>();
                        let seq = batch.state.seq;
                        replaced = Some(self.published.swap(batch.state.clone()));
                        self.committed.send_replace(seq);
                    }
                    Err(e) => {
                        tracing::error!("log append failed: {e}");
                        self.poisoned.store(true, Ordering::Release);
                        for (_, outcome) in &mut replies {
                            if outcome.is_ok() {
                                *outcome = Err(ApiError::internal(format!("log append failed: {e}")));
                            }
                        }
                    }
                }
            }
            for (reply, outcome) in replies {
                let _ = reply.send(outcome);
            }
            drop(replaced);
            let durable = !self.poisoned.load(Ordering::Acquire);
            if durable && batch.stop {
                let _ = self.write_checkpoint(&batch.state);
            } else if durable {
                self.store_checkpoint_parts();
                if self.checkpoint_due() {
                    self.encode_checkpoint(batch.state.clone());
                }
            }
            for reply in batch.checkpoints {
                let result =
                    if durable { self.write_checkpoint(&batch.state) } else { Err("the log cannot be written".into()) };
                let _ = reply.send(result);
            }
            if batch.stop {
                break;
            }
        }
    }

    /// Entries, bytes or time since the last checkpoint over their bound, and none being encoded.
    fn checkpoint_due(&self) -> bool {
        if self.stream.is_some() || self.since_checkpoint == 0 {
            return false;
        }
        let elapsed_us = self.clock.now_us() - self.last_checkpoint_us;
        self.since_checkpoint >= CHECKPOINT_INTERVAL_ENTRIES
            || self.bytes_since_checkpoint >= CHECKPOINT_INTERVAL_BYTES
            || elapsed_us >= CHECKPOINT_INTERVAL.as_micros() as i64
    }

    /// Encodes the image of a published (immutable) state on a thread of its own, so that the
    /// commits after it do not wait for the encoding; the turns after store its parts.
    fn encode_checkpoint(&mut self, state: Arc<State>) {
        if state.seq == 0 {
            return;
        }
        match checkpoint::ImageStream::start(state) {
            Ok(stream) => {
                self.stream = Some(stream);
                self.stats.encoding.store(true, Ordering::Relaxed);
                // Counted from now: the entries committed while it encodes are the next tail.
                self.since_checkpoint = 0;
                self.bytes_since_checkpoint = 0;
                self.last_checkpoint_us = self.clock.now_us();
            }
            Err(e) => tracing::warn!("cannot start the checkpoint thread: {e}"),
        }
    }

    /// Stores a part of the image being encoded when the pace allows, and its seal once all are;
    /// with none being stored, removes a part of the checkpoints dropped since.
    fn store_checkpoint_parts(&mut self) {
        let Some(stream) = &mut self.stream else {
            if self.sweeping {
                self.sweeping = self.store.sweep_checkpoint_parts(1).unwrap_or_else(|e| {
                    tracing::warn!("removing the parts of old checkpoints: {e}");
                    false
                });
            }
            return;
        };
        if !self.pace.ready() {
            return;
        }
        let seq = stream.seq;
        match stream.store_next(&*self.store) {
            Ok(checkpoint::Progress::Waiting) => {}
            Ok(checkpoint::Progress::Stored) => self.pace.spend(crate::store::CHECKPOINT_PART_SIZE_BYTES as u64),
            Ok(checkpoint::Progress::Sealed) => {
                self.stats.stored(self.clock.now_us());
                self.end_stream(false);
            }
            Err(e) => {
                tracing::warn!("writing the checkpoint at entry {seq}: {e}");
                self.end_stream(true);
            }
        }
    }

    /// Forgets the image being stored (marking its parts for the sweep if it is `abandoned`),
    /// and sweeps what checkpoints no longer kept left.
    fn end_stream(&mut self, abandoned: bool) {
        if let Some(stream) = self.stream.take() {
            if abandoned {
                let _ = self.store.abandon_checkpoint(stream.seq);
            }
        }
        self.sweeping = true;
        self.stats.encoding.store(false, Ordering::Relaxed);
    }

    fn write_checkpoint(&mut self, state: &State) -> Result<u64, String> {
        if state.seq == 0 {
            return Ok(0);
        }
        // An image still being stored is older than this one: sealing it after would put an
        // older checkpoint over a newer one, which the store refuses (a panic in the committer).
        // It is abandoned, and the parts it stored are removed by later sweeps.
        self.end_stream(true);
        let image = snapshot::encode(state);
        self.store.put_checkpoint(state.seq, &image).map_err(|e| e.to_string())?;
        self.stats.stored(self.clock.now_us());
        self.since_checkpoint = 0;
        self.bytes_since_checkpoint = 0;
        self.last_checkpoint_us = self.clock.now_us();
        Ok(state.seq)
    }
}

impl Ledger {
    /// The in-process API, one verb to call in (blocking or not): runs `method` (no session; `raw_args` as a wire
    /// would send them after the session) as `actor`. Reads are served from the snapshot and
    /// answer seq 0; writes answer once durable.
    pub async fn invoke_async(&self, actor: Actor, method: &str, raw_args: Vec<Value>) -> Outcome {
        match self.prepare(actor, method, raw_args)? {
            Prepared::Done(value) => Ok((value, 0)),
            Prepared::Write(job) => self.call(job).await,
        }
    }

    /// [`Ledger::invoke_async`] for callers outside an async runtime (the CLI, tests, benches).
    pub fn invoke(&self, actor: Actor, method: &str, raw_args: Vec<Value>) -> Outcome {
        match self.prepare(actor, method, raw_args)? {
            Prepared::Done(value) => Ok((value, 0)),
            Prepared::Write(job) => self.call_blocking(job),
        }
    }

    fn prepare(&self, actor: Actor, method: &str, raw_args: Vec<Value>) -> Result<Prepared, ApiError> {
        let (class, msg) = schema().lookup(method).ok_or_else(|| ApiError::method_unknown(method))?;
        let args = crate::engine::prepare_args(method, msg, raw_args)?;
        let handler = match crate::engine::route(class, msg) {
            Route::Read(reader) => {
                let value = crate::engine::read_routed(reader, &self.snapshot(), class, msg, &args)?;
                return Ok(Prepared::Done(crate::vault::reveal(self.vault(), class, value)?));
            }
            Route::Write(handler) => handler,
            Route::NotImplemented => return Err(ApiError::not_implemented(&msg.wire_name)),
            // Runtime and long operations need a node (sessions, waiters, the host).
            Route::Runtime(_) | Route::Long(_) => {
                return Err(ApiError::internal(format!("{} runs in the node", msg.wire_name)))
            }
        };
        let mut params = crate::engine::logged_params(msg, &args);
        let args = crate::vault::seal_args(self.vault(), class, msg, args, &mut params);
        Ok(Prepared::Write(Job::call(actor, Invocation::routed(class, msg, args, handler), params)))
    }
}

enum Prepared {
    Done(Value),
    Write(Job),
}
