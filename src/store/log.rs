//! [`Log`]: what the ledger needs of a log store, so that the same ledger runs on redb
//! ([`Store`](super::Store)), in memory ([`MemoryLog`], for tests and the simulation) or on a
//! log that fails on a seeded schedule ([`FaultyLog`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::codec::{
    check_record, decode_body, decode_checkpoint, encode_checkpoint, image_parts, record_header, Hash, ImageSeal,
    GENESIS_HASH,
};
use super::redb_log::{Checkpoint, VerifyReport, CHECKPOINTS_RETAINED_COUNT};
use super::StoreError;
use crate::entry::Entry;

/// What [`Log::each_record`] calls with each raw record: `(seq, bytes)`.
pub type RecordVisitor<'a> = dyn FnMut(u64, &[u8]) -> Result<(), StoreError> + 'a;

/// A log store: framed records by seq, and checkpoints. One writer appends; readers may come from
/// any thread. See the `store` module header for the framing and the chain.
pub trait Log: Send + Sync + 'static {
    /// Appends records (seqs continuing the log, each linking to the previous) atomically and
    /// durably: after a crash all of them are there, or none.
    fn append_batch(&self, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError>;

    /// The last stored seq and its record hash, or `None` for an empty log.
    fn last(&self) -> Result<Option<(u64, Hash)>, StoreError>;

    /// One raw record, or `None` if `seq` is not stored.
    fn record(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores part `index` of the image of the checkpoint after entry `seq` (see `codec`), without
    /// waiting for the disk: the seal that follows the last part is durable, and so makes the parts.
    /// Part 0 starts the image over: parts stored before for `seq` are removed.
    fn put_checkpoint_part(&self, seq: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError>;

    /// Seals the checkpoint after entry `seq` whose parts are stored, durably; keeps the newest
    /// few. The parts of the checkpoints no longer kept go now or in later sweeps.
    fn seal_checkpoint(&self, seq: u64, seal: &ImageSeal) -> Result<(), StoreError>;

    /// Gives up the image of the checkpoint after entry `seq`: it will not be sealed, and its
    /// parts go now or in later sweeps.
    fn abandon_checkpoint(&self, _seq: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Removes up to `parts_max` parts of checkpoints dropped or abandoned; whether any remain.
    fn sweep_checkpoint_parts(&self, _parts_max: usize) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Stores the checkpoint of the state after entry `seq` (its whole image), keeping the newest few.
    fn put_checkpoint(&self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        for (index, part) in image_parts(state).enumerate() {
            self.put_checkpoint_part(seq, index as u32, part)?;
        }
        self.seal_checkpoint(seq, &ImageSeal::of(state))
    }

    /// Every retained checkpoint, oldest first, each verified against its log record.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;

    /// The newest checkpoint, verified.
    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.checkpoints()?.pop())
    }

    /// Writes a consistent copy of the log and its checkpoints to a new database file `to` (the
    /// online backup); the copy's last seq. A log held in memory has no file to copy.
    fn backup_to(&self, to: &std::path::Path) -> Result<u64, StoreError> {
        let reason = format!("{}: this log is held in memory and has no file to copy", to.display());
        Err(StoreError::Format { reason })
    }

    /// Calls `f` with each raw record from `from_seq` to `to_seq` (inclusive; `None` for the end).
    fn each_record(&self, from_seq: u64, to_seq: Option<u64>, f: &mut RecordVisitor<'_>) -> Result<(), StoreError>;

    /// Walks the chain from `from_seq` (whose predecessor's hash is `expected_prev`) to the end,
    /// handing each verified entry to `f`; the first bad record is the error.
    fn walk_chain(
        &self,
        from_seq: u64,
        expected_prev: Hash,
        f: &mut dyn FnMut(Entry),
    ) -> Result<VerifyReport, StoreError> {
        assert!(from_seq >= 1, "walk_chain: seqs start at 1");
        let mut report = VerifyReport { checked: 0, last_seq: from_seq - 1, last_hash: expected_prev };
        self.each_record(from_seq, None, &mut |seq, bytes| {
            let expected_seq = report.last_seq + 1;
            if seq != expected_seq {
                return Err(StoreError::corrupt(expected_seq, format!("entry missing; the next stored is {seq}")));
            }
            let header = check_record(seq, bytes)?;
            if header.prev_hash != report.last_hash {
                let reason = format!("prev_hash does not match the hash of entry {}", report.last_seq);
                return Err(StoreError::corrupt(seq, reason));
            }
            f(decode_body(seq, bytes)?);
            report = VerifyReport { checked: report.checked + 1, last_seq: seq, last_hash: header.hash };
            Ok(())
        })?;
        Ok(report)
    }
}

impl dyn Log {
    /// [`Log::walk_chain`] with a closure: `log.verify_chain(1, GENESIS_HASH, |entry| …)`.
    pub fn verify_chain(
        &self,
        from_seq: u64,
        expected_prev: Hash,
        mut f: impl FnMut(Entry),
    ) -> Result<VerifyReport, StoreError> {
        self.walk_chain(from_seq, expected_prev, &mut f)
    }

    /// Every entry from `from_seq` to the end, verified.
    pub fn entries(&self, from_seq: u64) -> Result<Vec<Entry>, StoreError> {
        let prev = match from_seq {
            1 => GENESIS_HASH,
            seq => match self.record(seq - 1)? {
                Some(bytes) => record_header(seq - 1, &bytes)?.hash,
                None => return Ok(Vec::new()),
            },
        };
        let mut out = Vec::new();
        self.walk_chain(from_seq, prev, &mut |e| out.push(e))?;
        Ok(out)
    }
}

/// A log in memory: what the ledger sees of redb, without a file. Shared (`Arc`) so that a test
/// can drop a ledger and open another on the same log, as a restart does.
#[derive(Debug, Default)]
pub struct MemoryLog {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    records: BTreeMap<u64, Vec<u8>>,
    /// seq → checkpoint seal, and (seq, index) → image part, as the redb store keeps them.
    checkpoints: BTreeMap<u64, Vec<u8>>,
    parts: BTreeMap<(u64, u32), Vec<u8>>,
}

impl MemoryLog {
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().expect("memory log lock")
    }
}

impl MemoryInner {
    fn last(&self) -> Result<Option<(u64, Hash)>, StoreError> {
        match self.records.last_key_value() {
            Some((seq, bytes)) => Ok(Some((*seq, record_header(*seq, bytes)?.hash))),
            None => Ok(None),
        }
    }

    /// Appends without the atomicity check of a whole batch (the faulty log tears batches).
    fn push(&mut self, seq: u64, record: &[u8]) {
        let (prev_seq, prev_hash) = self.last().expect("stored records are well framed").unwrap_or((0, GENESIS_HASH));
        assert_eq!(seq, prev_seq + 1, "append: seq {seq} does not follow the stored {prev_seq}");
        let header = record_header(seq, record).unwrap_or_else(|e| panic!("append: record {seq} is malformed: {e}"));
        assert_eq!(header.prev_hash, prev_hash, "append: record {seq} does not link to {prev_seq}");
        self.records.insert(seq, record.to_vec());
    }

    fn checkpoint(&self, seq: u64, blob: &[u8]) -> Result<Checkpoint, StoreError> {
        let (entry_hash, state) = decode_checkpoint(seq, blob, |visit| {
            self.parts.range((seq, 0)..=(seq, u32::MAX)).try_for_each(|((_, index), bytes)| visit(*index, bytes))
        })?;
        let Some(record) = self.records.get(&seq) else {
            return Err(StoreError::corrupt(seq, format!("checkpoint at seq {seq}: the log has no entry {seq}")));
        };
        if record_header(seq, record)?.hash != entry_hash {
            return Err(StoreError::corrupt(
                seq,
                format!("checkpoint at seq {seq}: entry hash differs from log entry {seq}"),
            ));
        }
        Ok(Checkpoint { seq, entry_hash, state })
    }
}

impl Log for MemoryLog {
    fn append_batch(&self, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for (seq, record) in records {
            inner.push(*seq, record);
        }
        Ok(())
    }

    fn last(&self) -> Result<Option<(u64, Hash)>, StoreError> {
        self.lock().last()
    }

    fn record(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().records.get(&seq).cloned())
    }

    fn put_checkpoint_part(&self, seq: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if index == 0 {
            inner.parts.retain(|(stored, _), _| *stored != seq);
        }
        inner.parts.insert((seq, index), bytes.to_vec());
        Ok(())
    }

    fn seal_checkpoint(&self, seq: u64, seal: &ImageSeal) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let entry_hash = match inner.records.get(&seq) {
            Some(bytes) => record_header(seq, bytes)?.hash,
            None => panic!("seal_checkpoint: the log has no entry {seq}"),
        };
        if let Some((&newest, _)) = inner.checkpoints.last_key_value() {
            assert!(seq >= newest, "seal_checkpoint: seq {seq} is older than the stored checkpoint {newest}");
        }
        let blob = encode_checkpoint(&entry_hash, seal)?;
        inner.checkpoints.insert(seq, blob);
        while inner.checkpoints.len() > CHECKPOINTS_RETAINED_COUNT {
            inner.checkpoints.pop_first();
        }
        let MemoryInner { checkpoints, parts, .. } = &mut *inner;
        parts.retain(|(seq, _), _| checkpoints.contains_key(seq));
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let inner = self.lock();
        inner.checkpoints.iter().map(|(seq, blob)| inner.checkpoint(*seq, blob)).collect()
    }

    fn each_record(&self, from_seq: u64, to_seq: Option<u64>, f: &mut RecordVisitor<'_>) -> Result<(), StoreError> {
        // A snapshot, as a redb read transaction would see: appends after this call are not seen.
        let records: Vec<(u64, Vec<u8>)> = self
            .lock()
            .records
            .range(from_seq..=to_seq.unwrap_or(u64::MAX))
            .map(|(seq, bytes)| (*seq, bytes.clone()))
            .collect();
        records.iter().try_for_each(|(seq, bytes)| f(*seq, bytes))
    }
}

