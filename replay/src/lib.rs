//! `xenledger-replay`: audit and debug a xenledger data dir by folding its log with the server's own
//! engine.
//!
//! Every subcommand walks the stored records in seq order, checks each one against the blake3 chain
//! (its own hash and the link to its predecessor, both from the library's codec), and folds it with
//! [`xenledger::engine::apply::apply_changes`], the same fold the server runs. There is no second
//! implementation of a state change here: if replay and the server disagree, the log or the fold is
//! wrong, never a copy of it.
//!
//! - [`verify()`]: the whole chain from seq 1, folded from an empty state; at every retained checkpoint
//!   the folded state's [`snapshot::hash`] must equal the hash of the checkpoint's stored image.
//! - [`log()`]: one line per entry (who, what, which changes), with filters.
//! - [`state_json`]: the objects as of an entry, as JSON.
//! - [`diff()`]: objects added, removed and changed between two entries.
//!
//! **Credentials.** No output shows a session's ref or a secret's value ([`redact`]): sessions
//! appear as `session:<uuid>`, secret values as `(secret)`, old logs included.
//!
//! **Locking.** redb holds an exclusive lock on the database file while a server has it open, so the
//! tool works on a stopped server's data dir, or on the online copy a live server serves at
//! `GET /xenledger/backup` (pool-admin), saved as `xenledger.redb` in any directory. A locked dir
//! fails with the hint in [`open_store`]'s error. The store is opened through [`Store::open`], which never writes to
//! an existing store, but redb opens the file for writing (and would repair it after a crash).
//!
//! The functions return their output rather than printing it, so `main.rs` stays thin and the tests
//! call them directly.

pub mod inspect;
pub mod log;
pub mod redact;
pub mod render;
pub mod verify;

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use xenledger::engine::apply::apply_changes;
use xenledger::engine::{snapshot, State};
use xenledger::entry::Entry;
use xenledger::schema::schema;
use xenledger::store::{database_path, decode_record, Hash, Store, StoreError, GENESIS_HASH};

pub use inspect::{diff, state_json};
pub use log::{log, LogFilter};
pub use verify::{verify, VerifyOutcome};

/// Opens the store of an existing data dir. Refuses a dir without one (it would otherwise be created
/// empty) and explains the lock when a running server holds it.
pub fn open_store(dir: &Path) -> Result<Store> {
    let path = database_path(dir);
    if !path.is_file() {
        bail!("{} is not a xenledger data dir: {} does not exist", dir.display(), path.display());
    }
    Store::open(dir, &schema().hash).map_err(|error| match error {
        StoreError::Redb(_) => anyhow!(error).context(format!(
            "opening {} (if a server is running on this dir, redb holds an exclusive lock on the file: \
             take the server's online copy instead, e.g. `mkdir copy && curl -k -u root \
             https://HOST/xenledger/backup -o copy/xenledger.redb`, and point this tool at `copy`)",
            path.display()
        )),
        other => anyhow!(other).context(format!("opening {}", path.display())),
    })
}

/// A store error in the tool's words: a corrupt record is "entry N is corrupt: …".
pub fn describe(error: StoreError) -> anyhow::Error {
    match error {
        StoreError::Corrupt { reason, .. } if reason.starts_with("checkpoint") => anyhow!("{reason}"),
        StoreError::Corrupt { seq, reason } => anyhow!("entry {seq} is corrupt: {reason}"),
        other => anyhow!(other),
    }
}

/// Folds one entry with the library's fold. The fold panics on a change that cannot apply (a
/// dangling ref, an unknown class); for a tool that reads possibly damaged logs that is a finding to
/// report with the entry's seq, not a crash.
pub fn fold(state: &mut State, entry: &Entry) -> Result<()> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| apply_changes(state, entry.seq, &entry.changes)));
    outcome.map_err(|payload| {
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        anyhow!("entry {} cannot be folded: {text}", entry.seq)
    })
}

/// What [`walk`] covered: the last entry visited and its record hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walked {
    pub checked: u64,
    pub last_seq: u64,
    pub last_hash: Hash,
}

/// Visits entries `from_seq..=to_seq` (`None`: to the end) in order, each decoded and verified by
/// [`decode_record`] and checked to link to its predecessor (`expected_prev` for the first) with no
/// seq missing. The first bad record or the first error of `f` stops the walk.
///
/// This is [`Store::verify_chain`] with an upper bound: `state --at` and `diff` must not decode a
/// million entries past the position they asked for.
pub fn walk(
    store: &Store,
    from_seq: u64,
    to_seq: Option<u64>,
    expected_prev: Hash,
    mut f: impl FnMut(Entry) -> Result<()>,
) -> Result<Walked> {
    assert!(from_seq >= 1, "walk: seqs start at 1");
    let mut walked = Walked { checked: 0, last_seq: from_seq - 1, last_hash: expected_prev };
    store.for_each_record(from_seq, to_seq, |seq, bytes| -> Result<()> {
        let expected_seq = walked.last_seq + 1;
        if seq != expected_seq {
            bail!("entry {expected_seq} is corrupt: entry missing; the next stored is {seq}");
        }
        let record = decode_record(seq, bytes).map_err(describe)?;
        if record.prev_hash != walked.last_hash {
            bail!("entry {seq} is corrupt: prev_hash does not match the hash of entry {}", walked.last_seq);
        }
        f(record.entry)?;
        walked = Walked { checked: walked.checked + 1, last_seq: seq, last_hash: record.hash };
        Ok(())
    })?;
    Ok(walked)
}

/// The last stored seq (0 for an empty log).
pub fn last_seq(store: &Store) -> Result<u64> {
    Ok(store.last().map_err(describe)?.map_or(0, |(seq, _)| seq))
}

/// The state after entry `seq` and that entry's record hash. Starts from the newest retained
/// checkpoint at or before `seq` when `use_checkpoints` (falling back to seq 1 if the checkpoints do
/// not verify), else from the empty state.
pub fn state_at(store: &Store, seq: u64, use_checkpoints: bool) -> Result<(State, Hash)> {
    let last = last_seq(store)?;
    if seq > last {
        bail!("the log ends at entry {last}; there is no entry {seq}");
    }
    let start = if use_checkpoints { checkpoint_before(store, seq) } else { None };
    let (mut state, prev) = start.unwrap_or_else(|| (State::new(), GENESIS_HASH));
    if state.seq == seq {
        return Ok((state, prev));
    }
    let walked = walk(store, state.seq + 1, Some(seq), prev, |entry| fold(&mut state, &entry))?;
    assert_eq!(walked.last_seq, seq, "state_at: walk stopped before entry {seq}");
    Ok((state, walked.last_hash))
}

/// The newest checkpoint at or before `seq`, decoded, or `None` if there is none or they do not verify
/// (`verify` reports those; here they only cost speed).
fn checkpoint_before(store: &Store, seq: u64) -> Option<(State, Hash)> {
    let checkpoint = store.checkpoints().ok()?.into_iter().rfind(|cp| cp.seq <= seq)?;
    let state = snapshot::decode(&checkpoint.state).ok()?;
    (state.seq == checkpoint.seq).then_some((state, checkpoint.entry_hash))
}

/// Lower-case hex of a hash.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolves a class name given on the command line (case-insensitive, as `event.from` spells them) to
/// its schema spelling.
pub fn class_name(name: &str) -> Result<String> {
    schema().class_by_lower(name).map(|c| c.name.clone()).with_context(|| format!("the schema has no class {name:?}"))
}
