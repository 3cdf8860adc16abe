//! Damage to a data dir's redb file, made the way a disk or an attacker would: straight through
//! redb, past every check the store makes (the store itself has no back door for it). The store
//! must be closed (redb locks the file). Each test binary uses its own subset.
#![allow(dead_code)]

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};
use xenledger::store::DATABASE_FILE_NAME;

/// The store's tables, as `src/store/redb_log.rs` names them: seq → record or checkpoint bytes.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");

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

/// Inverts byte `byte_index` of the checkpoint at `seq`.
pub fn corrupt_checkpoint(dir: impl AsRef<Path>, seq: u64, byte_index: usize) {
    flip(dir, CHECKPOINTS, seq, byte_index);
}

/// Deletes log record `seq`, leaving a gap.
pub fn delete_record(dir: impl AsRef<Path>, seq: u64) {
    let db = database(dir);
    let txn = db.begin_write().unwrap();
    assert!(txn.open_table(LOG).unwrap().remove(seq).unwrap().is_some(), "no record {seq}");
    txn.commit().unwrap();
}