/// What a [`FaultyLog`] does to an append, drawn from its seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The batch is written.
    None,
    /// Nothing is written and the append fails (a failed fsync).
    Fail,
    /// Only a prefix of the batch is written, then the append fails (a torn write on a store
    /// without atomic batches: the records that reached the disk are whole and chained).
    Torn,
    /// The batch is written after a pause (a slow disk).
    Delay,
}

/// A [`MemoryLog`] whose appends fail, tear or stall on a schedule drawn from a seed: the same
/// seed gives the same sequence of faults.
#[derive(Debug)]
pub struct FaultyLog {
    log: Arc<MemoryLog>,
    seed: u64,
    appends: AtomicU64,
    /// Out of 1000 appends, how many fail, tear and stall.
    per_mille: (u64, u64, u64),
    /// Set by [`FaultyLog::sever`]: the process "crashed", nothing it does reaches the log. Writes
    /// hold the read side while they run, so a sever waits for the one in progress, as a crash
    /// ends it: nothing lands after the restart begins.
    severed: std::sync::RwLock<bool>,
}

impl FaultyLog {
    /// Faults on `log` drawn from `seed`: per 1000 appends, about `fail` fail, `torn` tear and
    /// `delay` stall.
    pub fn new(log: Arc<MemoryLog>, seed: u64, fail: u64, torn: u64, delay: u64) -> FaultyLog {
        FaultyLog {
            log,
            seed,
            appends: AtomicU64::new(0),
            per_mille: (fail, torn, delay),
            severed: std::sync::RwLock::new(false),
        }
    }

