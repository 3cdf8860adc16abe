//! The log store: the only module that touches redb.
//!
//! The ledger sees a store through the [`Log`] trait: [`Store`] is redb on disk, [`MemoryLog`]
//! the same contract in memory (tests, the simulation), and [`FaultyLog`] a memory log whose
//! appends fail, tear or stall on a seeded schedule.
//!
//! One redb file, `DIR/xenledger.redb` ([`database_path`]), holds these tables:
//!
//! - `log: u64 -> &[u8]`: seq → one framed log record (see below), seqs contiguous from 1;
//! - `checkpoints: u64 -> &[u8]`: seq → the seal of a snapshot of the state after entry `seq`; only the
//!   newest [`CHECKPOINTS_RETAINED_COUNT`] are kept;
//! - `checkpoint_parts: (u64, u32) -> &[u8]`: (seq, index) → a part of that snapshot's image, stored
//!   without an fsync of its own (the next group commit's makes it durable) before its seal, so a
//!   large image is written a part per commit instead of stalling the log for one long transaction;
//! - `checkpoint_garbage: u64 -> ()`: seqs whose parts are to be removed (a checkpoint no longer
//!   kept, one abandoned, one a crash cut short of its seal, found at open), a few per commit
//!   (`sweep_checkpoint_parts`), since removing a part reads it;
//! - `meta: &str -> &[u8]`: `format_version` (one byte) and `schema_hash` (UTF-8), written once when the
//!   file is created and checked on every open.
//!
//! **Framing.** A stored record is `[FORMAT_VERSION u8][prev_hash 32][hash 32][postcard(Entry)]`
//! ([`codec`]). postcard has a documented, stable wire format, and the leading version byte lets a later
//! build upcast old records instead of guessing. Records are bounded by [`ENTRY_SIZE_BYTES_MAX`].
//!
//! **Chain.** `hash = blake3(prev_hash ‖ seq.to_le_bytes() ‖ body)` and each record's `prev_hash` is the
//! previous record's `hash` ([`GENESIS_HASH`], 32 zero bytes, for seq 1). A flipped bit anywhere in a
//! record breaks its own hash; a dropped, reordered or spliced record breaks the link to its neighbour.
//! Because the seq is hashed too, a record moved to another key no longer verifies.
//! [`Store::verify_chain`] walks the chain and names the first bad seq.
//!
//! **Durability.** The caller does group commit: it batches entries and hands them to
//! [`Store::append_batch`], which writes the whole batch in one redb write transaction with
//! `Durability::Immediate` (one fsync). redb commits are atomic: a crash before the commit finishes
//! leaves the previous durable state, so a torn batch can never be half-visible and there is no torn
//! tail to repair. What can still go wrong on disk (bit rot, a hand-edited or foreign file) is caught by
//! the chain check. [`Store::open`] checks only the meta table; the caller verifies on startup: take
//! [`Store::latest_checkpoint`], then [`Store::verify_chain`] from `checkpoint.seq + 1` with
//! `checkpoint.entry_hash` (or from 1 with [`GENESIS_HASH`]). The replay tool verifies everything.
//! A checkpoint's seal is written in its own durable transaction after the entries and the parts it
//! covers.
//!
//! **Concurrency.** One writer thread calls the mutating methods; reads may come from any thread. redb is
//! MVCC, so a read transaction sees one consistent snapshot and never blocks the writer. redb locks the
//! file (`ConcurrencyMode::ExclusiveWriter`), so a second process, say the replay tool, cannot open a
//! store that a running server holds.

pub mod codec;
mod log;
mod redb_log;

use std::path::{Path, PathBuf};

pub use codec::{
    decode_checkpoint, decode_record, encode_checkpoint, encode_entry, entry_hash, image_parts, record_header,
    DecodedRecord, Hash, ImageSeal, RecordHeader, CHECKPOINT_FORMAT_VERSION, CHECKPOINT_HEADER_SIZE_BYTES,
    CHECKPOINT_PART_SIZE_BYTES, CHECKPOINT_SIZE_BYTES_MAX, ENTRY_SIZE_BYTES_MAX, FORMAT_VERSION, GENESIS_HASH,
    RECORD_HEADER_SIZE_BYTES,
};
pub use log::{splitmix64, Fault, FaultyLog, Log, MemoryLog, RecordVisitor};
pub use redb_log::{Checkpoint, RecordIter, Store, VerifyReport, CHECKPOINTS_RETAINED_COUNT};

/// The file name of the database inside the data directory.
pub const DATABASE_FILE_NAME: &str = "xenledger.redb";

/// The redb file inside a data directory.
pub fn database_path(dir: &Path) -> PathBuf {
    dir.join(DATABASE_FILE_NAME)
}

/// Log store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed: I/O underneath, the file locked by another process, a poisoned transaction. Boxed
    /// because `redb::Error` is large and errors are rare.
    #[error("redb")]
    Redb(#[source] Box<redb::Error>),
    /// Creating the data directory failed.
    #[error("store I/O on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A stored record or checkpoint fails its checks. `seq` is the first bad one; `reason` says which
    /// check failed (checkpoint reasons start with "checkpoint at seq N").
    #[error("store is corrupt at seq {seq}: {reason}")]
    Corrupt { seq: u64, reason: String },
    /// The file was written by a build with another datamodel; replaying it could fold changes to
    /// fields this build does not know.
    #[error("schema hash mismatch: the store was written with schema {stored}, this build has {current}")]
    SchemaMismatch { stored: String, current: String },
    /// An entry or checkpoint exceeds its size bound.
    #[error("{what} of {size_bytes} bytes exceeds the limit of {size_bytes_max} bytes")]
    TooLarge { what: &'static str, size_bytes: u64, size_bytes_max: u64 },
    /// The file is not a xenledger store this build can read (format version, missing meta).
    #[error("store format: {reason}")]
    Format { reason: String },
}

impl StoreError {
    /// Whether the database is held open by another process (a running server).
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Redb(e) if matches!(**e, redb::Error::DatabaseAlreadyOpen))
    }

    pub(crate) fn corrupt(seq: u64, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt { seq, reason: reason.into() }
    }
}

impl From<redb::Error> for StoreError {
    fn from(error: redb::Error) -> StoreError {
        StoreError::Redb(Box::new(error))
    }
}

/// redb 4 returns one narrow error type per operation; each converts into `redb::Error`.
macro_rules! from_redb_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(error: $ty) -> StoreError {
                StoreError::Redb(Box::new(redb::Error::from(error)))
            }
        }
    )*};
}

from_redb_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

// The writer thread hands errors to request handlers on other threads, and readers share the store.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<StoreError>();
    send_sync::<Store>();
};
