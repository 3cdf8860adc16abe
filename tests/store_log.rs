//! The log store against a real redb file: records round-trip, the chain check names the first bad
//! seq (a flipped byte, a missing record, a wrong link), the schema hash is pinned, checkpoints are
//! framed and verified, and everything survives a reopen.

#[path = "support/tamper.rs"]
mod tamper;

use std::ops::RangeInclusive;
use std::path::Path;

use xenledger::entry::{Actor, Change, Entry};
use xenledger::store::{
    database_path, decode_record, encode_entry, image_parts, Hash, ImageSeal, Store, StoreError, VerifyReport,
    CHECKPOINTS_RETAINED_COUNT, CHECKPOINT_PART_SIZE_BYTES, GENESIS_HASH, RECORD_HEADER_SIZE_BYTES,
};
use xenledger::value::Value;

const SCHEMA: &str = "schema-hash-1";

fn entry(seq: u64) -> Entry {
    Entry {
        seq,
        timestamp_us: 1_700_000_000_000_000 + seq as i64,
        actor: Actor::default(),
        method: "VM.set_name_label".into(),
        params: vec![],
        changes: vec![Change::Set {
            class: "VM".into(),
            reference: "OpaqueRef:0b1c".into(),
            field: "name_label".into(),
            value: Value::str(format!("vm {seq}")),
        }],
    }
}

/// Appends entries `seqs` as one batch, chained onto the stored tail. Returns their hashes.
fn append(store: &Store, seqs: RangeInclusive<u64>) -> Vec<Hash> {
    let mut prev = store.last().unwrap().map_or(GENESIS_HASH, |(_, hash)| hash);
    let mut batch = Vec::new();
    let mut hashes = Vec::new();
    for seq in seqs {
        let (record, hash) = encode_entry(&prev, &entry(seq)).unwrap();
        batch.push((seq, record));
        hashes.push(hash);
        prev = hash;
    }
    store.append_batch(&batch).unwrap();
    hashes
}

fn open(dir: &Path) -> Store {
    Store::open(dir, SCHEMA).unwrap()
}

fn verify_all(store: &Store) -> Result<(VerifyReport, Vec<u64>), StoreError> {
    let mut seqs = Vec::new();
    let report = store.verify_chain(1, GENESIS_HASH, |entry| seqs.push(entry.seq))?;
    Ok((report, seqs))
}

fn corrupt_seq(result: Result<impl std::fmt::Debug, StoreError>) -> (u64, String) {
    match result {
        Err(StoreError::Corrupt { seq, reason }) => (seq, reason),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("data"));
    assert!(database_path(&dir.path().join("data")).is_file());
    assert_eq!(store.path(), database_path(&dir.path().join("data")));
    assert_eq!(store.last().unwrap(), None);
    assert_eq!(store.latest_checkpoint().unwrap(), None);
    assert_eq!(store.checkpoints().unwrap(), vec![]);
    assert_eq!(store.read_range(1, None).unwrap().count(), 0);
    let (report, seqs) = verify_all(&store).unwrap();
    assert_eq!(report, VerifyReport { checked: 0, last_seq: 0, last_hash: GENESIS_HASH });
    assert!(seqs.is_empty());
    store.append_batch(&[]).unwrap();
}

#[test]
fn append_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut hashes = append(&store, 1..=4);
    hashes.extend(append(&store, 5..=10));
    assert_eq!(store.last().unwrap(), Some((10, hashes[9])));

    let all: Vec<(u64, Vec<u8>)> = store.read_range(1, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(all.len(), 10);
    for (index, (seq, bytes)) in all.iter().enumerate() {
        assert_eq!(*seq, index as u64 + 1);
        let record = decode_record(*seq, bytes).unwrap();
        assert_eq!(record.entry, entry(*seq));
        assert_eq!(record.hash, hashes[index]);
        assert_eq!(record.prev_hash, if index == 0 { GENESIS_HASH } else { hashes[index - 1] });
    }
    assert_eq!(store.record(3).unwrap().as_ref(), Some(&all[2].1));
    assert_eq!(store.record(11).unwrap(), None);

    let middle: Vec<u64> = store.read_range(3, Some(5)).unwrap().map(|item| item.unwrap().0).collect();
    assert_eq!(middle, vec![3, 4, 5]);
    assert_eq!(store.read_range(5, Some(4)).unwrap().count(), 0);
    assert_eq!(store.read_range(11, None).unwrap().count(), 0);

    let mut lent = Vec::new();
    store
        .for_each_record(8, None, |seq, bytes| {
            lent.push((seq, bytes.to_vec()));
            Ok::<(), StoreError>(())
        })
        .unwrap();
    assert_eq!(lent, all[7..].to_vec());
}