    /// Cuts this handle off the log, as a crash cuts a process off its disk: every later append
    /// and checkpoint fails. A restart opens a new handle on the same log.
    pub fn sever(&self) {
        *self.severed.write().expect("sever lock") = true;
    }

    /// The fault of the `n`th append.
    pub fn fault(&self, n: u64) -> Fault {
        let draw = splitmix64(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 1000;
        let (fail, torn, delay) = self.per_mille;
        if draw < fail {
            Fault::Fail
        } else if draw < fail + torn {
            Fault::Torn
        } else if draw < fail + torn + delay {
            Fault::Delay
        } else {
            Fault::None
        }
    }

    /// Holds off a sever while a write runs; fails once severed.
    fn gate(&self) -> Result<std::sync::RwLockReadGuard<'_, bool>, StoreError> {
        let severed = self.severed.read().expect("sever lock");
        if *severed {
            return Err(StoreError::Io {
                path: "faulty-log".into(),
                source: std::io::Error::other("severed by a crash"),
            });
        }
        Ok(severed)
    }
}

/// SplitMix64: a small, well-mixed, reproducible generator step.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Log for FaultyLog {
    fn append_batch(&self, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let _gate = self.gate()?;
        let n = self.appends.fetch_add(1, Ordering::Relaxed);
        let injected = |what: &str| StoreError::Io {
            path: "faulty-log".into(),
            source: std::io::Error::other(format!("injected fault: {what} (append {n}, seed {})", self.seed)),
        };
        match self.fault(n) {
            Fault::None => self.log.append_batch(records),
            Fault::Fail => Err(injected("failed fsync")),
            Fault::Torn => {
                let kept = (splitmix64(self.seed ^ n) as usize) % records.len().max(1);
                self.log.append_batch(&records[..kept])?;
                Err(injected("torn write"))
            }
            Fault::Delay => {
                // Real time: the writer thread is not async, and a stall is what is being simulated.
                std::thread::sleep(Duration::from_millis(2));
                self.log.append_batch(records)
            }
        }
    }

    fn last(&self) -> Result<Option<(u64, Hash)>, StoreError> {
        self.log.last()
    }

    fn record(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.log.record(seq)
    }

    fn put_checkpoint_part(&self, seq: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        let _gate = self.gate()?;
        self.log.put_checkpoint_part(seq, index, bytes)
    }

    fn seal_checkpoint(&self, seq: u64, seal: &ImageSeal) -> Result<(), StoreError> {
        let _gate = self.gate()?;
        self.log.seal_checkpoint(seq, seal)
    }

    fn abandon_checkpoint(&self, seq: u64) -> Result<(), StoreError> {
        let _gate = self.gate()?;
        self.log.abandon_checkpoint(seq)
    }

    fn sweep_checkpoint_parts(&self, parts_max: usize) -> Result<bool, StoreError> {
        let _gate = self.gate()?;
        self.log.sweep_checkpoint_parts(parts_max)
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.log.checkpoints()
    }

    fn each_record(&self, from_seq: u64, to_seq: Option<u64>, f: &mut RecordVisitor<'_>) -> Result<(), StoreError> {
        self.log.each_record(from_seq, to_seq, f)
    }
}

