//! The replay tool against real data dirs written by the library's `Ledger`: `verify` passes on a
//! clean dir and names the first bad entry on a damaged one; `log` filters; `state` shows an object as
//! of an earlier entry; `diff` shows what changed; the CLI maps outcomes to exit codes.

#[path = "../../tests/support/tamper.rs"]
mod tamper;

use std::path::Path;
use std::process::Command;

use xenledger::engine::snapshot;
use xenledger::entry::{Actor, Change, Entry};
use xenledger::ledger::Ledger;
use xenledger::schema::schema;
use xenledger::store::{encode_entry, Store, GENESIS_HASH, RECORD_HEADER_SIZE_BYTES};
use xenledger::value::Value;
use xenledger_replay::{diff, log, state_json, verify, LogFilter};

fn actor(user: &str) -> Actor {
    Actor { session: format!("OpaqueRef:session-{user}"), user: user.into(), originator: "replay-test".into() }
}

fn network_record(name: &str) -> Value {
    Value::Record(vec![("name_label".into(), Value::str(name)), ("other_config".into(), Value::Record(vec![]))])
}

/// What [`build`] wrote: the first network, its uuid, the second (destroyed) network, and the hash of
/// the final state.
struct Built {
    net: String,
    uuid: String,
    other: String,
    state_hash: [u8; 32],
}

/// Writes five entries: 1 create `net-a` (alice), 2 rename it `net-b` (bob), 3 create `scratch`,
/// 4 destroy it, then a checkpoint at 4, 5 rename the first `net-c` (alice), and a final checkpoint at 5
/// on close.
fn build(dir: &Path) -> Built {
    let ledger = Ledger::open(dir).unwrap();
    let call = |who: &str, method: &str, args: Vec<Value>| ledger.invoke(actor(who), method, args).unwrap();
    let (created, seq) = call("alice", "network.create", vec![network_record("net-a")]);
    assert_eq!(seq, 1);
    let net = created.as_str().unwrap().to_string();
    assert_eq!(call("bob", "network.set_name_label", vec![Value::str(&net), Value::str("net-b")]).1, 2);
    let (other, _) = call("alice", "network.create", vec![network_record("scratch")]);
    let other = other.as_str().unwrap().to_string();
    assert_eq!(call("alice", "network.destroy", vec![Value::str(&other)]).1, 4);
    assert_eq!(ledger.checkpoint().unwrap(), 4);
    assert_eq!(call("alice", "network.set_name_label", vec![Value::str(&net), Value::str("net-c")]).1, 5);
    let (record, _) = call("alice", "network.get_record", vec![Value::str(&net)]);
    let uuid = record.member("uuid").and_then(|v| v.as_str().map(String::from)).unwrap();
    let state_hash = snapshot::hash(&ledger.snapshot());
    ledger.close();
    Built { net, uuid, other, state_hash }
}

fn log_lines(dir: &Path, filter: LogFilter) -> Vec<String> {
    let mut out = Vec::new();
    let matched = log(dir, &filter, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(lines.len() as u64, matched, "{text}");
    lines
}

fn seqs(lines: &[String]) -> Vec<u64> {
    lines.iter().map(|line| line.split(' ').next().unwrap().parse().unwrap()).collect()
}

fn name_at(dir: &Path, seq: u64, net: &str, use_checkpoints: bool) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_str(&state_json(dir, seq, Some("network"), use_checkpoints).unwrap()).unwrap();
    json["network"][net]["name_label"].clone()
}

#[test]
fn verify_passes_and_matches_every_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let built = build(dir.path());
    let outcome = verify(dir.path()).unwrap();
    assert!(outcome.is_ok(), "{outcome}");
    assert_eq!((outcome.entries_checked, outcome.entries_folded), (5, 5));
    assert_eq!(outcome.checkpoints_matched, vec![4, 5]);
    assert_eq!(outcome.state_hash, built.state_hash, "the fold from entry 1 equals the server's state");
    let text = outcome.to_string();
    assert!(text.contains("entries checked: 5") && text.ends_with("OK\n"), "{text}");
    assert!(text.contains(&xenledger_replay::hex(&built.state_hash)), "{text}");
}

