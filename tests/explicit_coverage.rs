//! Coverage of the datamodel's explicit messages, as a number that only shrinks.
//!
//! Every message of the datamodel is implicit (interpreted from the schema), registered in
//! `engine::explicit::REGISTRY`, removed from the API (`MESSAGE_REMOVED`), or listed in `tests/data/not_implemented.txt` (those answer
//! `NOT_IMPLEMENTED`). The list must be exactly what is left: a message newly implemented must
//! leave it, and no message may join it. `XENLEDGER_BLESS=1 cargo test --test explicit_coverage`
//! rewrites the file after an implementation lands.

use xenledger::engine::explicit;
use xenledger::schema::{schema, Kind};

const LIST: &str = "tests/data/not_implemented.txt";

fn not_implemented() -> Vec<String> {
    let mut out = Vec::new();
    for class in &schema().classes {
        for msg in &class.messages {
            // A removed message answers MESSAGE_REMOVED, as xapi's does: nothing to implement.
            if msg.kind == Kind::Explicit && !msg.removed && explicit::lookup(&class.name, &msg.name).is_none() {
                out.push(msg.wire_name.clone());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_not_implemented_list_is_exactly_what_is_left_and_never_grows() {
    let now = not_implemented();
    let explicit_total: usize =
        schema().classes.iter().flat_map(|c| &c.messages).filter(|m| m.kind == Kind::Explicit).count();
    println!("explicit messages: {explicit_total}; not implemented: {}", now.len());
    if std::env::var_os("XENLEDGER_BLESS").is_some() {
        std::fs::write(LIST, now.join("\n") + "\n").unwrap();
        return;
    }
    let listed: Vec<String> = std::fs::read_to_string(LIST).unwrap().lines().map(String::from).collect();
    let joined: Vec<&String> = now.iter().filter(|m| !listed.contains(m)).collect();
    assert!(joined.is_empty(), "messages with no implementation that the list does not have: {joined:?}");
    let done: Vec<&String> = listed.iter().filter(|m| !now.contains(m)).collect();
    assert!(done.is_empty(), "implemented now, so take them off {LIST} (XENLEDGER_BLESS=1): {done:?}");
}

#[test]
fn every_registered_message_is_explicit_or_overrides_an_implicit_one_on_purpose() {
    // The registry may take over an implicit message only where the node must add runtime
    // state: a session's record and last use (its `last_active` is not logged on every call),
    // and its permissions (computed from the user's current role, as xapi does at login); or
    // where xapi's own implementation is custom: `VM.create` (xapi_vm.ml `create`: a mac_seed,
    // the domain type, a VM_metrics record, docs §g.3), `VM.destroy` (xapi_vm.ml `destroy`: the
    // lifecycle check, default templates refused, devices and metrics destroyed, docs §g.4)
    // and `VM.set_is_a_template` (xapi_vm_helpers.ml: `make_into_template`, install time),
    // `VDI.create` and `VDI.destroy` (xapi_vdi.ml: the storage backend makes and removes the
    // bytes; docs §h.3), `VBD.destroy` and `VIF.destroy` (refused while attached; their metrics
    // go too: xapi_vbd_helpers.ml, xapi_vif_helpers.ml), `VIF.create` (a MAC generated from the
    // VM's mac_seed, device checks: xapi_vif_helpers.ml `create`, docs §h.2), `VBD.create`
    // (device autodetection and clashes, CD and read-only rules: xapi_vbd.ml `create`, §h.1),
    // `PBD.destroy` (refused while attached: xapi_pbd.ml, §h.4), `PBD.create` (`PBD_EXISTS`, the
    // SRmaster key: xapi_pbd.ml `create`), `network.create` (a bridge named when none is given,
    // reserved prefixes: xapi_network.ml `create`) and `network.destroy` (refused while VIFs or
    // PIFs use it: xapi_network.ml `destroy`), the `role` getters (a static table, not objects:
    // xapi_role.ml), `subject.create`/`destroy` (local users as subjects: xapi_subject.ml), and
    // `console.create`/`destroy` (refused: ocaml/xapi/api_server_common.ml).
    let overrides: Vec<String> = explicit::REGISTRY
        .iter()
        .filter(|r| {
            let class = schema().class(r.class).unwrap();
            class.message(r.message).unwrap().kind != Kind::Explicit
        })
        .map(|r| format!("{}.{}", r.class, r.message))
        .collect();
    let mut overrides = overrides;
    overrides.sort();
    assert_eq!(
        overrides,
        [
            "PBD.create",
            "PBD.destroy",
            "VBD.create",
            "VBD.destroy",
            "VDI.create",
            "VDI.destroy",
            "VIF.create",
            "VIF.destroy",
            "VM.create",
            "VM.destroy",
            "VM.set_is_a_template",
            "console.create",
            "console.destroy",
            "network.create",
            "network.destroy",
            "role.get_all",
            "role.get_all_records",
            "role.get_by_name_label",
            "role.get_by_uuid",
            "role.get_is_internal",
            "role.get_name_description",
            "role.get_name_label",
            "role.get_record",
            "role.get_subroles",
            "role.get_uuid",
            "session.get_last_active",
            "session.get_rbac_permissions",
            "session.get_record",
            "subject.create",
            "subject.destroy"
        ]
    );
}
