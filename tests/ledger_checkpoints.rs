//! When the writer takes a checkpoint on its own (issue "Performance", the log's size): after
//! [`CHECKPOINT_INTERVAL`] with entries since the last one, even when the entry and byte bounds
//! are far away, so a restart after a crash folds a bounded tail. The image is encoded off the
//! writer's path and stored by the committer on a later batch or on its idle wake-up.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use xenledger::clock::VirtualClock;
use xenledger::ledger::{Ledger, CHECKPOINT_INTERVAL};
use xenledger::store::{Log, MemoryLog};
use xenledger::vault::Vault;

fn latest(log: &MemoryLog) -> Option<u64> {
    log.latest_checkpoint().expect("checkpoints verify").map(|c| c.seq)
}

/// Waits (real time, bounded) for the newest checkpoint to reach `seq`.
fn wait_for_checkpoint(log: &MemoryLog, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while latest(log) != Some(seq) {
        assert!(Instant::now() < deadline, "no checkpoint at {seq}: newest is {:?}", latest(log));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_checkpoint_is_taken_when_its_interval_has_passed_with_entries_since() {
    let clock = Arc::new(VirtualClock::at_2026());
    let log = Arc::new(MemoryLog::new());
    let ledger = Ledger::open_on(log.clone(), Vault::generate(), clock.clone()).expect("open");
    let net = ok_ref(&ledger, "network.create", vec![network_record("n", &[])]);
    let first = ledger.snapshot().seq;
    // Well inside the interval: the committer's idle wake-ups come and go, and nothing is taken.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(latest(&log), None, "a checkpoint after one entry and no time");

    clock.advance(CHECKPOINT_INTERVAL + Duration::from_secs(1));
    ok(&ledger, "network.set_name_label", vec![s(&net), s("m")]);
    let second = ledger.snapshot().seq;
    assert!(second > first);
    // Stored with no further write: by the committer's idle wake-up.
    wait_for_checkpoint(&log, second);

    // The interval counts again from that checkpoint; an idle interval takes nothing.
    clock.advance(CHECKPOINT_INTERVAL + Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(latest(&log), Some(second), "a checkpoint with no entry since the last");

    // A restart from this log folds only the tail after the checkpoint.
    ok(&ledger, "network.set_name_label", vec![s(&net), s("o")]);
    let expected = (*ledger.snapshot()).clone();
    drop(ledger);
    let reopened = Ledger::open_on(log.clone(), Vault::generate(), clock).expect("reopen");
    assert_eq!(*reopened.snapshot(), expected);
}

/// A tail folded at open (entries after the newest checkpoint: a crash since the last clean stop)
/// is checkpointed at once, with no write needed, so crash after crash the tail does not grow.
#[test]
fn a_tail_folded_at_open_is_checkpointed_at_once() {
    let clock = Arc::new(VirtualClock::at_2026());
    let written = Arc::new(MemoryLog::new());
    let ledger = Ledger::open_on(written.clone(), Vault::generate(), clock.clone()).expect("open");
    let net = ok_ref(&ledger, "network.create", vec![network_record("n", &[])]);
    for i in 0..20 {
        ok(&ledger, "network.add_to_other_config", vec![s(&net), s(&format!("k{i}")), s("v")]);
    }
    let expected = (*ledger.snapshot()).clone();
    // The log as a crash leaves it: every entry, no checkpoint.
    let crashed = Arc::new(MemoryLog::new());
    for seq in 1..=expected.seq {
        let record = written.record(seq).expect("readable").expect("stored");
        crashed.append_batch(&[(seq, record)]).expect("append");
    }
    drop(ledger);
    let reopened = Ledger::open_on(crashed.clone(), Vault::generate(), clock).expect("reopen");
    assert_eq!(reopened.open_report().tail_entries, expected.seq);
    assert_eq!(*reopened.snapshot(), expected);
    wait_for_checkpoint(&crashed, expected.seq);
    assert_eq!(reopened.checkpoint_stats().taken.load(std::sync::atomic::Ordering::Acquire), 1);
}
