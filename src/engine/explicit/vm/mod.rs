//! The VM's explicit messages (docs/xenapi-semantics.md §g): power operations (`power.rs`),
//! clone/copy and provisioning (`clone.rs`), and the operations tables (`ops.rs`).

pub mod alerts;
pub mod boot;
pub mod clone;
pub mod create;
pub mod destroy;
pub mod ops;
pub mod power;
pub mod queries;
pub mod reset;
pub mod setters;
pub mod snapshot;

use super::super::state::State;
use super::Call;
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::{schema, FieldKey};
use crate::value::{Value, NULL_REF};

/// A field of an object, or `Null` if either is missing.
pub fn field(state: &State, class: &str, reference: &str, name: &str) -> Value {
    let Some(c) = schema().class(class) else { return Value::Null };
    let Some(f) = c.field(name) else { return Value::Null };
    state.get(c.id, reference).map_or(Value::Null, |o| o.fields[f].clone())
}

/// A field of an object, named at compile time; `Null` if the object is missing.
pub fn get(state: &State, key: FieldKey, reference: &str) -> Value {
    state.get(key.class().id, reference).map_or(Value::Null, |o| o.fields[key.index].clone())
}

/// An int field of a VM (0 if it is missing).
pub fn int(state: &State, vm: &str, key: FieldKey) -> i64 {
    match get(state, key, vm) {
        Value::Int(i) => i,
        _ => 0,
    }
}

pub fn vm_uuid(state: &State, vm: &str) -> String {
    get(state, f::vm::UUID, vm).as_str().unwrap_or("").to_string()
}

/// The pool (there is one once the first start is logged).
pub fn the_pool(state: &State) -> Option<String> {
    let pool = schema().class("pool").expect("pool");
    state.table(pool.id).objects.keys().next().map(|r| r.to_string())
}

/// A ref-typed field of the pool (`master`, `default_SR`, …), `OpaqueRef:NULL` without a pool.
pub fn pool_ref(state: &State, name: &str) -> String {
    let pool = the_pool(state).unwrap_or_default();
    field(state, "pool", &pool, name).as_str().unwrap_or(NULL_REF).to_string()
}

/// This host: the pool's master.
pub fn this_host(state: &State) -> String {
    pool_ref(state, "master")
}

/// The directory of a file-backed SR: its plugged PBD's `device_config:location`.
pub fn sr_dir(state: &State, sr: &str) -> Option<String> {
    for pbd in get(state, f::sr::PBDS, sr).as_set().unwrap_or(&[]) {
        let pbd = pbd.as_str().unwrap_or("");
        let config = get(state, f::pbd::DEVICE_CONFIG, pbd);
        let location = config.as_map().unwrap_or(&[]).iter().find(|(k, _)| k.as_str() == Some("location"));
        if let Some((_, v)) = location {
            return v.as_str().map(String::from);
        }
    }
    None
}

/// The check of every VM operation row: xapi's lifecycle rules for the row's operation.
pub fn check_op(state: &State, call: &Call, op: &str) -> Result<(), ApiError> {
    ops::check(&ops::Vm::get(state, call.str(0))?, op)
}

/// static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max, else `MEMORY_CONSTRAINT_VIOLATION_ORDER`
/// with no parameters (xapi `xapi_vm_memory_constraints.ml` `assert_valid`).
pub fn assert_memory_order(smin: i64, dmin: i64, dmax: i64, smax: i64) -> Result<(), ApiError> {
    if smin <= dmin && dmin <= dmax && dmax <= smax {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::MemoryConstraintViolationOrder, Vec::<String>::new()))
    }
}

/// `VM.set_memory_limits(self, static_min, static_max, dynamic_min, dynamic_max)`: halted VMs
/// only; the four must keep static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max (xapi
/// `xapi_vm_memory_constraints.ml`).
pub fn set_memory_limits(tx: &mut super::super::tx::Tx, call: &Call) -> Result<Value, ApiError> {
    let a = super::args::VmSetMemoryLimits::from(call);
    check_op(&tx.state, call, "changing_memory_limits")?;
    assert_memory_order(a.static_min, a.dynamic_min, a.dynamic_max, a.static_max)?;
    for (key, v) in [
        (f::vm::MEMORY_STATIC_MIN, a.static_min),
        (f::vm::MEMORY_STATIC_MAX, a.static_max),
        (f::vm::MEMORY_DYNAMIC_MIN, a.dynamic_min),
        (f::vm::MEMORY_DYNAMIC_MAX, a.dynamic_max),
    ] {
        tx.put(key, &a.this, Value::Int(v));
    }
    ops::refresh(tx, &a.this);
    Ok(Value::String(String::new()))
}

/// `VM.set_is_a_template(self, value)` (xapi `xapi_vm_helpers.ml` `set_is_a_template`): making a
/// template is the `make_into_template` operation (halted VMs) and clears `ha_always_run`;
/// making a VM of a template records its install time.
pub fn set_is_a_template(tx: &mut super::super::tx::Tx, call: &Call) -> Result<Value, ApiError> {
    let vm = call.str(0).to_string();
    let value = call.args.get(1).and_then(Value::as_bool).unwrap_or(false);
    if value {
        check_op(&tx.state, call, "make_into_template")?;
        tx.put(f::vm::HA_ALWAYS_RUN, &vm, Value::Bool(false));
    } else {
        ops::Vm::get(&tx.state, &vm)?;
        let metrics = get(&tx.state, f::vm::METRICS, &vm).as_str().unwrap_or("").to_string();
        if tx.state.exists(schema().class("VM_metrics").expect("VM_metrics").id, &metrics) {
            let now = Value::DateTime(tx.ctx.now_secs());
            tx.put(f::vm_metrics::INSTALL_TIME, &metrics, now);
        }
    }
    tx.put(f::vm::IS_A_TEMPLATE, &vm, Value::Bool(value));
    ops::refresh(tx, &vm);
    Ok(Value::String(String::new()))
}
