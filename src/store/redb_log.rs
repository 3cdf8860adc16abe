//! [`Store`]: the log, checkpoints and meta tables in one redb file. See the module header in `mod.rs`
//! for the framing, the chain and the durability argument.

use std::fmt;
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};

use crate::entry::Entry;
use crate::store::codec::{
    check_record, decode_body, decode_checkpoint, decode_record, encode_checkpoint, image_parts, record_header, Hash,
    ImageSeal, FORMAT_VERSION, GENESIS_HASH,
};
use crate::store::{database_path, StoreError};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
const CHECKPOINT_PARTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("checkpoint_parts");
/// Seqs whose parts are to be removed, a few at a time ([`Store::sweep_checkpoint_parts`]).
const CHECKPOINT_GARBAGE: TableDefinition<u64, ()> = TableDefinition::new("checkpoint_garbage");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const META_FORMAT_VERSION: &str = "format_version";
const META_SCHEMA_HASH: &str = "schema_hash";

/// How many checkpoints [`Store::put_checkpoint`] keeps. Two, so that a checkpoint found corrupt still
/// leaves an older one to start from.
pub const CHECKPOINTS_RETAINED_COUNT: usize = 2;

/// Log bytes a backup copies per transaction.
const BACKUP_PIECE_BYTES: usize = 16 << 20;

/// Entries handed from the verifying thread to the folding one at a time, or fewer once they
/// hold [`VERIFY_BATCH_BYTES`]. Small batches stay below the allocator's large sizes: with 1,024
/// entries (about 540 KB) a restart after a crash kept the freed batches' memory, and its RSS was
/// about 2× a clean restart's (bench `crash-restart`); with 64, 1.3× and replay no slower.
const VERIFY_BATCH_ENTRIES: usize = 64;
const VERIFY_BATCH_BYTES: usize = 64 << 10;
/// Batches the verifying thread may run ahead of the fold.
const VERIFY_BATCHES_IN_FLIGHT: usize = 8;

/// Records handed between the verifying threads: their bytes back to back in one buffer.
#[derive(Default)]
struct RecordBatch {
    bytes: Vec<u8>,
    /// (seq, end offset in `bytes`) of each record.
    ends: Vec<(u64, usize)>,
}

impl RecordBatch {
    fn push(&mut self, seq: u64, record: &[u8]) {
        self.bytes.extend_from_slice(record);
        self.ends.push((seq, self.bytes.len()));
    }

    fn records(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut start = 0;
        self.ends.iter().map(move |&(seq, end)| {
            let record = &self.bytes[start..end];
            start = end;
            (seq, record)
        })
    }
}

/// A verified checkpoint: the state after entry `seq`, whose record hash is `entry_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub entry_hash: Hash,
    pub state: Vec<u8>,
}

/// What [`Store::verify_chain`] walked. With nothing to check, `last_seq` is `from_seq - 1` and
/// `last_hash` the `expected_prev` given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    pub last_seq: u64,
    pub last_hash: Hash,
}

/// The log store. Cheap to share by reference across threads; see the module header.
pub struct Store {
    db: Database,
    path: PathBuf,
    schema_hash: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("schema_hash", &self.schema_hash).finish()
    }
}

/// redb's page cache. The log is appended at its right edge and read front to back, so a small
/// cache serves both. With redb's default (1 GiB) a restart after a crash kept every page the
/// repair and the tail's fold had read: bench `crash-restart`, RSS 2.7× a clean restart's with a
/// 71 MB log; 1.85× with 4 MiB, and `engine-writes` unchanged within the machine's noise.
pub const CACHE_BYTES: usize = 4 << 20;