/// A shared log is a log (so `&Arc<dyn Log>` passes where `&dyn Log` is wanted).
impl<T: Log + ?Sized> Log for Arc<T> {
    fn append_batch(&self, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        (**self).append_batch(records)
    }

    fn last(&self) -> Result<Option<(u64, Hash)>, StoreError> {
        (**self).last()
    }

    fn record(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).record(seq)
    }

    fn put_checkpoint_part(&self, seq: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        (**self).put_checkpoint_part(seq, index, bytes)
    }

    fn seal_checkpoint(&self, seq: u64, seal: &ImageSeal) -> Result<(), StoreError> {
        (**self).seal_checkpoint(seq, seal)
    }

    fn abandon_checkpoint(&self, seq: u64) -> Result<(), StoreError> {
        (**self).abandon_checkpoint(seq)
    }

    fn sweep_checkpoint_parts(&self, parts_max: usize) -> Result<bool, StoreError> {
        (**self).sweep_checkpoint_parts(parts_max)
    }

    fn put_checkpoint(&self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        (**self).put_checkpoint(seq, state)
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        (**self).checkpoints()
    }

    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        (**self).latest_checkpoint()
    }

    fn each_record(&self, from_seq: u64, to_seq: Option<u64>, f: &mut RecordVisitor<'_>) -> Result<(), StoreError> {
        (**self).each_record(from_seq, to_seq, f)
    }

    fn walk_chain(
        &self,
        from_seq: u64,
        expected_prev: Hash,
        f: &mut dyn FnMut(Entry),
    ) -> Result<VerifyReport, StoreError> {
        (**self).walk_chain(from_seq, expected_prev, f)
    }
}
