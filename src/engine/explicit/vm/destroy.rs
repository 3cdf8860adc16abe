//! `VM.destroy` (xapi `xapi_vm.ml` `destroy`, `xapi_vm_helpers.ml` `destroy`;
//! docs/xenapi-semantics.md §g.4): a halted or suspended VM, not a default template, goes with
//! its VBDs, VIFs, metrics, guest metrics, consoles and blobs; its disks stay.

use super::super::super::effect::{Done, Effect};
use super::super::super::implicit::destroy as destroy_object;
use super::super::super::state::State;
use super::super::super::tx::Tx;
use super::super::{Call, Long};
use super::get;
use super::{check_op, field};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::schema;
use crate::value::{Value, NULL_REF};

/// A long operation with no host effect: marked like the others (so a concurrent operation is
/// refused), then the records go in the outcome entry.
pub const DESTROY: Long =
    Long { op: "destroy", check: check_op, plan: plan_nothing, finish: finish_destroy, marks: None };

fn plan_nothing(_state: &State, _call: &Call, _task: &str) -> Result<Effect, ApiError> {
    Ok(Effect::Nothing)
}

fn refs(v: Value) -> Vec<String> {
    v.as_set().unwrap_or(&[]).iter().filter_map(|r| r.as_str().map(String::from)).collect()
}

fn finish_destroy(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let vm = call.str(0).to_string();
    let vms = schema().class("VM").expect("VM");
    if !tx.state.exists(vms.id, &vm) {
        return Err(ApiError::handle_invalid("VM", &vm));
    }
    let other = get(&tx.state, f::vm::OTHER_CONFIG, &vm);
    let default = other
        .as_map()
        .unwrap_or(&[])
        .iter()
        .any(|(k, v)| k.as_str() == Some("default_template") && v.as_str() == Some("true"));
    if default {
        return Err(ApiError::new(ErrorCode::VmCannotDeleteDefaultTemplate, Vec::<String>::new()));
    }
    // Its children now descend from its parent.
    let parent = get(&tx.state, f::vm::PARENT, &vm);
    for child in refs(get(&tx.state, f::vm::CHILDREN, &vm)) {
        tx.put(f::vm::PARENT, &child, parent.clone());
    }
    for (class, list, metrics) in
        [("VBD", "VBDs", Some("metrics")), ("VIF", "VIFs", Some("metrics")), ("console", "consoles", None)]
    {
        let c = schema().class(class).expect("a device class");
        for device in refs(field(&tx.state, "VM", &vm, list)) {
            if let Some(m) = metrics {
                drop_ref(tx, class, &device, m);
            }
            destroy_object(tx, c, &device);
        }
    }
    for class in ["blob", "VTPM"] {
        let c = schema().class(class).expect("a class");
        let list = if class == "blob" { "blobs" } else { "VTPMs" };
        let owned: Vec<String> = match field(&tx.state, "VM", &vm, list) {
            Value::Map(entries) => entries.iter().filter_map(|(_, r)| r.as_str().map(String::from)).collect(),
            v => refs(v),
        };
        for r in owned {
            if tx.state.exists(c.id, &r) {
                destroy_object(tx, c, &r);
            }
        }
    }
    drop_ref(tx, "VM", &vm, "metrics");
    drop_ref(tx, "VM", &vm, "guest_metrics");
    destroy_object(tx, vms, &vm);
    Ok(Value::String(String::new()))
}

/// Destroys the object a ref field of `class` `object` names (a metrics record), if it exists.
fn drop_ref(tx: &mut Tx, class: &str, object: &str, name: &str) {
    let target = field(&tx.state, class, object, name);
    let Some(r) = target.as_str().filter(|r| *r != NULL_REF) else { return };
    let c = schema().class(class).expect("a class");
    let Some(f) = c.field(name) else { return };
    let crate::schema::Ty::Ref(target_class) = &c.fields[f].ty else { return };
    let t = schema().class(target_class).expect("a ref's class");
    if tx.state.exists(t.id, r) {
        let r = r.to_string();
        destroy_object(tx, t, &r);
    }
}