impl Store {
    /// Opens the store in `dir`, creating the directory and the database if missing. A new database
    /// records the format version and `schema_hash`; an existing one must match both.
    pub fn open(dir: &Path, schema_hash: &str) -> Result<Store, StoreError> {
        assert!(!schema_hash.is_empty(), "Store::open: empty schema hash");
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        let path = database_path(dir);
        let db = redb::Builder::new().set_cache_size(CACHE_BYTES).create(&path)?;
        let mut txn = db.begin_write()?;
        // A data dir from before checkpoint parts gets the (empty) tables now, so reads can open
        // them; parts a crash cut short of their seal are marked for the sweep (those of the
        // oldest and the newest seq stored: a crash leaves at most the one image it was storing).
        let has_part_tables = txn.list_tables()?.any(|table| table.name() == CHECKPOINT_GARBAGE.name());
        let orphans = {
            let parts = txn.open_table(CHECKPOINT_PARTS)?;
            let seals = txn.open_table(CHECKPOINTS)?;
            let mut orphans = Vec::new();
            for end in [parts.first()?, parts.last()?].into_iter().flatten() {
                let seq = end.0.value().0;
                if seals.get(seq)?.is_none() {
                    orphans.push(seq);
                }
            }
            orphans
        };
        {
            let mut garbage = txn.open_table(CHECKPOINT_GARBAGE)?;
            for seq in &orphans {
                garbage.insert(*seq, ())?;
            }
        }
        let created = {
            let mut meta = txn.open_table(META)?;
            let log = txn.open_table(LOG)?;
            let checkpoints = txn.open_table(CHECKPOINTS)?;
            let stored_version = meta.get(META_FORMAT_VERSION)?.map(|guard| guard.value().to_vec());
            let stored_schema = meta.get(META_SCHEMA_HASH)?.map(|guard| guard.value().to_vec());
            match (stored_version, stored_schema) {
                (None, None) => {
                    if !log.is_empty()? || !checkpoints.is_empty()? {
                        let reason = format!("{} holds log records but no meta table", path.display());
                        return Err(StoreError::Format { reason });
                    }
                    meta.insert(META_FORMAT_VERSION, [FORMAT_VERSION].as_slice())?;
                    meta.insert(META_SCHEMA_HASH, schema_hash.as_bytes())?;
                    true
                }
                (Some(version), Some(stored)) => {
                    if version != [FORMAT_VERSION] {
                        let reason = format!("store format version {version:?}, this build reads [{FORMAT_VERSION}]");
                        return Err(StoreError::Format { reason });
                    }
                    let stored = String::from_utf8(stored)
                        .map_err(|_| StoreError::Format { reason: "schema hash in meta is not UTF-8".into() })?;
                    if stored != schema_hash {
                        return Err(StoreError::SchemaMismatch { stored, current: schema_hash.to_string() });
                    }
                    false
                }
                _ => {
                    return Err(StoreError::Format {
                        reason: "meta holds only one of format_version, schema_hash".into(),
                    })
                }
            }
        };
        if created || !has_part_tables || !orphans.is_empty() {
            txn.set_durability(Durability::Immediate)?;
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(Store { db, path, schema_hash: schema_hash.to_string() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema hash the store was opened with (and, by then, checked against).
    pub fn schema_hash(&self) -> &str {
        &self.schema_hash
    }

    /// Appends framed records (from [`crate::store::encode_entry`]) in one durable transaction: all of
    /// them are visible after a crash, or none.
    ///
    /// Panics unless the seqs continue the stored log without a gap and each record's `prev_hash` links
    /// to its predecessor: the single writer owns the seq counter, so a mismatch is a bug in it.
    pub fn append_batch(&self, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut log = txn.open_table(LOG)?;
            let (mut prev_seq, mut prev_hash) = match log.last()? {
                Some((key, value)) => (key.value(), record_header(key.value(), value.value())?.hash),
                None => (0, GENESIS_HASH),
            };
            for (seq, record) in records {
                let seq = *seq;
                assert_eq!(seq, prev_seq + 1, "append_batch: seq {seq} does not follow the stored {prev_seq}");
                let header = match record_header(seq, record) {
                    Ok(header) => header,
                    Err(error) => panic!("append_batch: record {seq} is malformed: {error}"),
                };
                assert_eq!(header.prev_hash, prev_hash, "append_batch: record {seq} does not link to {prev_seq}");
                debug_assert!(decode_record(seq, record).is_ok(), "append_batch: record {seq} does not decode");
                log.insert(seq, record.as_slice())?;
                (prev_seq, prev_hash) = (seq, header.hash);
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The last stored seq and its record hash, or `None` for an empty log.
    pub fn last(&self) -> Result<Option<(u64, Hash)>, StoreError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        let Some((key, value)) = log.last()? else {
            return Ok(None);
        };
        let seq = key.value();
        Ok(Some((seq, record_header(seq, value.value())?.hash)))
    }

    /// One raw record, or `None` if `seq` is not stored.
    pub fn record(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        Ok(log.get(seq)?.map(|guard| guard.value().to_vec()))
    }

    /// Stores a checkpoint of `state` (the caller's encoding of the state after entry `seq`): its
    /// parts and its seal (the hash of log record `seq`, the image's size and hash) in one durable
    /// transaction, as [`Store::seal_checkpoint`] does for parts stored before.
    ///
    /// Panics if the log has no entry `seq` or a newer checkpoint exists: both are writer bugs.
    pub fn put_checkpoint(&self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut parts = txn.open_table(CHECKPOINT_PARTS)?;
            parts.retain_in((seq, 0)..=(seq, u32::MAX), |_, _| false)?;
            for (index, part) in image_parts(state).enumerate() {
                parts.insert((seq, index as u32), part)?;
            }
        }
        seal_in(&txn, seq, &ImageSeal::of(state))?;
        txn.commit()?;
        Ok(())
    }

    /// Stores part `index` of the image of the checkpoint after entry `seq`, in a transaction that
    /// does not wait for the disk: the next durable commit (a group commit, the seal) carries it.
    /// Part 0 starts the image over: parts stored before for `seq` are removed.
    pub fn put_checkpoint_part(&self, seq: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        {
            let mut parts = txn.open_table(CHECKPOINT_PARTS)?;
            if index == 0 {
                parts.retain_in((seq, 0)..=(seq, u32::MAX), |_, _| false)?;
            }
            parts.insert((seq, index), bytes)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Seals the checkpoint after entry `seq` whose parts [`Store::put_checkpoint_part`] stored:
    /// the seal (the hash of log record `seq`, the image's size, part count and hash) in one
    /// durable transaction that also drops all but the newest [`CHECKPOINTS_RETAINED_COUNT`]
    /// checkpoints, marking their parts for [`Store::sweep_checkpoint_parts`].
    ///
    /// Panics if the log has no entry `seq` or a newer checkpoint exists: both are writer bugs.
    pub fn seal_checkpoint(&self, seq: u64, seal: &ImageSeal) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        seal_in(&txn, seq, seal)?;
        txn.commit()?;
        Ok(())
    }

    /// Marks the parts of an image that will not be sealed (its checkpoint abandoned) for
    /// [`Store::sweep_checkpoint_parts`].
    pub fn abandon_checkpoint(&self, seq: u64) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        txn.open_table(CHECKPOINT_GARBAGE)?.insert(seq, ())?;
        txn.commit()?;
        Ok(())
    }

    /// Removes up to `parts_max` parts of dropped or abandoned checkpoints, in a transaction
    /// that does not wait for the disk; whether any remain.
    pub fn sweep_checkpoint_parts(&self, parts_max: usize) -> Result<bool, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        let remaining = {
            let mut garbage = txn.open_table(CHECKPOINT_GARBAGE)?;
            let mut parts = txn.open_table(CHECKPOINT_PARTS)?;
            let mut removed = 0;
            while removed < parts_max {
                let Some(seq) = garbage.first()?.map(|(key, _)| key.value()) else { break };
                let next = parts.range((seq, 0)..=(seq, u32::MAX))?.next().transpose()?.map(|(key, _)| key.value());
                match next {
                    Some(key) => {
                        parts.remove(key)?;
                        removed += 1;
                    }
                    None => {
                        garbage.remove(seq)?;
                    }
                }
            }
            !garbage.is_empty()?
        };
        txn.commit()?;
        Ok(remaining)
    }

    /// Writes a consistent copy of the store (meta, log, checkpoints as of one read snapshot) to a
    /// new database file `to`, while appends go on: the online backup a live server serves, which
    /// `xenledger-replay` reads like any data dir. Copies in durable pieces of [`BACKUP_PIECE_BYTES`],
    /// so the copy's dirty pages never hold the whole log in memory. Returns the copy's last seq.
    pub fn backup_to(&self, to: &Path) -> Result<u64, StoreError> {
        let read = self.db.begin_read()?;
        let copy = redb::Builder::new().set_cache_size(CACHE_BYTES).create(to)?;
        let mut last_seq = 0u64;
        let mut txn = copy.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            for item in read.open_table(META)?.iter()? {
                let (key, value) = item?;
                meta.insert(key.value(), value.value())?;
            }
            let mut checkpoints = txn.open_table(CHECKPOINTS)?;
            for item in read.open_table(CHECKPOINTS)?.iter()? {
                let (key, value) = item?;
                checkpoints.insert(key.value(), value.value())?;
            }
        }
        // The parts of the kept checkpoints (not those awaiting the sweep) are copied a durable
        // piece at a time too.
        let mut piece_bytes = 0usize;
        let seals: Vec<u64> = read
            .open_table(CHECKPOINTS)?
            .iter()?
            .map(|item| item.map(|(key, _)| key.value()))
            .collect::<Result<_, _>>()?;
        let parts = read.open_table(CHECKPOINT_PARTS)?;
        for seq in seals {
            for item in parts.range((seq, 0)..=(seq, u32::MAX))? {
                let (key, value) = item?;
                txn.open_table(CHECKPOINT_PARTS)?.insert(key.value(), value.value())?;
                piece_bytes += value.value().len();
                if piece_bytes >= BACKUP_PIECE_BYTES {
                    txn.commit()?;
                    txn = copy.begin_write()?;
                    piece_bytes = 0;
                }
            }
        }
        for item in read.open_table(LOG)?.iter()? {
            let (key, value) = item?;
            txn.open_table(LOG)?.insert(key.value(), value.value())?;
            last_seq = key.value();
            piece_bytes += value.value().len();
            if piece_bytes >= BACKUP_PIECE_BYTES {
                txn.commit()?;
                txn = copy.begin_write()?;
                piece_bytes = 0;
            }
        }
        txn.set_durability(Durability::Immediate)?;
        txn.commit()?;
        Ok(last_seq)
    }

    /// The newest checkpoint, verified: its state hash, and its entry hash against log record `seq`.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        let checkpoints = txn.open_table(CHECKPOINTS)?;
        let parts = txn.open_table(CHECKPOINT_PARTS)?;
        let Some((key, value)) = checkpoints.last()? else {
            return Ok(None);
        };
        verify_checkpoint(&log, &parts, key.value(), value.value()).map(Some)
    }

    /// Every retained checkpoint, oldest first, each verified as in [`Store::latest_checkpoint`]; the
    /// first bad one is the error.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        let table = txn.open_table(CHECKPOINTS)?;
        let parts = txn.open_table(CHECKPOINT_PARTS)?;
        let mut checkpoints = Vec::new();
        for item in table.iter()? {
            let (key, value) = item?;
            checkpoints.push(verify_checkpoint(&log, &parts, key.value(), value.value())?);
        }
        Ok(checkpoints)
    }

