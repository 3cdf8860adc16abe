//! `verify`: the whole chain from seq 1, folded from the empty state, and every retained checkpoint
//! compared with the fold at its seq.
//!
//! The chain check is the library's [`Store::verify_chain`] from seq 1 with the genesis hash, so a
//! flipped byte, a missing record or a broken link is reported with the first bad seq. A checkpoint
//! must hold exactly the image of the folded state ([`snapshot::encode`] is canonical: objects in ref
//! order, fields in schema order); when it does not, the objects that differ are named.
//!
//! [`Store::verify_chain`]: xenledger::store::Store::verify_chain

use std::fmt;
use std::path::Path;

use anyhow::Result;
use xenledger::engine::{snapshot, State};
use xenledger::store::{record_header, Checkpoint, Hash, Store, StoreError, GENESIS_HASH};

use crate::inspect::state_changes;
use crate::{describe, fold, hex, open_store};

/// How many differing objects a checkpoint mismatch lists.
const MISMATCH_LINES_MAX: usize = 10;

/// What `verify` found. `problems` are in seq order; the first names the first bad entry.
#[derive(Clone, Debug)]
pub struct VerifyOutcome {
    /// Entries whose record verified (hash and link), from seq 1.
    pub entries_checked: u64,
    /// Entries folded; less than `entries_checked` only if a fold failed.
    pub entries_folded: u64,
    /// The hash of the last verified record (the chain head).
    pub last_entry_hash: Hash,
    /// [`snapshot::hash`] of the folded state.
    pub state_hash: Hash,
    /// Retained checkpoints whose image equals the fold at their seq.
    pub checkpoints_matched: Vec<u64>,
    /// Retained checkpoints never compared because the fold stopped before them.
    pub checkpoints_unchecked: Vec<u64>,
    /// `(seq, description)`, sorted by seq.
    pub problems: Vec<(u64, String)>,
}

impl VerifyOutcome {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for VerifyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "entries checked: {}", self.entries_checked)?;
        writeln!(f, "entries folded: {}", self.entries_folded)?;
        writeln!(f, "checkpoints matched: {:?}", self.checkpoints_matched)?;
        if !self.checkpoints_unchecked.is_empty() {
            writeln!(f, "checkpoints not compared: {:?}", self.checkpoints_unchecked)?;
        }
        writeln!(f, "last entry hash: {}", hex(&self.last_entry_hash))?;
        writeln!(f, "state hash: {}", hex(&self.state_hash))?;
        match self.problems.first() {
            None => writeln!(f, "OK"),
            Some((_, first)) => {
                writeln!(f, "FAILED: {first}")?;
                self.problems[1..].iter().try_for_each(|(_, more)| writeln!(f, "also: {more}"))
            }
        }
    }
}

/// Verifies a data dir. `Err` only when the check cannot run (no store, locked); what the check finds
/// is in the outcome.
pub fn verify(dir: &Path) -> Result<VerifyOutcome> {
    let store = open_store(dir)?;
    let mut problems: Vec<(u64, String)> = Vec::new();
    let checkpoints = store.checkpoints().unwrap_or_else(|error| {
        problems.push((corrupt_seq(&error), describe(error).to_string()));
        Vec::new()
    });
    let mut pending = checkpoints.iter().peekable();
    let mut state = State::new();
    let mut seen = 0u64;
    let mut folded = 0u64;
    let mut fold_failed = false;
    let mut matched = Vec::new();
    let chain = store.verify_chain(1, GENESIS_HASH, |entry| {
        seen += 1;
        if fold_failed {
            return;
        }
        if let Err(error) = fold(&mut state, &entry) {
            problems.push((entry.seq, error.to_string()));
            fold_failed = true;
            return;
        }
        folded += 1;
        while let Some(checkpoint) = pending.next_if(|cp| cp.seq <= entry.seq) {
            match compare(&state, checkpoint) {
                Ok(()) => matched.push(checkpoint.seq),
                Err(problem) => problems.push((checkpoint.seq, problem)),
            }
        }
    });
    let (checked, last_entry_hash) = match chain {
        Ok(report) => (report.checked, report.last_hash),
        Err(error) => {
            problems.push((corrupt_seq(&error), describe(error).to_string()));
            // verify_chain handed every verified entry to the closure, seqs 1..=seen.
            (seen, record_hash(&store, seen))
        }
    };
    problems.sort_by_key(|(seq, _)| *seq);
    Ok(VerifyOutcome {
        entries_checked: checked,
        entries_folded: folded,
        last_entry_hash,
        state_hash: snapshot::hash(&state),
        checkpoints_matched: matched,
        checkpoints_unchecked: pending.map(|cp| cp.seq).collect(),
        problems,
    })
}

/// The stored hash of record `seq` (the genesis hash for 0 or an unreadable record).
fn record_hash(store: &Store, seq: u64) -> Hash {
    let record = if seq == 0 { None } else { store.record(seq).ok().flatten() };
    record.and_then(|bytes| record_header(seq, &bytes).ok()).map_or(GENESIS_HASH, |header| header.hash)
}

/// The seq a store error names, or 0.
fn corrupt_seq(error: &StoreError) -> u64 {
    match error {
        StoreError::Corrupt { seq, .. } => *seq,
        _ => 0,
    }
}

/// Compares the folded state with a checkpoint's stored image; on a mismatch, says which objects differ.
fn compare(state: &State, checkpoint: &Checkpoint) -> Result<(), String> {
    if snapshot::encode(state) == checkpoint.state {
        return Ok(());
    }
    let seq = checkpoint.seq;
    let stored = match snapshot::decode(&checkpoint.state) {
        Ok(stored) => stored,
        Err(reason) => return Err(format!("checkpoint at seq {seq}: its image does not decode: {reason}")),
    };
    let differences = state_changes(&stored, state, None);
    let mut text = format!(
        "checkpoint at seq {seq} differs from the fold of entries 1..={seq} (stored hash {}, folded hash {})",
        hex(&snapshot::hash(&stored)),
        hex(&snapshot::hash(state))
    );
    if stored.seq != state.seq {
        text.push_str(&format!("; it claims seq {}", stored.seq));
    }
    if differences.is_empty() {
        text.push_str("; the objects agree, so users or deletions differ");
    }
    for line in differences.iter().take(MISMATCH_LINES_MAX) {
        text.push_str("\n    checkpoint -> fold: ");
        text.push_str(line);
    }
    if differences.len() > MISMATCH_LINES_MAX {
        text.push_str(&format!("\n    … and {} more", differences.len() - MISMATCH_LINES_MAX));
    }
    Err(text)
}
