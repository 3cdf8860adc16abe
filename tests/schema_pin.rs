//! Pins the embedded schema: any change to schema/xenapi.json must update this hash on purpose
//! (as xapi's schematest.ml does), because data dirs record the hash they were written with.
//! Also checks the schema covers the whole datamodel and every error code the code names.

use xenledger::schema::{schema, Kind, Qual, Relation, Ty};

const SCHEMA_BLAKE3: &str = "1a2e45b1e8578c339217814aaf15fa050a0a77c27d089577a8e6569bf8dda4ab";

#[test]
fn schema_hash_is_pinned() {
    assert_eq!(schema().hash, SCHEMA_BLAKE3, "schema/xenapi.json changed: bump this pin on purpose");
}

#[test]
fn schema_covers_the_datamodel() {
    let s = schema();
    assert_eq!(s.api_release, "24.10.0");
    assert_eq!((s.api_version_major, s.api_version_minor), (2, 21));
    assert_eq!(s.classes.len(), 67);
    assert_eq!(s.errors.len(), 635);
    let messages: usize = s
        .classes
        .iter()
        .map(|c| c.messages.iter().filter(|m| !matches!(m.kind, Kind::GetAllWhere | Kind::GetAllRecordsWhere)).count())
        .sum();
    assert_eq!(messages, 1828);
    // Spot checks of interface facts (xenapi-datamodel.json).
    let vm = s.class("VM").unwrap();
    let power = &vm.fields[vm.field("power_state").unwrap()];
    assert_eq!(power.ty, Ty::Enum("vm_power_state".into()));
    assert_eq!(power.qual, Qual::RoConstructor);
    assert!(matches!(vm.fields[vm.field("VBDs").unwrap()].relation, Relation::Many { .. }));
    let start = vm.message("start").unwrap();
    assert_eq!(start.kind, Kind::Explicit);
    assert!(start.is_async);
    assert_eq!(start.args().len(), 3);
    assert!(start.allows_role("vm-operator") && !start.allows_role("read-only"));
    assert!(!vm.message("set_name_label").unwrap().is_async);
    assert!(vm.message("create").unwrap().is_async);
    assert!(vm.message("get_all_records_where").is_some());
    assert!(!s.class("event").unwrap().message("from").unwrap().is_async);
    assert_eq!(s.errors["MAP_DUPLICATE_KEY"], ["type", "param_name", "uuid", "key"]);
    // Protected map keys (schema/facts/map_keys_roles.json, from the xapi IDL's map_keys_roles).
    let keys = |m: &str| vm.message(m).unwrap().map_keys.iter().map(|(k, r)| format!("{k}={r}")).collect::<Vec<_>>();
    let vm_keys = ["pci=pool-admin", "folder=vm-operator", "XenCenter.CustomFields.*=vm-operator"];
    assert_eq!(keys("add_to_other_config"), vm_keys);
    assert_eq!(keys("remove_from_other_config"), vm_keys);
    assert!(keys("set_other_config").is_empty() && keys("add_to_platform").is_empty());
    let keyed: usize = s.classes.iter().flat_map(|c| &c.messages).filter(|m| !m.map_keys.is_empty()).count();
    assert_eq!(keyed, 14, "add_to_/remove_from_other_config of VM, host, pool, task, network, SR, VDI");
    let login = s.class("session").unwrap().message("login_with_password").unwrap();
    assert!(!login.takes_session);
    assert_eq!(login.required_args(), 2);
}

/// Error codes are typed (`error::ErrorCode`, generated from the datamodel): a misspelt one does
/// not compile. Only a failure that arrives as text — a logged outcome, or the dispatcher's bare
/// `Fault` (docs §a) — is built from a string, in the places listed here.
#[test]
fn error_codes_in_the_source_are_typed() {
    let allowed = ["src/error/mod.rs", "src/engine/long.rs", "src/node/mod.rs"];
    let mut untyped = Vec::new();
    for path in walk("src") {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display().to_string();
        if text.contains("ApiError::new(\"")
            || (text.contains("ApiError::from_wire(") && !allowed.contains(&name.as_str()))
        {
            untyped.push(name);
        }
    }
    assert!(untyped.is_empty(), "error codes from strings in {untyped:?}");
}

fn walk(dir: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(path.to_str().unwrap()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// xapi's parameter defaults (`schema/facts/param_defaults.json`, from the IDL at the commit the
/// datamodel comes from): 46 messages, 39 of them in this datamodel (the others are hidden from
/// its export). A short call is then complete: `VM.snapshot(session, vm, name)` as Xen
/// Orchestra sends it, `host.evacuate(session, host)`.
#[test]
fn parameter_defaults_are_pinned_and_attached() {
    let raw: serde_json::Value = serde_json::from_str(xenledger::schema::PARAM_DEFAULTS_JSON).unwrap();
    let listed = raw.as_object().unwrap().keys().filter(|k| !k.starts_with('_')).count();
    assert_eq!(listed, 46);
    let s = schema();
    let with_defaults: Vec<String> = s
        .classes
        .iter()
        .flat_map(|c| c.messages.iter().map(move |m| (c, m)))
        .filter(|(_, m)| m.params.iter().any(|p| p.default.is_some()))
        .map(|(c, m)| format!("{}.{}", c.name, m.name))
        .collect();
    assert_eq!(with_defaults.len(), 39, "{with_defaults:?}");
    let (_, snapshot) = s.lookup("VM.snapshot").unwrap();
    assert_eq!(snapshot.required_args(), 2);
    let (_, evacuate) = s.lookup("host.evacuate").unwrap();
    assert_eq!(evacuate.required_args(), 1);
}
