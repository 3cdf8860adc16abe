//! The messages (alerts) a VM operation leaves once it has succeeded, as xapi's
//! `message_forwarding.ml` `create_vm_message` makes them: class `VM`, the VM's uuid, priority 5
//! and a body naming the VM (names and priorities from xapi `api_messages.ml`). A failed
//! operation leaves none; `VM.clone` and `VM.copy` leave none either.

use super::super::super::tx::Tx;
use super::super::message::alert;
use super::super::Call;
use super::get;
use super::{this_host, vm_uuid};
use crate::schema::generated::field as f;
use crate::value::Value;

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// Logs the message for operation `op` on `call`'s VM, if the operation has one.
pub fn after(tx: &mut Tx, call: &Call, op: &str) {
    let (vm, extra) = match op {
        // `revert` runs on the snapshot; the message is about its VM.
        "revert" => (text(get(&tx.state, f::vm::SNAPSHOT_OF, call.str(0))), call.str(0).to_string()),
        _ => (call.str(0).to_string(), String::new()),
    };
    let state = &tx.state;
    let name = text(get(state, f::vm::NAME_LABEL, &vm));
    let uuid = vm_uuid(state, &vm);
    let who = format!("VM '{name}' (uuid: {uuid})");
    let host = match op {
        "start_on" | "resume_on" | "pool_migrate" => call.str(1).to_string(),
        _ => this_host(state),
    };
    let on_host = || {
        format!(
            "{}: {} (uuid: {})",
            "host",
            text(get(state, f::host::NAME_LABEL, &host)),
            text(get(state, f::host::UUID, &host))
        )
    };
    let (message, body) = match op {
        "start" | "start_on" => ("VM_STARTED", format!("{who} started on {}", on_host())),
        "clean_shutdown" | "shutdown" => ("VM_SHUTDOWN", format!("{who} shutdown")),
        "hard_shutdown" => ("VM_SHUTDOWN", format!("{who} shutdown forcibly")),
        "clean_reboot" => ("VM_REBOOTED", format!("{who} rebooted cleanly")),
        "hard_reboot" => ("VM_REBOOTED", format!("{who} rebooted forcibly")),
        "suspend" => ("VM_SUSPENDED", format!("{who} suspended")),
        "resume" | "resume_on" => ("VM_RESUMED", format!("{who} resumed on {}", on_host())),
        "pause" => ("VM_PAUSED", format!("{who} paused")),
        "unpause" => ("VM_UNPAUSED", format!("{who} unpaused")),
        "snapshot" => ("VM_SNAPSHOTTED", format!("{who} snapshotted, snapshot name: {}", call.str(1))),
        "checkpoint" => ("VM_CHECKPOINTED", format!("{who} checkpointed, snapshot name: {}", call.str(1))),
        "revert" => {
            let snapshot = text(get(state, f::vm::NAME_LABEL, &extra));
            let snapshot_uuid = vm_uuid(state, &extra);
            ("VM_SNAPSHOT_REVERTED", format!("{who} reverted to snapshot: {snapshot} (uuid {snapshot_uuid})"))
        }
        "pool_migrate" => {
            let h = format!(
                "'{}' (uuid: {})",
                text(get(state, f::host::NAME_LABEL, &host)),
                text(get(state, f::host::UUID, &host))
            );
            ("VM_MIGRATED", format!("{who} migrated from host {h} to host {h}"))
        }
        _ => return,
    };
    alert(tx, message, 5, "VM", &uuid, body);
}