#[test]
fn read_range_sees_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append(&store, 1..=3);
    let before = store.read_range(1, None).unwrap();
    append(&store, 4..=6);
    assert_eq!(before.count(), 3);
    assert_eq!(store.read_range(1, None).unwrap().count(), 6);
}

#[test]
fn verify_chain_passes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hashes = append(&store, 1..=10);
    let (report, seqs) = verify_all(&store).unwrap();
    assert_eq!(report, VerifyReport { checked: 10, last_seq: 10, last_hash: hashes[9] });
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());

    // From the middle, as after a checkpoint at seq 5.
    let report = store.verify_chain(6, hashes[4], |_| {}).unwrap();
    assert_eq!(report, VerifyReport { checked: 5, last_seq: 10, last_hash: hashes[9] });
    // Past the end: nothing to check.
    let report = store.verify_chain(11, hashes[9], |_| {}).unwrap();
    assert_eq!(report, VerifyReport { checked: 0, last_seq: 10, last_hash: hashes[9] });
}

#[test]
fn flipped_body_byte_names_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append(&store, 1..=10);
    drop(store);
    tamper::corrupt_record(dir.path(), 4, RECORD_HEADER_SIZE_BYTES + 3);
    let store = open(dir.path());
    let mut seen = Vec::new();
    let (seq, reason) = corrupt_seq(store.verify_chain(1, GENESIS_HASH, |entry| seen.push(entry.seq)));
    assert_eq!(seq, 4, "{reason}");
    assert_eq!(reason, "record hash mismatch");
    assert_eq!(seen, vec![1, 2, 3]);
}

#[test]
fn flipped_header_bytes_name_the_seq() {
    // The version byte, a byte of prev_hash, a byte of hash: each in a different record.
    for (seq, byte_index) in [(2, 0), (5, 1), (9, 40)] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        append(&store, 1..=10);
        drop(store);
        tamper::corrupt_record(dir.path(), seq, byte_index);
        let store = open(dir.path());
        let (bad_seq, reason) = corrupt_seq(verify_all(&store));
        assert_eq!(bad_seq, seq, "byte {byte_index}: {reason}");
    }
}

#[test]
fn missing_record_names_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append(&store, 1..=10);
    drop(store);
    tamper::delete_record(dir.path(), 5);
    let store = open(dir.path());
    let (seq, reason) = corrupt_seq(verify_all(&store));
    assert_eq!(seq, 5);
    assert!(reason.contains("missing; the next stored is 6"), "{reason}");
}

#[test]
fn wrong_link_names_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hashes = append(&store, 1..=10);
    let (seq, reason) = corrupt_seq(store.verify_chain(6, hashes[3], |_| {}));
    assert_eq!(seq, 6);
    assert!(reason.contains("prev_hash"), "{reason}");
}

#[test]
#[should_panic(expected = "does not follow")]
fn append_asserts_contiguous_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append(&store, 1..=2);
    let (record, _) = encode_entry(&GENESIS_HASH, &entry(4)).unwrap();
    let _ = store.append_batch(&[(4, record)]);
}

#[test]
#[should_panic(expected = "does not link")]
fn append_asserts_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append(&store, 1..=2);
    let (record, _) = encode_entry(&GENESIS_HASH, &entry(3)).unwrap();
    let _ = store.append_batch(&[(3, record)]);
}

