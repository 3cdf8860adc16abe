//! RBAC on protected map keys through the node's call path (docs/xenapi-semantics.md §c.4). Facts
//! from xapi: the IDL's `~map_keys_roles` (datamodel_vm.ml, datamodel_pool.ml, datamodel.ml;
//! kept in schema/facts/map_keys_roles.json) and rbac.ml `permission_of_action`: on
//! `add_to_<map>` / `remove_from_<map>` a protected key's permission `<message>/key:<pattern>`
//! *replaces* the message's own, the first matching pattern wins, a trailing `*` is a prefix,
//! keys compare case-sensitively, and `set_<map>` checks only the message's permission.

mod node_support;

use std::sync::Arc;

use xenledger::node::Node;
use xenledger::value::Value;

use node_support::{add_user, call_as, open, tcp};

/// A fresh node with a user of each given role (password "secret"), and a session for each,
/// logged in over TCP.
async fn node_with(roles: &[&str]) -> (tempfile::TempDir, Arc<Node>, Vec<Value>) {
    let (dir, node) = open();
    let mut sessions = Vec::new();
    for &role in roles {
        add_user(&node, role, role, "secret").await;
        let login = vec![Value::str(role), Value::str("secret")];
        sessions.push(call(&node, "session.login_with_password", login).await.unwrap());
    }
    (dir, node, sessions)
}

/// Calls over TCP, where sessions carry their user's role.
async fn call(node: &Arc<Node>, method: &str, params: Vec<Value>) -> Result<Value, Vec<String>> {
    call_as(node, &tcp(), method, params).await
}

fn denied(permission: &str, roles: &str) -> Vec<String> {
    vec![
        "RBAC_PERMISSION_DENIED".to_string(),
        permission.to_string(),
        format!("No permission in user session. (Roles with this permission: {roles})"),
    ]
}

const VM_OPERATOR_AND_ABOVE: &str = "pool-admin, pool-operator, vm-power-admin, vm-admin, vm-operator";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_key_needs_its_own_permission_instead_of_the_messages() {
    let (_dir, node, sessions) = node_with(&["vm-operator", "vm-admin", "read-only"]).await;
    let (operator, admin, reader) = (&sessions[0], &sessions[1], &sessions[2]);
    let vm = call(&node, "VM.get_all", vec![admin.clone()]).await.unwrap().as_set().unwrap()[0].clone();
    let add = |session: &Value, key: &str| vec![session.clone(), vm.clone(), Value::str(key), Value::str("v")];

    // "folder" and "XenCenter.CustomFields.*" need only vm-operator, below the message's vm-admin.
    call(&node, "VM.add_to_other_config", add(operator, "folder")).await.unwrap();
    call(&node, "VM.add_to_other_config", add(operator, "XenCenter.CustomFields.owner")).await.unwrap();
    // The wildcard is a plain prefix: nothing after it still matches.
    call(&node, "VM.add_to_other_config", add(operator, "XenCenter.CustomFields.")).await.unwrap();
    call(&node, "VM.remove_from_other_config", vec![operator.clone(), vm.clone(), Value::str("folder")]).await.unwrap();
    let config = call(&node, "VM.get_other_config", vec![reader.clone(), vm.clone()]).await.unwrap();
    let mut keys: Vec<&str> = match &config {
        Value::Map(entries) => entries.iter().map(|(k, _)| k.as_str().unwrap()).collect(),
        other => panic!("other_config is {other:?}"),
    };
    // The VM may be a template with keys of its own; these are the ones the calls touched.
    keys.retain(|k| k.starts_with("XenCenter") || k.eq_ignore_ascii_case("folder"));
    assert_eq!(keys, ["XenCenter.CustomFields.owner", "XenCenter.CustomFields."]);

    // Unprotected keys, and keys differing only in case, need the message's own permission.
    let base = "pool-admin, pool-operator, vm-power-admin, vm-admin";
    for key in ["notes", "Folder"] {
        let got = call(&node, "VM.add_to_other_config", add(operator, key)).await.unwrap_err();
        assert_eq!(got, denied("vm.add_to_other_config", base), "{key}");
    }
    call(&node, "VM.add_to_other_config", add(admin, "notes")).await.unwrap();

    // "pci" is pool-admin's alone: holding the message's permission is not enough.
    let got = call(&node, "VM.add_to_other_config", add(admin, "pci")).await.unwrap_err();
    assert_eq!(got, denied("vm.add_to_other_config/key:pci", "pool-admin"));
    // A denied keyed permission names the pattern, lower-cased, wildcard included.
    let got = call(&node, "VM.add_to_other_config", add(reader, "XenCenter.CustomFields.x")).await.unwrap_err();
    assert_eq!(got, denied("vm.add_to_other_config/key:xencenter.customfields.*", VM_OPERATOR_AND_ABOVE));

    // The whole-map setter has no keyed permissions: only its own (vm-admin and above).
    let whole = vec![operator.clone(), vm.clone(), Value::Map(vec![(Value::str("folder"), Value::str("/a"))])];
    assert_eq!(call(&node, "VM.set_other_config", whole).await.unwrap_err(), denied("vm.set_other_config", base));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_and_task_keys_are_protected_too() {
    let (_dir, node, sessions) = node_with(&["vm-operator", "read-only"]).await;
    let (operator, reader) = (&sessions[0], &sessions[1]);
    let pool = call(&node, "pool.get_all", vec![operator.clone()]).await.unwrap().as_set().unwrap()[0].clone();
    let add = |session: &Value, key: &str| vec![session.clone(), pool.clone(), Value::str(key), Value::str("[]")];
    call(&node, "pool.add_to_other_config", add(operator, "EMPTY_FOLDERS")).await.unwrap();
    let got = call(&node, "pool.add_to_other_config", add(operator, "xo:barrier")).await.unwrap_err();
    assert_eq!(got, denied("pool.add_to_other_config", "pool-admin, pool-operator"));
    let got = call(&node, "pool.add_to_other_config", add(reader, "EMPTY_FOLDERS")).await.unwrap_err();
    assert_eq!(got, denied("pool.add_to_other_config/key:empty_folders", VM_OPERATOR_AND_ABOVE));

    // XenCenter tags the tasks it creates with these keys.
    let task = call(&node, "task.create", vec![operator.clone(), Value::str("t"), Value::str("")]).await.unwrap();
    let tag = vec![operator.clone(), task.clone(), Value::str("XenCenterUUID"), Value::str("c0ffee")];
    call(&node, "task.add_to_other_config", tag).await.unwrap();
    let other = vec![operator.clone(), task, Value::str("anything"), Value::str("x")];
    let got = call(&node, "task.add_to_other_config", other).await.unwrap_err();
    assert_eq!(got, denied("task.add_to_other_config", "pool-admin, pool-operator"));
}
