//! Shared helpers for the `engine_*` integration tests: constructor records for the small object
//! universe they use (network, VM, VIF, secret), a call wrapper, a from-scratch fold of a store's
//! whole log, and a checker for the structural invariants every state must satisfy (no dangling
//! refs, derived relation sets equal to the single-ref side, indexes in step with the objects).
//!
//! Each test binary compiles this module on its own and uses a different subset of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use xenledger::engine::apply::apply_changes;
use xenledger::engine::State;
use xenledger::entry::Actor;
use xenledger::error::ApiError;
use xenledger::ledger::Ledger;
use xenledger::schema::{schema, Relation, Ty};
use xenledger::store::{Log, GENESIS_HASH};
use xenledger::value::{Value, NULL_REF};

/// Calls `method` as the default actor and drops the log position.
pub fn call(ledger: &Ledger, method: &str, args: Vec<Value>) -> Result<Value, ApiError> {
    ledger.invoke(Actor::default(), method, args).map(|(value, _)| value)
}

/// Calls `method`, which must succeed, and returns its result.
pub fn ok(ledger: &Ledger, method: &str, args: Vec<Value>) -> Value {
    call(ledger, method, args.clone()).unwrap_or_else(|e| panic!("{method}{args:?} failed: {e}"))
}

/// Calls a constructor (or anything returning a ref), which must succeed, and returns the ref.
pub fn ok_ref(ledger: &Ledger, method: &str, args: Vec<Value>) -> String {
    match ok(ledger, method, args) {
        Value::Ref(r) => r,
        other => panic!("{method} answered {other:?}, not a ref"),
    }
}

/// `Value::String` shorthand.
pub fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

/// A wire struct (what XML-RPC `<struct>` decodes to) of string members, as a map argument.
pub fn struct_of(pairs: &[(&str, &str)]) -> Value {
    Value::Record(pairs.iter().map(|(k, v)| (k.to_string(), s(v))).collect())
}

/// A network constructor record: `other_config` is its only mandatory member (§d.3).
pub fn network_record(label: &str, other_config: &[(&str, &str)]) -> Value {
    Value::Record(vec![("name_label".into(), s(label)), ("other_config".into(), struct_of(other_config))])
}

/// The VM constructor's mandatory members (docs/xenapi-semantics.md §d.3), in schema order.
pub const VM_MANDATORY: [&str; 25] = [
    "user_version",
    "is_a_template",
    "affinity",
    "memory_static_max",
    "memory_dynamic_max",
    "memory_dynamic_min",
    "memory_static_min",
    "VCPUs_params",
    "VCPUs_max",
    "VCPUs_at_startup",
    "actions_after_shutdown",
    "actions_after_reboot",
    "actions_after_crash",
    "PV_bootloader",
    "PV_kernel",
    "PV_ramdisk",
    "PV_args",
    "PV_bootloader_args",
    "PV_legacy_args",
    "HVM_boot_policy",
    "HVM_boot_params",
    "platform",
    "PCI_bus",
    "other_config",
    "recommendations",
];

/// A complete VM constructor record, loosely typed as a wire would send it (int64 as strings,
/// enums in lower case).
pub fn vm_record(label: &str, other_config: &[(&str, &str)]) -> Value {
    let mut members: Vec<(String, Value)> = vec![("name_label".into(), s(label))];
    for name in VM_MANDATORY {
        let value = match name {
            "user_version" => s("1"),
            "is_a_template" => Value::Bool(false),
            "affinity" => s(NULL_REF),
            "memory_static_max" | "memory_dynamic_max" => s("1073741824"),
            "memory_dynamic_min" | "memory_static_min" => s("536870912"),
            "VCPUs_max" | "VCPUs_at_startup" => s("2"),
            "actions_after_shutdown" => s("destroy"),
            "actions_after_reboot" | "actions_after_crash" => s("restart"),
            "VCPUs_params" | "HVM_boot_params" | "platform" => struct_of(&[]),
            "other_config" => struct_of(other_config),
            _ => s(""),
        };
        members.push((name.to_string(), value));
    }
    Value::Record(members)
}

/// A VIF constructor record with every mandatory member (§d.3).
pub fn vif_record(vm: &str, network: &str, device: &str) -> Value {
    Value::Record(vec![
        ("device".into(), s(device)),
        ("network".into(), Value::Ref(network.to_string())),
        ("VM".into(), Value::Ref(vm.to_string())),
        ("MAC".into(), s("")),
        ("MTU".into(), Value::Int(1500)),
        ("other_config".into(), struct_of(&[])),
        ("qos_algorithm_type".into(), s("")),
        ("qos_algorithm_params".into(), struct_of(&[])),
    ])
}

/// A secret constructor record (`value` is its only mandatory member).
pub fn secret_record(value: &str) -> Value {
    Value::Record(vec![("value".into(), s(value))])
}

/// A field of a stored object, looked up by class and field name.
pub fn field<'a>(state: &'a State, class: &str, reference: &str, name: &str) -> &'a Value {
    let c = schema().class(class).unwrap_or_else(|| panic!("no class {class}"));
    let f = c.field(name).unwrap_or_else(|| panic!("no field {class}.{name}"));
    let object = state.get(c.id, reference).unwrap_or_else(|| panic!("no {class} {reference}"));
    object.get(f)
}

/// The refs of a class's live objects.
pub fn refs_of(state: &State, class: &str) -> BTreeSet<String> {
    let c = schema().class(class).unwrap_or_else(|| panic!("no class {class}"));
    state.table(c.id).objects.keys().map(|r| r.to_string()).collect()
}

