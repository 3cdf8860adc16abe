//! Corruption on disk never turns into a silently wrong state.
//!
//! The fixture is a data dir as a crash leaves it: entries 1–6 written through a `Ledger` with
//! checkpoints after 3 and 6 (the second from the clean close), then entries 7–12 appended the way
//! the writer appends them (engine `execute`, `encode_entry`, `append_batch`) with no checkpoint
//! after them. Opening it intact recovers checkpoint 6 plus a six-entry tail. Each test then damages
//! one copy of it and asserts the designed reaction (src/store/mod.rs, "Chain"; src/ledger.rs
//! `recover`):
//!
//! * a flipped byte anywhere in a tail entry (version, prev_hash, hash, body): `Ledger::open` fails
//!   and the error names that entry's seq; `verify_chain` from 1 fails at the same seq after handing
//!   over exactly the entries before it; a missing tail entry likewise;
//! * a flipped byte in an entry covered by the checkpoint: open trusts the verified checkpoint and
//!   recovers exactly the right state (startup checks only the tail; the full chain check is the
//!   replay tool's job), and `verify_chain` from 1 names the entry; if the damage breaks the
//!   checkpoint's link to its entry (that entry's stored hash or version byte), open fails;
//! * a flipped byte in the newest checkpoint: open fails naming the checkpoint (there is no silent
//!   fallback to the older one); damage to the older checkpoint does not affect open, and
//!   `Store::checkpoints` reports it;
//! * a well-framed checkpoint whose image is garbage, or holds the state of another seq: open fails
//!   naming it.

mod support;

#[path = "support/tamper.rs"]
mod tamper;

use std::path::{Path, PathBuf};

use support::*;
use tempfile::TempDir;
use xenledger::engine::{self, snapshot, Ctx, State};
use xenledger::entry::{Actor, Entry};
use xenledger::ledger::{Ledger, OpenReport};
use xenledger::schema::schema;
use xenledger::store::{database_path, encode_entry, Store, StoreError, GENESIS_HASH, RECORD_HEADER_SIZE_BYTES};
use xenledger::value::Value;
use xenledger::vault::key_path;

/// Entries covered by the newest checkpoint.
const CHECKPOINT_SEQ: u64 = 6;
/// The older retained checkpoint.
const OLDER_CHECKPOINT_SEQ: u64 = 3;
/// The last entry; `CHECKPOINT_SEQ + 1 ..= LAST_SEQ` is the tail.
const LAST_SEQ: u64 = 12;

/// The intact fixture and the state it must recover to.
struct Fixture {
    _root: TempDir,
    pristine: PathBuf,
    expected: State,
    /// The live state at each checkpoint.
    at_checkpoint: State,
}

/// Runs `method` against `state` as the writer would and appends its entry to `store`.
fn append_call(store: &Store, state: &mut State, method: &str, args: Vec<Value>) -> Value {
    let (class, msg) = schema().lookup(method).expect("known method");
    let args = engine::prepare_args(method, msg, args).expect("valid arguments");
    let seq = state.seq + 1;
    let ctx = Ctx { now_us: 1_700_000_000_000_000 + seq as i64, actor: Actor::default(), seed: [seq as u8; 32] };
    let (value, new_state, changes) = engine::execute(state, &ctx, class, msg, &args).expect("call succeeds");
    assert_eq!(new_state.seq, seq);
    let entry = Entry {
        seq,
        timestamp_us: ctx.now_us,
        actor: Actor::default(),
        method: msg.wire_name.clone(),
        params: args,
        changes,
    };
    let prev = store.last().expect("store readable").map_or(GENESIS_HASH, |(_, hash)| hash);
    let (record, _) = encode_entry(&prev, &entry).expect("entry encodes");
    store.append_batch(&[(seq, record)]).expect("append");
    *state = new_state;
    value
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().expect("temp dir");
    let pristine = root.path().join("pristine");
    let ledger = Ledger::open(&pristine).expect("open");
    let net = ok_ref(&ledger, "network.create", vec![network_record("n0", &[("a", "1")])]);
    ok(&ledger, "network.set_name_label", vec![s(&net), s("n1")]);
    let vm = ok_ref(&ledger, "VM.create", vec![vm_record("vm0", &[])]);
    assert_eq!(ledger.checkpoint(), Ok(OLDER_CHECKPOINT_SEQ));
    ok(&ledger, "VIF.create", vec![vif_record(&vm, &net, "0")]);
    ok(&ledger, "network.add_to_other_config", vec![s(&net), s("b"), s("2")]);
    ok(&ledger, "VM.add_tags", vec![s(&vm), s("t")]);
    let at_checkpoint = (*ledger.snapshot()).clone();
    assert_eq!(at_checkpoint.seq, CHECKPOINT_SEQ);
    ledger.close();

    let store = Store::open(&pristine, &schema().hash).expect("store open");
    let mut state = at_checkpoint.clone();
    append_call(&store, &mut state, "network.set_name_label", vec![s(&net), s("n2")]);
    let net2 = append_call(&store, &mut state, "network.create", vec![network_record("m", &[])]);
    let vif = append_call(&store, &mut state, "VIF.create", vec![vif_record(&vm, net2.as_str().unwrap(), "1")]);
    append_call(&store, &mut state, "VIF.destroy", vec![vif]);
    append_call(&store, &mut state, "network.remove_from_other_config", vec![s(&net), s("a")]);
    append_call(&store, &mut state, "secret.create", vec![secret_record("x")]);
    assert_eq!(state.seq, LAST_SEQ);
    let seqs: Vec<u64> = store.checkpoints().expect("checkpoints verify").iter().map(|c| c.seq).collect();
    assert_eq!(seqs, vec![OLDER_CHECKPOINT_SEQ, CHECKPOINT_SEQ]);
    drop(store);
    Fixture { _root: root, pristine, expected: state, at_checkpoint }
}