#[test]
fn schema_mismatch_detected() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    match Store::open(dir.path(), "schema-hash-2") {
        Err(StoreError::SchemaMismatch { stored, current }) => {
            assert_eq!((stored.as_str(), current.as_str()), (SCHEMA, "schema-hash-2"));
        }
        other => panic!("expected SchemaMismatch, got {other:?}"),
    }
    // The refused open changed nothing.
    assert_eq!(open(dir.path()).schema_hash(), SCHEMA);
}

#[test]
fn checkpoint_round_trip_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hashes = append(&store, 1..=10);
    store.put_checkpoint(4, b"state at 4").unwrap();
    store.put_checkpoint(7, b"state at 7").unwrap();
    store.put_checkpoint(10, b"state at 10").unwrap();

    let latest = store.latest_checkpoint().unwrap().unwrap();
    assert_eq!((latest.seq, latest.entry_hash, latest.state.as_slice()), (10, hashes[9], &b"state at 10"[..]));
    let retained = store.checkpoints().unwrap();
    assert_eq!(retained.len(), CHECKPOINTS_RETAINED_COUNT);
    assert_eq!(retained.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![7, 10]);
    assert_eq!(retained[0].entry_hash, hashes[6]);
    assert_eq!(retained[0].state, b"state at 7");

    // Re-checkpointing the same seq replaces it.
    store.put_checkpoint(10, b"state at 10, again").unwrap();
    assert_eq!(store.latest_checkpoint().unwrap().unwrap().state, b"state at 10, again");
    assert_eq!(store.checkpoints().unwrap().len(), 2);
}

/// A checkpoint stored a part at a time (as the committer streams a large image) is sealed
/// durably, survives a reopen, and leaves no part behind: the parts of a checkpoint no longer
/// kept, or of one a crash cut short of its seal (found at open), go in later sweeps.
#[test]
fn checkpoint_parts_are_sealed_and_swept() {
    let dir = tempfile::tempdir().unwrap();
    let image: Vec<u8> = (0..CHECKPOINT_PART_SIZE_BYTES * 2 + 100).map(|i| (i * 7) as u8).collect();
    {
        let store = open(dir.path());
        append(&store, 1..=10);
        // An image abandoned after one part, then one stored whole in parts and sealed.
        store.put_checkpoint_part(3, 0, &image[..CHECKPOINT_PART_SIZE_BYTES]).unwrap();
        for (index, part) in image_parts(&image).enumerate() {
            store.put_checkpoint_part(6, index as u32, part).unwrap();
        }
        // Unsealed, a checkpoint is not there.
        assert_eq!(store.latest_checkpoint().unwrap(), None);
        store.seal_checkpoint(6, &ImageSeal::of(&image)).unwrap();
        assert_eq!(store.latest_checkpoint().unwrap().unwrap().state, image);
    }
    assert_eq!(tamper::checkpoint_part_keys(dir.path()), vec![(3, 0), (6, 0), (6, 1), (6, 2)]);
    let store = open(dir.path());
    let latest = store.latest_checkpoint().unwrap().unwrap();
    assert_eq!((latest.seq, latest.state == image), (6, true));
    let sweep = |store: &Store| while store.sweep_checkpoint_parts(1).unwrap() {};
    sweep(&store);
    store.put_checkpoint(8, b"state at 8").unwrap();
    drop(store);
    assert_eq!(tamper::checkpoint_part_keys(dir.path()), vec![(6, 0), (6, 1), (6, 2), (8, 0)]);
    let store = open(dir.path());
    store.put_checkpoint(10, b"state at 10").unwrap();
    // Dropped by the seal of 10, the parts of 6 are swept a part at a time.
    assert!(store.sweep_checkpoint_parts(1).unwrap());
    sweep(&store);
    assert!(!store.sweep_checkpoint_parts(1).unwrap());
    assert_eq!(store.latest_checkpoint().unwrap().unwrap().state, b"state at 10");
    drop(store);
    assert_eq!(tamper::checkpoint_part_keys(dir.path()), vec![(8, 0), (10, 0)]);
}