    /// Raw records from `from_seq` to `to_seq` (both inclusive; `None` for the end of the log), in seq
    /// order, from one read snapshot: appends committed after this call are not seen. Each item copies
    /// its record; [`Store::for_each_record`] lends it instead.
    pub fn read_range(&self, from_seq: u64, to_seq: Option<u64>) -> Result<RecordIter, StoreError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        // `ReadOnlyTable::range` returns a range that keeps the snapshot alive on its own.
        let range = match to_seq {
            None => Some(log.range(from_seq..)?),
            Some(to_seq) if to_seq >= from_seq => Some(log.range(from_seq..=to_seq)?),
            Some(_) => None,
        };
        Ok(RecordIter { range })
    }

    /// Calls `f` with each raw record from `from_seq` to `to_seq` (inclusive; `None` for the end), in seq
    /// order, from one read snapshot, without copying. Stops at the first error, `f`'s or the store's.
    pub fn for_each_record<E>(
        &self,
        from_seq: u64,
        to_seq: Option<u64>,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<StoreError>,
    {
        let mut iter = self.read_range(from_seq, to_seq)?;
        let Some(range) = iter.range.as_mut() else {
            return Ok(());
        };
        for item in range {
            let (key, value) = item.map_err(StoreError::from)?;
            f(key.value(), value.value())?;
        }
        Ok(())
    }

    /// Walks the log from `from_seq` to its end: decodes each record, checks its hash and that its
    /// `prev_hash` is the previous record's hash (`expected_prev` for the first: [`GENESIS_HASH`] from seq
    /// 1, a checkpoint's `entry_hash` from the seq after it), and that no seq is missing. Hands each
    /// entry to `f` in order. The first bad record is [`StoreError::Corrupt`] naming its seq; entries
    /// before it have been passed to `f`.
    pub fn verify_chain(
        &self,
        from_seq: u64,
        expected_prev: Hash,
        mut f: impl FnMut(Entry),
    ) -> Result<VerifyReport, StoreError> {
        assert!(from_seq >= 1, "verify_chain: seqs start at 1");
        // Reading and hashing run on a second thread; decoding and `f` (the fold) on this one. Records
        // cross in batches copied into one buffer, so the threads never free each other's allocations.
        let (batches, received) =
            std::sync::mpsc::sync_channel::<Result<RecordBatch, StoreError>>(VERIFY_BATCHES_IN_FLIGHT);
        std::thread::scope(|scope| {
            let producer = scope.spawn(move || {
                let mut report = VerifyReport { checked: 0, last_seq: from_seq - 1, last_hash: expected_prev };
                let mut batch = RecordBatch::default();
                let result = self.for_each_record(from_seq, None, |seq, bytes| {
                    let expected_seq = report.last_seq + 1;
                    if seq != expected_seq {
                        return Err(StoreError::corrupt(
                            expected_seq,
                            format!("entry missing; the next stored is {seq}"),
                        ));
                    }
                    let header = check_record(seq, bytes)?;
                    if header.prev_hash != report.last_hash {
                        let reason = format!("prev_hash does not match the hash of entry {}", report.last_seq);
                        return Err(StoreError::corrupt(seq, reason));
                    }
                    batch.push(seq, bytes);
                    report = VerifyReport { checked: report.checked + 1, last_seq: seq, last_hash: header.hash };
                    if (batch.ends.len() == VERIFY_BATCH_ENTRIES || batch.bytes.len() >= VERIFY_BATCH_BYTES)
                        && batches.send(Ok(std::mem::take(&mut batch))).is_err()
                    {
                        return Err(StoreError::corrupt(seq, "verification abandoned".to_string()));
                    }
                    Ok(())
                });
                // Entries before a bad one still reach `f`, in order, before the error does.
                let _ = batches.send(Ok(batch));
                if let Err(e) = result {
                    let _ = batches.send(Err(e));
                }
                report
            });
            let mut failure = None;
            'batches: for message in received.iter() {
                let batch = match message {
                    Ok(batch) => batch,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                for (seq, bytes) in batch.records() {
                    match decode_body(seq, bytes) {
                        Ok(entry) => f(entry),
                        Err(e) => {
                            failure = Some(e);
                            break 'batches;
                        }
                    }
                }
            }
            drop(received);
            let report = producer.join().expect("the verifying thread does not panic");
            match failure {
                Some(e) => Err(e),
                None => Ok(report),
            }
        })
    }

    /// Removes every log record and checkpoint after `seq`, durably. For tools and tests (cutting a log
    /// back to before a corrupt record); the server never truncates.
    pub fn truncate_after(&self, seq: u64) -> Result<(), StoreError> {
        let Some(first_removed) = seq.checked_add(1) else {
            return Ok(());
        };
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            txn.open_table(LOG)?.retain_in(first_removed.., |_, _| false)?;
            txn.open_table(CHECKPOINTS)?.retain_in(first_removed.., |_, _| false)?;
            txn.open_table(CHECKPOINT_PARTS)?.retain_in((first_removed, 0).., |_, _| false)?;
            txn.open_table(CHECKPOINT_GARBAGE)?.retain_in(first_removed.., |_, _| false)?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// Writes the seal of the checkpoint after entry `seq` in `txn`, keeps the newest
/// [`CHECKPOINTS_RETAINED_COUNT`] and removes every part without a kept seal.
fn seal_in(txn: &redb::WriteTransaction, seq: u64, seal: &ImageSeal) -> Result<(), StoreError> {
    let log = txn.open_table(LOG)?;
    let entry_hash = match log.get(seq)? {
        Some(guard) => record_header(seq, guard.value())?.hash,
        None => panic!("seal_checkpoint: the log has no entry {seq}"),
    };
    let blob = encode_checkpoint(&entry_hash, seal)?;
    let mut checkpoints = txn.open_table(CHECKPOINTS)?;
    let newest = checkpoints.last()?.map(|(key, _)| key.value());
    if let Some(newest) = newest {
        assert!(seq >= newest, "seal_checkpoint: seq {seq} is older than the stored checkpoint {newest}");
    }
    checkpoints.insert(seq, blob.as_slice())?;
    let mut seqs = Vec::new();
    for item in checkpoints.iter()? {
        seqs.push(item?.0.value());
    }
    // The parts of the checkpoints dropped go later, a few per commit: removing a part reads
    // it, and a whole image's worth in this transaction stalled the log (bench `scale`: 16–68 ms).
    let mut garbage = txn.open_table(CHECKPOINT_GARBAGE)?;
    for old in &seqs[..seqs.len().saturating_sub(CHECKPOINTS_RETAINED_COUNT)] {
        checkpoints.remove(*old)?;
        garbage.insert(*old, ())?;
    }
    garbage.remove(seq)?;
    Ok(())
}

/// Checks a stored checkpoint (its seal and parts) and that the entry hash it names is the hash
/// of log record `seq`.
fn verify_checkpoint(
    log: &impl ReadableTable<u64, &'static [u8]>,
    parts: &impl ReadableTable<(u64, u32), &'static [u8]>,
    seq: u64,
    blob: &[u8],
) -> Result<Checkpoint, StoreError> {
    let (entry_hash, state) = decode_checkpoint(seq, blob, |visit| {
        for item in parts.range((seq, 0)..=(seq, u32::MAX))? {
            let (key, value) = item?;
            visit(key.value().1, value.value())?;
        }
        Ok(())
    })?;
    let Some(record) = log.get(seq)? else {
        return Err(StoreError::corrupt(seq, format!("checkpoint at seq {seq}: the log has no entry {seq}")));
    };
    if record_header(seq, record.value())?.hash != entry_hash {
        let reason = format!("checkpoint at seq {seq}: entry hash differs from log entry {seq}");
        return Err(StoreError::corrupt(seq, reason));
    }
    Ok(Checkpoint { seq, entry_hash, state })
}

/// Raw records `(seq, bytes)` from [`Store::read_range`]. Holds its read snapshot until dropped.
pub struct RecordIter {
    range: Option<redb::Range<'static, u64, &'static [u8]>>,
}

impl fmt::Debug for RecordIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordIter").finish_non_exhaustive()
    }
}