#[test]
fn log_lists_entries_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let Built { net, uuid, other, .. } = build(dir.path());
    let all = log_lines(dir.path(), LogFilter::default());
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
    assert!(all[0].contains(r#"alice/replay-test/session:? network.create({name_label: "net-a""#));
    assert!(all[0].contains(&format!("| + network {net} {{uuid: \"{uuid}\", name_label: \"net-a\"}}")), "{}", all[0]);
    assert!(all[1].ends_with(&format!(r#"| network {net} name_label := "net-b""#)), "{}", all[1]);
    assert!(all[3].contains(&format!("| - network {other}")), "{}", all[3]);
    // RFC 3339 UTC time in the second column.
    let time = all[0].split(' ').nth(1).unwrap();
    assert!(time.len() == 27 && time.ends_with('Z') && time.as_bytes()[4] == b'-', "{time}");

    let only = |filter: LogFilter| seqs(&log_lines(dir.path(), filter));
    assert_eq!(only(LogFilter { reference: Some(net.clone()), ..Default::default() }), [1, 2, 5]);
    assert_eq!(only(LogFilter { uuid: Some(uuid), ..Default::default() }), [1, 2, 5]);
    assert_eq!(only(LogFilter { reference: Some(other), ..Default::default() }), [3, 4]);
    assert_eq!(only(LogFilter { actor: Some("bob".into()), ..Default::default() }), [2]);
    assert_eq!(only(LogFilter { actor: Some("alice".into()), ..Default::default() }), [1, 3, 4, 5]);
    // A session is never shown or matched by its ref, only as `session:<uuid>` (here unknown: the
    // log never created these sessions).
    assert_eq!(
        only(LogFilter { actor: Some("OpaqueRef:session-alice".into()), ..Default::default() }),
        Vec::<u64>::new()
    );
    assert_eq!(only(LogFilter { class: Some("Network".into()), ..Default::default() }), [1, 2, 3, 4, 5]);
    assert_eq!(only(LogFilter { class: Some("VM".into()), ..Default::default() }), Vec::<u64>::new());
    assert_eq!(only(LogFilter { from_seq: Some(2), to_seq: Some(3), ..Default::default() }), [2, 3]);
    // Time filters, in both accepted spellings.
    let since = |t: &str| only(LogFilter { since: Some(t.into()), ..Default::default() });
    let until = |t: &str| only(LogFilter { until: Some(t.into()), ..Default::default() });
    assert_eq!(since("2000-01-01T00:00:00Z").len(), 5);
    assert_eq!(since("29990101T00:00:00Z").len(), 0);
    assert_eq!(until("20000101T00:00:00Z").len(), 0);
    assert_eq!(until("2999-01-01T00:00:00Z").len(), 5);
    let error = log(dir.path(), &LogFilter { since: Some("yesterday".into()), ..Default::default() }, &mut Vec::new());
    assert!(error.unwrap_err().to_string().contains("--since"));

    let mut long = Vec::new();
    log(dir.path(), &LogFilter { to_seq: Some(1), long: true, ..Default::default() }, &mut long).unwrap();
    let long = String::from_utf8(long).unwrap();
    let change = long.lines().nth(1).unwrap();
    assert!(change.starts_with("    + network ") && change.contains(r#"name_label: "net-a""#), "{long}");
}

#[test]
fn state_shows_an_earlier_name_with_and_without_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let Built { net, other, .. } = build(dir.path());
    for use_checkpoints in [true, false] {
        assert_eq!(name_at(dir.path(), 1, &net, use_checkpoints), "net-a");
        assert_eq!(name_at(dir.path(), 2, &net, use_checkpoints), "net-b");
        assert_eq!(name_at(dir.path(), 4, &net, use_checkpoints), "net-b");
        assert_eq!(name_at(dir.path(), 5, &net, use_checkpoints), "net-c");
    }
    let at3: serde_json::Value = serde_json::from_str(&state_json(dir.path(), 3, None, true).unwrap()).unwrap();
    assert_eq!(at3["network"][&other]["name_label"], "scratch");
    assert_eq!(at3["network"][&net]["other_config"], serde_json::json!({}));
    assert_eq!(at3.as_object().unwrap().len(), 1, "only classes with objects: {at3}");
    let error = state_json(dir.path(), 6, None, true).unwrap_err().to_string();
    assert!(error.contains("the log ends at entry 5"), "{error}");
}

#[test]
fn diff_shows_added_removed_and_changed() {
    let dir = tempfile::tempdir().unwrap();
    let Built { net, other, .. } = build(dir.path());
    let renamed = diff(dir.path(), 1, 2, None).unwrap();
    assert!(renamed.starts_with("entries 2..=2: 0 added, 0 removed, 1 fields changed\n"), "{renamed}");
    assert!(renamed.contains(&format!(r#"~ network {net} name_label: "net-a" -> "net-b""#)), "{renamed}");
    let added = diff(dir.path(), 2, 3, None).unwrap();
    assert!(added.contains(&format!("+ network {other} {{uuid: ")), "{added}");
    let removed = diff(dir.path(), 3, 4, Some("network")).unwrap();
    assert!(removed.contains(&format!("- network {other}")), "{removed}");
    // Created and destroyed in between: no net change to it.
    let span = diff(dir.path(), 2, 4, None).unwrap();
    assert!(span.starts_with("entries 3..=4: 0 added, 0 removed, 0 fields changed"), "{span}");
    let from_empty = diff(dir.path(), 0, 5, None).unwrap();
    assert!(from_empty.contains(&format!("+ network {net}")) && from_empty.contains("net-c"), "{from_empty}");
    assert!(diff(dir.path(), 3, 2, None).is_err());
}

#[test]
fn verify_names_the_first_corrupt_entry() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper::corrupt_record(dir.path(), 3, RECORD_HEADER_SIZE_BYTES + 2);
    let outcome = verify(dir.path()).unwrap();
    assert!(!outcome.is_ok());
    assert_eq!(outcome.entries_checked, 2);
    let (seq, first) = &outcome.problems[0];
    assert_eq!(*seq, 3);
    assert!(first.starts_with("entry 3 is corrupt: record hash mismatch"), "{first}");
    assert!(outcome.to_string().contains("FAILED: entry 3 is corrupt"), "{outcome}");
    // Reading past the damage fails with the same name; the entries before it are still listed.
    let mut out = Vec::new();
    let error = log(dir.path(), &LogFilter::default(), &mut out).unwrap_err().to_string();
    assert!(error.starts_with("entry 3 is corrupt"), "{error}");
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    assert!(state_json(dir.path(), 2, None, false).is_ok());
    assert!(state_json(dir.path(), 3, None, false).unwrap_err().to_string().starts_with("entry 3 is corrupt"));
}

#[test]
fn verify_reports_a_checkpoint_that_disagrees_with_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let Built { net, .. } = build(dir.path());
    {
        // A well-framed checkpoint at seq 5 holding the state after entry 4 (name still `net-b`).
        let store = Store::open(dir.path(), &schema().hash).unwrap();
        let stale = snapshot::decode(&store.checkpoints().unwrap()[0].state).unwrap();
        assert_eq!(stale.seq, 4);
        store.put_checkpoint(5, &snapshot::encode(&stale)).unwrap();
    }
    let outcome = verify(dir.path()).unwrap();
    assert_eq!(outcome.checkpoints_matched, vec![4]);
    let (seq, problem) = &outcome.problems[0];
    assert_eq!(*seq, 5);
    assert!(problem.starts_with("checkpoint at seq 5 differs from the fold"), "{problem}");
    assert!(problem.contains(&format!(r#"~ network {net} name_label: "net-b" -> "net-c""#)), "{problem}");
}

#[test]
fn verify_reports_a_corrupt_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper::corrupt_checkpoint(dir.path(), 5, 100);
    let outcome = verify(dir.path()).unwrap();
    assert_eq!(outcome.entries_checked, 5, "the chain itself is intact");
    assert!(outcome.problems[0].1.starts_with("checkpoint at seq 5: state hash mismatch"), "{outcome}");
}

#[test]
fn verify_reports_a_change_the_fold_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A well-chained entry renaming a network that was never created.
        let store = Store::open(dir.path(), &schema().hash).unwrap();
        let entry = Entry {
            seq: 1,
            timestamp_us: 0,
            actor: Actor::default(),
            method: "network.set_name_label".into(),
            params: vec![],
            changes: vec![Change::Set {
                class: "network".into(),
                reference: "OpaqueRef:ghost".into(),
                field: "name_label".into(),
                value: Value::str("boo"),
            }],
        };
        store.append_batch(&[(1, encode_entry(&GENESIS_HASH, &entry).unwrap().0)]).unwrap();
    }
    let outcome = verify(dir.path()).unwrap();
    assert_eq!((outcome.entries_checked, outcome.entries_folded), (1, 0));
    assert!(
        outcome.problems[0].1.starts_with("entry 1 cannot be folded: entry 1: no network OpaqueRef:ghost"),
        "{outcome}"
    );
}

#[test]
fn refuses_a_missing_store_and_a_locked_one() {
    let dir = tempfile::tempdir().unwrap();
    let error = verify(&dir.path().join("nowhere")).unwrap_err().to_string();
    assert!(error.contains("is not a xenledger data dir"), "{error}");
    assert!(!dir.path().join("nowhere").exists(), "nothing is created");
    let ledger = Ledger::open(dir.path()).unwrap();
    let error = format!("{:#}", verify(dir.path()).unwrap_err());
    assert!(error.contains("exclusive lock"), "{error}");
    drop(ledger);
}

#[test]
fn cli_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let Built { net, .. } = build(dir.path());
    let replay = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_xenledger-replay")).args(args).output().unwrap();
    let path = dir.path().to_str().unwrap();

    let ok = replay(&["verify", path]);
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("entries checked: 5"));
    let state = replay(&["state", path, "--at", "1", "--class", "network"]);
    assert!(String::from_utf8_lossy(&state.stdout).contains(r#""name_label": "net-a""#), "{state:?}");
    let listed = replay(&["log", path, "--ref", &net, "--since", "2000-01-01T00:00:00Z"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 3, "{listed:?}");
    let changed = replay(&["diff", path, "1", "2"]);
    assert!(String::from_utf8_lossy(&changed.stdout).contains("name_label: \"net-a\" -> \"net-b\""), "{changed:?}");

    tamper::corrupt_record(dir.path(), 2, RECORD_HEADER_SIZE_BYTES + 1);
    let bad = replay(&["verify", path]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAILED: entry 2 is corrupt"), "{bad:?}");
    let unusable = replay(&["verify", &format!("{path}/nowhere")]);
    assert_eq!(unusable.status.code(), Some(2), "{unusable:?}");
}
