//! Damage to a data dir's redb file, made the way a disk or an attacker would: straight through
//! redb, past every check the store makes (the store itself has no back door for it). The store
//! must be closed (redb locks the file). Each test binary uses its own subset.
#![allow(dead_code)]

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use xenledger::store::DATABASE_FILE_NAME;

/// The store's tables, as `src/store/redb_log.rs` names them: seq → record or checkpoint bytes.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
const CHECKPOINT_PARTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("checkpoint_parts");

fn database(dir: impl AsRef<Path>) -> Database {
    Database::open(dir.as_ref().join(DATABASE_FILE_NAME)).expect("the data dir's redb file (is the store closed?)")
}

fn flip(dir: impl AsRef<Path>, table: TableDefinition<u64, &[u8]>, seq: u64, byte_index: usize) {
    let db = database(dir);
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(table).unwrap();
        let mut bytes = t.get(seq).unwrap().unwrap_or_else(|| panic!("no value at seq {seq}")).value().to_vec();
        bytes[byte_index] ^= 0xff;
        t.insert(seq, bytes.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

/// Inverts byte `byte_index` of log record `seq`.
pub fn corrupt_record(dir: impl AsRef<Path>, seq: u64, byte_index: usize) {
    flip(dir, LOG, seq, byte_index);
}

/// Inverts byte `byte_index` of the checkpoint at `seq`, read as its seal followed by its image
/// parts (a byte past the seal lands in the part that holds it).
pub fn corrupt_checkpoint(dir: impl AsRef<Path>, seq: u64, byte_index: usize) {
    let Some(mut offset) = byte_index.checked_sub(xenledger::store::CHECKPOINT_HEADER_SIZE_BYTES) else {
        return flip(dir, CHECKPOINTS, seq, byte_index);
    };
    let db = database(dir);
    let txn = db.begin_write().unwrap();
    {
        let mut parts = txn.open_table(CHECKPOINT_PARTS).unwrap();
        let mut target = None;
        for item in parts.range((seq, 0)..=(seq, u32::MAX)).unwrap() {
            let (key, value) = item.unwrap();
            let mut bytes = value.value().to_vec();
            if offset < bytes.len() {
                bytes[offset] ^= 0xff;
                target = Some((key.value(), bytes));
                break;
            }
            offset -= bytes.len();
        }
        let (key, bytes) = target.unwrap_or_else(|| panic!("checkpoint {seq} has no byte {byte_index}"));
        parts.insert(key, bytes.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

/// Deletes log record `seq`, leaving a gap.
pub fn delete_record(dir: impl AsRef<Path>, seq: u64) {
    let db = database(dir);
    let txn = db.begin_write().unwrap();
    assert!(txn.open_table(LOG).unwrap().remove(seq).unwrap().is_some(), "no record {seq}");
    txn.commit().unwrap();
}

/// The keys `(seq, index)` of every stored checkpoint part.
pub fn checkpoint_part_keys(dir: impl AsRef<Path>) -> Vec<(u64, u32)> {
    let db = database(dir);
    let txn = db.begin_read().unwrap();
    let parts = txn.open_table(CHECKPOINT_PARTS).unwrap();
    parts.iter().unwrap().map(|item| item.unwrap().0.value()).collect()
}