impl Iterator for RecordIter {
    type Item = Result<(u64, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.range.as_mut()?.next()?;
        Some(item.map(|(key, value)| (key.value(), value.value().to_vec())).map_err(StoreError::from))
    }
}

impl crate::store::Log for Store {
    fn append_batch(&self, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        Store::append_batch(self, records)
    }

    fn last(&self) -> Result<Option<(u64, Hash)>, StoreError> {
        Store::last(self)
    }

    fn record(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Store::record(self, seq)
    }

    fn put_checkpoint(&self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        Store::put_checkpoint(self, seq, state)
    }

    fn put_checkpoint_part(&self, seq: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        Store::put_checkpoint_part(self, seq, index, bytes)
    }

    fn seal_checkpoint(&self, seq: u64, seal: &ImageSeal) -> Result<(), StoreError> {
        Store::seal_checkpoint(self, seq, seal)
    }

    fn abandon_checkpoint(&self, seq: u64) -> Result<(), StoreError> {
        Store::abandon_checkpoint(self, seq)
    }

    fn sweep_checkpoint_parts(&self, parts_max: usize) -> Result<bool, StoreError> {
        Store::sweep_checkpoint_parts(self, parts_max)
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        Store::checkpoints(self)
    }

    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Store::latest_checkpoint(self)
    }

    fn backup_to(&self, to: &Path) -> Result<u64, StoreError> {
        Store::backup_to(self, to)
    }

    fn each_record(
        &self,
        from_seq: u64,
        to_seq: Option<u64>,
        f: &mut crate::store::RecordVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.for_each_record(from_seq, to_seq, f)
    }

    /// The two-thread walk: reading and hashing overlap decoding and folding.
    fn walk_chain(
        &self,
        from_seq: u64,
        expected_prev: Hash,
        f: &mut dyn FnMut(Entry),
    ) -> Result<VerifyReport, StoreError> {
        Store::verify_chain(self, from_seq, expected_prev, f)
    }
}