impl Fixture {
    /// A fresh copy of the intact dir.
    fn copy(&self, name: &str) -> PathBuf {
        let dir = self._root.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::copy(database_path(&self.pristine), database_path(&dir)).expect("copy the database");
        // With its key file: a data dir without one is upgraded on open (ledger::keys).
        std::fs::copy(key_path(&self.pristine), key_path(&dir)).expect("copy the key file");
        dir
    }
}

/// Opens a ledger that must fail and returns the error text.
fn open_err(dir: &Path) -> String {
    match Ledger::open(dir) {
        Ok(ledger) => panic!("open succeeded at seq {} on a damaged dir", ledger.snapshot().seq),
        Err(e) => e.to_string(),
    }
}

/// Opens a ledger that must succeed and returns its state and report (dropping it writes a
/// checkpoint, so callers use a copy).
fn open_ok(dir: &Path) -> (State, OpenReport) {
    let ledger = Ledger::open(dir).unwrap_or_else(|e| panic!("open failed: {e}"));
    let state = (*ledger.snapshot()).clone();
    let report = ledger.open_report().clone();
    ledger.close();
    (state, report)
}

/// `verify_chain` from seq 1 must fail at `seq`, after handing over exactly the entries before it.
fn assert_chain_breaks_at(dir: &Path, seq: u64) {
    let store = Store::open(dir, &schema().hash).expect("store open");
    let mut handed = Vec::new();
    match store.verify_chain(1, GENESIS_HASH, |e| handed.push(e.seq)) {
        Err(StoreError::Corrupt { seq: bad, reason }) => {
            assert_eq!(bad, seq, "verify_chain names the wrong entry: {reason}");
        }
        other => panic!("verify_chain: expected Corrupt at {seq}, got {other:?}"),
    }
    assert_eq!(handed, (1..seq).collect::<Vec<_>>(), "entries handed over before the bad one");
}

fn record_len(dir: &Path, seq: u64) -> usize {
    let store = Store::open(dir, &schema().hash).expect("store open");
    store.record(seq).expect("readable").expect("record exists").len()
}