/// A `(string -> string) map` value as ordered pairs (insertion order kept).
pub fn string_pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_map()
        .unwrap_or_else(|| panic!("{value:?} is not a map"))
        .iter()
        .map(|(k, v)| (k.as_str().expect("string key").to_string(), v.as_str().expect("string value").to_string()))
        .collect()
}

/// A set of string-like values as a sorted set (duplicates would be lost, so callers that care
/// check the length too).
pub fn str_set(value: &Value) -> BTreeSet<String> {
    value
        .as_set()
        .unwrap_or_else(|| panic!("{value:?} is not a set"))
        .iter()
        .map(|v| v.as_str().expect("string-like element").to_string())
        .collect()
}

/// Folds the whole log of `store` from seq 1 into a fresh state, verifying the hash chain on the
/// way: what the replay tool and a checkpoint-less recovery compute.
pub fn fold_log(store: &dyn Log) -> State {
    let mut state = State::new();
    let report = store
        .verify_chain(1, GENESIS_HASH, |entry| apply_changes(&mut state, entry.seq, &entry.changes))
        .unwrap_or_else(|e| panic!("chain verification failed: {e}"));
    assert_eq!(report.last_seq, state.seq, "verify_chain reported a different end than the fold reached");
    let last = store.last().expect("store readable").map_or(0, |(seq, _)| seq);
    assert_eq!(report.last_seq, last, "verify_chain stopped before the end of the log");
    state
}

/// Every non-null ref inside `value` (typed `ty`) together with its target class.
fn refs_in(ty: &Ty, value: &Value, out: &mut Vec<(String, String)>) {
    match (ty, value) {
        (Ty::Ref(class), Value::Ref(r)) if r != NULL_REF => out.push((class.clone(), r.clone())),
        (Ty::Set(t), Value::Set(items)) => items.iter().for_each(|v| refs_in(t, v, out)),
        (Ty::Map(k, v), Value::Map(entries)) => entries.iter().for_each(|(a, b)| {
            refs_in(k, a, out);
            refs_in(v, b, out);
        }),
        (Ty::Option(t), v) => refs_in(t, v, out),
        _ => {}
    }
}

/// Checks the structural invariants of a state over the whole schema and panics with a precise
/// message on the first violation:
///
/// 1. every ref held by any field of any stored object names an existing object of its class (or
///    is `OpaqueRef:NULL`);
/// 2. every derived set (`VM.VIFs`, `network.VIFs`, …) holds exactly, and once each, the objects
///    whose single-ref field points back; many-to-many pairs are symmetric;
/// 3. the uuid and name_label indexes list exactly the live objects.
pub fn check_invariants(state: &State) {
    let s = schema();
    for class in &s.classes {
        let table = state.table(class.id);
        for (reference, object) in table.objects.iter() {
            for (fid, f) in class.fields.iter().enumerate() {
                let value = &object.fields[fid];
                let mut held = Vec::new();
                refs_in(&f.ty, value, &mut held);
                for (target_class, target) in held {
                    if let Some(tc) = s.class(&target_class) {
                        if tc.stored {
                            assert!(
                                state.exists(tc.id, &target),
                                "{}.{} of {reference} dangles: no {target_class} {target}",
                                class.name,
                                f.name
                            );
                        }
                    }
                }
                match f.relation {
                    Relation::Many { class: oc, field: of } => {
                        let items = value.as_set().unwrap_or_else(|| panic!("{}.{} is not a set", class.name, f.name));
                        let listed: Vec<&str> = items.iter().map(|v| v.as_str().expect("ref")).collect();
                        let listed_set: BTreeSet<&str> = listed.iter().copied().collect();
                        assert_eq!(
                            listed.len(),
                            listed_set.len(),
                            "{}.{} of {reference} has duplicates",
                            class.name,
                            f.name
                        );
                        let pointing: BTreeSet<&str> = state
                            .table(oc)
                            .objects
                            .iter()
                            .filter(|(_, o)| o.fields[of].as_str() == Some(&**reference))
                            .map(|(r, _)| &**r)
                            .collect();
                        assert_eq!(
                            listed_set, pointing,
                            "{}.{} of {reference} differs from the {} objects whose {} points at it",
                            class.name, f.name, s.classes[oc].name, s.classes[oc].fields[of].name
                        );
                    }
                    Relation::ManyToMany { class: oc, field: of } => {
                        for r in value.as_set().unwrap_or_default() {
                            let r = r.as_str().expect("ref");
                            if let Some(other) = state.get(oc, r) {
                                let back = other.fields[of].as_set().unwrap_or_default();
                                assert!(
                                    back.iter().any(|v| v.as_str() == Some(&**reference)),
                                    "{}.{} of {reference} lists {r}, which does not list it back",
                                    class.name,
                                    f.name
                                );
                            }
                        }
                    }
                    Relation::One { .. } | Relation::None => {}
                }
            }
        }
        // Indexes.
        if let Some(uf) = class.uuid_field {
            let expected: BTreeMap<String, String> = table
                .objects
                .iter()
                .filter_map(|(r, o)| o.fields[uf].as_str().map(|u| (u.to_string(), r.to_string())))
                .collect();
            let actual: BTreeMap<String, String> =
                table.by_uuid.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert_eq!(actual, expected, "{} uuid index out of step with its objects", class.name);
        }
        if let Some(nf) = class.name_label_field {
            let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (r, o) in table.objects.iter() {
                if let Some(label) = o.fields[nf].as_str() {
                    expected.entry(label.to_string()).or_default().insert(r.to_string());
                }
            }
            let actual: BTreeMap<String, BTreeSet<String>> = table
                .by_name_label
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|r| r.to_string()).collect()))
                .collect();
            assert_eq!(actual, expected, "{} name_label index out of step with its objects", class.name);
        }
    }
}
