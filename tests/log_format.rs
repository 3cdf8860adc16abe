//! Pins the on-disk log format. A log is forever: an entry written today must decode the same way
//! in every later build. postcard encodes enum variants by position, so reordering `Value` or
//! `Change` (or changing the framing) would silently reinterpret old logs; this golden record
//! catches it. Bump `store::codec::FORMAT_VERSION` and add a reader for the old layout instead.

use xenledger::entry::{Actor, Change, Entry};
use xenledger::store::codec::{decode_record, encode_entry, GENESIS_HASH};
use xenledger::value::Value;

fn golden_entry() -> Entry {
    let every_value = Value::Set(vec![
        Value::String("s".into()),
        Value::Int(-2),
        Value::Float(1.5),
        Value::Bool(true),
        Value::DateTime(86_400),
        Value::Enum("Halted".into()),
        Value::Ref("OpaqueRef:x".into()),
        Value::Map(vec![(Value::String("k".into()), Value::String("v".into()))]),
        Value::Record(vec![("f".into(), Value::Null)]),
        Value::Int32(7),
    ]);
    Entry {
        seq: 1,
        timestamp_us: 1_700_000_000_000_000,
        actor: Actor { session: "OpaqueRef:s".into(), user: "root".into(), originator: "o".into() },
        method: "VM.set_other_config".into(),
        params: vec![every_value.clone()],
        changes: vec![
            Change::Create {
                class: "VM".into(),
                reference: "OpaqueRef:a".into(),
                fields: vec![("name_label".into(), Value::String("a".into()))],
            },
            Change::Set {
                class: "VM".into(),
                reference: "OpaqueRef:a".into(),
                field: "other_config".into(),
                value: every_value,
            },
            Change::Touch { class: "VM".into(), reference: "OpaqueRef:a".into() },
            Change::Destroy { class: "VM".into(), reference: "OpaqueRef:a".into() },
            Change::UserPut { name: "u".into(), role: "read-only".into(), password_hash: "$argon2id$x".into() },
            Change::UserDelete { name: "u".into() },
        ],
    }
}

const GOLDEN_HEX: &str = "0100000000000000000000000000000000000000000000000000000000000000004807ea8bca3f41819db27db33f7d93acc56b5d42108780c3baf29f97fd73717d018080f281838985060b4f70617175655265663a7304726f6f74016f13564d2e7365745f6f746865725f636f6e66696701070a000173010302000000000000f83f03010480c60a050648616c746564060b4f70617175655265663a78080100016b000176090101660a0b0e060002564d0b4f70617175655265663a61010a6e616d655f6c6162656c0001610102564d0b4f70617175655265663a610c6f746865725f636f6e666967070a000173010302000000000000f83f03010480c60a050648616c746564060b4f70617175655265663a78080100016b000176090101660a0b0e0302564d0b4f70617175655265663a610202564d0b4f70617175655265663a6104017509726561642d6f6e6c790b246172676f6e3269642478050175";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_log_record_encoding_is_pinned() {
    let (record, _) = encode_entry(&GENESIS_HASH, &golden_entry()).unwrap();
    assert_eq!(hex(&record), GOLDEN_HEX, "the log format changed: see this file's header");
}

#[test]
fn the_golden_record_decodes_to_the_same_entry() {
    let bytes: Vec<u8> =
        (0..GOLDEN_HEX.len()).step_by(2).map(|i| u8::from_str_radix(&GOLDEN_HEX[i..i + 2], 16).unwrap()).collect();
    let decoded = decode_record(1, &bytes).unwrap();
    assert_eq!(decoded.entry, golden_entry());
    assert_eq!(decoded.prev_hash, GENESIS_HASH);
}

/// A checkpoint in an older state-image layout is not damage: opening folds the whole log
/// instead, and arrives at the same state.
#[test]
fn a_checkpoint_of_an_older_layout_is_replaced_by_a_full_replay() {
    use xenledger::ledger::Ledger;
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let record =
        Value::Record(vec![("name_label".into(), Value::str("n")), ("other_config".into(), Value::Record(vec![]))]);
    let (net, _) = ledger.invoke(Actor::default(), "network.create", vec![record]).unwrap();
    ledger.invoke(Actor::default(), "network.set_name_label", vec![net.clone(), Value::str("m")]).unwrap();
    ledger.invoke(Actor::default(), "network.set_name_label", vec![net.clone(), Value::str("o")]).unwrap();
    let expected = (*ledger.snapshot()).clone();
    ledger.close();
    let store = xenledger::store::Store::open(dir.path(), &xenledger::schema::schema().hash).unwrap();
    // Version byte 1: the image layout before `events_horizon` was added.
    store.put_checkpoint(3, &[1, 0, 0, 0]).unwrap();
    drop(store);
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.open_report().checkpoint_seq, 0);
    assert_eq!(ledger.open_report().tail_entries, 3);
    assert_eq!(*ledger.snapshot(), expected);
}