/// A seal whose parts are not all there names the checkpoint and what is missing.
#[test]
fn a_missing_checkpoint_part_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let image = vec![5u8; CHECKPOINT_PART_SIZE_BYTES + 1];
    let store = open(dir.path());
    append(&store, 1..=4);
    store.put_checkpoint_part(4, 0, &image[..CHECKPOINT_PART_SIZE_BYTES]).unwrap();
    store.seal_checkpoint(4, &ImageSeal::of(&image)).unwrap();
    let (seq, reason) = corrupt_seq(store.latest_checkpoint());
    assert_eq!((seq, reason.as_str()), (4, "checkpoint at seq 4: 1 of its 2 parts are stored"));
}

#[test]
fn corrupted_checkpoint_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append(&store, 1..=10);
    store.put_checkpoint(10, b"state at 10").unwrap();
    let state_byte = xenledger::store::CHECKPOINT_HEADER_SIZE_BYTES + 2;
    drop(store);
    tamper::corrupt_checkpoint(dir.path(), 10, state_byte);
    let store = open(dir.path());
    let (seq, reason) = corrupt_seq(store.latest_checkpoint());
    assert_eq!((seq, reason.as_str()), (10, "checkpoint at seq 10: state hash mismatch"));
    let (seq, _) = corrupt_seq(store.checkpoints());
    assert_eq!(seq, 10);

    // A checkpoint whose entry hash no longer matches the log record it names.
    store.put_checkpoint(10, b"state at 10").unwrap();
    drop(store);
    tamper::corrupt_checkpoint(dir.path(), 10, 5);
    let store = open(dir.path());
    let (seq, reason) = corrupt_seq(store.latest_checkpoint());
    assert_eq!(seq, 10);
    assert!(reason.starts_with("checkpoint at seq 10: entry hash differs"), "{reason}");
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let hashes = {
        let store = open(dir.path());
        let hashes = append(&store, 1..=6);
        store.put_checkpoint(6, b"state at 6").unwrap();
        hashes
    };
    let store = open(dir.path());
    assert_eq!(store.last().unwrap(), Some((6, hashes[5])));
    let (report, _) = verify_all(&store).unwrap();
    assert_eq!(report.last_hash, hashes[5]);
    let checkpoint = store.latest_checkpoint().unwrap().unwrap();
    assert_eq!((checkpoint.seq, checkpoint.state.as_slice()), (6, &b"state at 6"[..]));
    // And the chain continues across the reopen.
    append(&store, 7..=8);
    assert_eq!(verify_all(&store).unwrap().0.checked, 8);
}

#[test]
fn truncate_after_cuts_log_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hashes = append(&store, 1..=10);
    store.put_checkpoint(5, b"state at 5").unwrap();
    store.put_checkpoint(8, b"state at 8").unwrap();
    store.truncate_after(6).unwrap();
    assert_eq!(store.last().unwrap(), Some((6, hashes[5])));
    assert_eq!(store.checkpoints().unwrap().iter().map(|c| c.seq).collect::<Vec<_>>(), vec![5]);
    append(&store, 7..=9);
    assert_eq!(verify_all(&store).unwrap().0.checked, 9);
}

/// The online backup: a copy of one read snapshot, readable as a store of its own, with the same
/// records and checkpoints, while the original goes on appending (src/node/backup.rs).
#[test]
fn backup_copies_one_snapshot_and_the_copy_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append(&store, 1..=500);
    store.put_checkpoint(300, b"state at 300").unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    assert_eq!(store.backup_to(&database_path(copy_dir.path())).unwrap(), 500);
    append(&store, 501..=510);
    let copy = open(copy_dir.path());
    let (report, seqs) = verify_all(&copy).unwrap();
    assert_eq!((report.last_seq, seqs.len()), (500, 500));
    assert_eq!(copy.checkpoints().unwrap().iter().map(|c| c.seq).collect::<Vec<_>>(), vec![300]);
    assert_eq!(copy.latest_checkpoint().unwrap().unwrap().state, b"state at 300");
    for seq in [1, 250, 500] {
        assert_eq!(copy.record(seq).unwrap(), store.record(seq).unwrap());
    }
    assert_eq!(copy.record(501).unwrap(), None);
    // The copy carries the schema pin: another build's hash is refused.
    drop(copy);
    assert!(matches!(Store::open(copy_dir.path(), "another-schema"), Err(StoreError::SchemaMismatch { .. })));
}