/// Byte offsets to damage in a record of `len` bytes: the version byte, prev_hash, hash, and the
/// first, a middle and the last byte of the body.
fn offsets(len: usize) -> [(usize, &'static str); 6] {
    let body = RECORD_HEADER_SIZE_BYTES;
    [
        (0, "version"),
        (5, "prev_hash"),
        (40, "hash"),
        (body, "body start"),
        (body + (len - body) / 2, "body middle"),
        (len - 1, "body end"),
    ]
}

#[test]
fn intact_fixture_recovers_checkpoint_plus_tail() {
    let f = fixture();
    let dir = f.copy("intact");
    let (state, report) = open_ok(&dir);
    assert_eq!(state, f.expected);
    assert_eq!(
        (report.checkpoint_seq, report.tail_entries, report.last_seq),
        (CHECKPOINT_SEQ, LAST_SEQ - CHECKPOINT_SEQ, LAST_SEQ)
    );
    check_invariants(&state);
    let store = Store::open(&dir, &schema().hash).expect("store open");
    assert_eq!(fold_log(&store), f.expected);
    // The checkpoint images are the live states they were taken of.
    let newest = store.latest_checkpoint().expect("verifies").expect("exists");
    assert_eq!(snapshot::decode(&newest.state).expect("decodes"), f.expected, "the close after open checkpoints at 12");
    drop(store);
    let store = Store::open(&f.pristine, &schema().hash).expect("store open");
    let newest = store.latest_checkpoint().expect("verifies").expect("exists");
    assert_eq!(newest.seq, CHECKPOINT_SEQ);
    assert_eq!(snapshot::decode(&newest.state).expect("decodes"), f.at_checkpoint);
}

#[test]
fn damaged_tail_entry_fails_open_naming_its_seq() {
    let f = fixture();
    for seq in CHECKPOINT_SEQ + 1..=LAST_SEQ {
        for (offset, what) in offsets(record_len(&f.pristine, seq)) {
            let dir = f.copy(&format!("tail-{seq}-{offset}"));
            tamper::corrupt_record(&dir, seq, offset);
            let text = open_err(&dir);
            assert!(text.contains(&format!("at seq {seq}:")), "entry {seq}, {what} byte {offset}: open error {text:?}");
            assert_chain_breaks_at(&dir, seq);
        }
    }
}

#[test]
fn missing_tail_entry_fails_open_naming_its_seq() {
    let f = fixture();
    for seq in CHECKPOINT_SEQ + 1..LAST_SEQ {
        let dir = f.copy(&format!("gap-{seq}"));
        tamper::delete_record(&dir, seq);
        let text = open_err(&dir);
        assert!(text.contains(&format!("at seq {seq}: entry missing")), "gap at {seq}: open error {text:?}");
        assert_chain_breaks_at(&dir, seq);
    }
}

#[test]
fn damaged_entry_under_the_checkpoint_never_yields_a_wrong_state() {
    let f = fixture();
    for seq in 1..=CHECKPOINT_SEQ {
        for (offset, what) in offsets(record_len(&f.pristine, seq)) {
            let dir = f.copy(&format!("prefix-{seq}-{offset}"));
            tamper::corrupt_record(&dir, seq, offset);
            let ctx = format!("entry {seq}, {what} byte {offset}");
            assert_chain_breaks_at(&dir, seq);
            // The checkpoint is verified against the stored hash of its own entry, so damage there
            // (or a version byte that makes the entry unreadable) refuses the checkpoint.
            let breaks_checkpoint = seq == CHECKPOINT_SEQ && (what == "hash" || what == "version");
            if breaks_checkpoint {
                let text = open_err(&dir);
                assert!(text.contains(&format!("at seq {seq}:")), "{ctx}: open error {text:?}");
            } else {
                let (state, report) = open_ok(&dir);
                assert_eq!(state, f.expected, "{ctx}: open recovered a wrong state");
                assert_eq!(report.checkpoint_seq, CHECKPOINT_SEQ, "{ctx}");
            }
        }
    }
}

#[test]
fn damaged_newest_checkpoint_fails_open_naming_it() {
    let f = fixture();
    let blob_len = {
        let store = Store::open(&f.pristine, &schema().hash).unwrap();
        xenledger::store::CHECKPOINT_HEADER_SIZE_BYTES + store.latest_checkpoint().unwrap().unwrap().state.len()
    };
    for (offset, what) in [
        (0, "version"),
        (5, "entry hash"),
        (40, "state hash"),
        (70, "size"),
        (75, "part count"),
        (80, "state"),
        (blob_len - 1, "state end"),
    ] {
        let dir = f.copy(&format!("checkpoint-{offset}"));
        tamper::corrupt_checkpoint(&dir, CHECKPOINT_SEQ, offset);
        let text = open_err(&dir);
        assert!(
            text.contains(&format!("checkpoint at seq {CHECKPOINT_SEQ}")),
            "{what} byte {offset}: open error {text:?}"
        );
        // The log itself is intact.
        let store = Store::open(&dir, &schema().hash).unwrap();
        assert_eq!(fold_log(&store), f.expected);
    }
}

#[test]
fn damaged_older_checkpoint_does_not_affect_open_but_is_reported() {
    let f = fixture();
    let dir = f.copy("older-checkpoint");
    tamper::corrupt_checkpoint(&dir, OLDER_CHECKPOINT_SEQ, 80);
    {
        let store = Store::open(&dir, &schema().hash).unwrap();
        match store.checkpoints() {
            Err(StoreError::Corrupt { seq, reason }) => {
                assert_eq!(seq, OLDER_CHECKPOINT_SEQ, "{reason}");
                assert!(reason.starts_with(&format!("checkpoint at seq {OLDER_CHECKPOINT_SEQ}")), "{reason}");
            }
            other => panic!("checkpoints(): expected Corrupt at {OLDER_CHECKPOINT_SEQ}, got {other:?}"),
        }
    }
    let (state, report) = open_ok(&dir);
    assert_eq!(state, f.expected);
    assert_eq!(report.checkpoint_seq, CHECKPOINT_SEQ);
}

#[test]
fn forged_checkpoint_images_fail_open_naming_the_checkpoint() {
    let f = fixture();
    // Well framed (its own hashes are right) but not a state image.
    let dir = f.copy("garbage-image");
    Store::open(&dir, &schema().hash).unwrap().put_checkpoint(LAST_SEQ, b"garbage").unwrap();
    let text = open_err(&dir);
    assert!(text.contains(&format!("checkpoint at entry {LAST_SEQ}")), "open error {text:?}");
    // A real image, but of the state after another entry.
    let dir = f.copy("wrong-seq-image");
    Store::open(&dir, &schema().hash).unwrap().put_checkpoint(LAST_SEQ, &snapshot::encode(&f.at_checkpoint)).unwrap();
    let text = open_err(&dir);
    assert!(
        text.contains(&format!("checkpoint at entry {LAST_SEQ}: holds state at {CHECKPOINT_SEQ}")),
        "open error {text:?}"
    );
}
