//! The committer's group commits as `Ledger::commit_stats` counts them (the bench prints them as
//! `commits`, `entries_per_commit` and `disk_busy`): every durable entry once, in no more commits
//! than entries, and nothing for a call that failed or changed nothing.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use support::*;
use xenledger::ledger::Ledger;
use xenledger::store::MemoryLog;
use xenledger::vault::Vault;

fn counted(ledger: &Ledger) -> (u64, u64) {
    let stats = ledger.commit_stats();
    (stats.commits.load(Ordering::Acquire), stats.entries.load(Ordering::Relaxed))
}

#[test]
fn every_durable_entry_is_counted_once_and_commits_group_them() {
    let ledger = Arc::new(
        Ledger::open_on(
            Arc::new(MemoryLog::new()),
            Vault::generate(),
            Arc::new(xenledger::clock::VirtualClock::at_2026()),
        )
        .expect("open"),
    );
    let net = ok_ref(&ledger, "network.create", vec![network_record("n", &[])]);
    let (commits_before, entries_before) = counted(&ledger);
    let seq_before = ledger.snapshot().seq;

    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (ledger, net) = (ledger.clone(), net.clone());
            std::thread::spawn(move || {
                for n in 0..25 {
                    ok(&ledger, "network.set_name_label", vec![s(&net), s(&format!("n-{t}-{n}"))]);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer thread");
    }
    // Refused: no entry, nothing counted.
    assert!(call(&ledger, "network.set_name_label", vec![s("OpaqueRef:nothing"), s("x")]).is_err());

    let (commits, entries) = counted(&ledger);
    let logged = ledger.snapshot().seq - seq_before;
    assert_eq!(logged, 200);
    assert_eq!(entries - entries_before, logged, "each entry in one commit");
    let made = commits - commits_before;
    assert!((1..=logged).contains(&made), "{made} commits for {logged} entries");
}
