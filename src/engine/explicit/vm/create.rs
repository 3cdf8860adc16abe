//! `VM.create(record)` (xapi `xapi_vm.ml` `create`, docs/xenapi-semantics.md §g.3): the record as
//! given, plus what xapi adds — a `mac_seed` in `other_config` when there is none, the domain type
//! derived from the boot policy when unspecified, a `VM_metrics` record linked to it, and the
//! fields only a running or snapshotted VM has left at their start values.

use super::super::super::implicit;
use super::super::super::tx::Tx;
use super::super::Call;
use super::get;
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::value::{Value, NULL_REF};

pub fn create(tx: &mut Tx, call: &Call) -> Result<Value, ApiError> {
    let Value::Ref(vm) = implicit::write(tx, call.class, call.msg, call.args)? else {
        return Err(ApiError::internal("VM.create made no VM"));
    };
    // Only a consistent suspended VM may be created suspended (it never is, here: no image).
    let power = get(&tx.state, f::vm::POWER_STATE, &vm);
    if power.as_str() == Some("Suspended") && get(&tx.state, f::vm::SUSPEND_VDI, &vm).as_str() == Some(NULL_REF) {
        return Err(ApiError::new(ErrorCode::VmBadPowerState, [vm.as_str(), "halted", "suspended"]));
    }
    if power.as_str() != Some("Suspended") {
        tx.put(f::vm::POWER_STATE, &vm, Value::Enum("Halted".into()));
        tx.put(f::vm::SUSPEND_VDI, &vm, Value::Ref(NULL_REF.into()));
    }
    let mut other = get(&tx.state, f::vm::OTHER_CONFIG, &vm).as_map().unwrap_or(&[]).to_vec();
    if !other.iter().any(|(k, _)| k.as_str() == Some("mac_seed")) {
        let seed = tx.new_uuid();
        other.insert(0, (Value::str("mac_seed"), Value::String(seed)));
        tx.put(f::vm::OTHER_CONFIG, &vm, Value::Map(other));
    }
    let domain_type = get(&tx.state, f::vm::DOMAIN_TYPE, &vm);
    if matches!(domain_type.as_str(), None | Some("" | "unspecified")) {
        let policy = get(&tx.state, f::vm::HVM_BOOT_POLICY, &vm);
        let derived = if policy.as_str().unwrap_or("").is_empty() { "pv" } else { "hvm" };
        tx.put(f::vm::DOMAIN_TYPE, &vm, Value::Enum(derived.into()));
    }
    let metrics = implicit::create_internal(
        tx,
        "VM_metrics",
        vec![
            ("current_domain_type", Value::Enum("unspecified".into())),
            ("VCPUs_utilisation", Value::Map(vec![(Value::Int(0), Value::Float(0.0))])),
        ],
    );
    tx.put(f::vm::METRICS, &vm, Value::Ref(metrics));
    for (key, value) in [
        (f::vm::IS_A_SNAPSHOT, Value::Bool(false)),
        (f::vm::IS_DEFAULT_TEMPLATE, Value::Bool(false)),
        (f::vm::IS_CONTROL_DOMAIN, Value::Bool(false)),
        (f::vm::DOMID, Value::Int(-1)),
        (f::vm::RESIDENT_ON, Value::Ref(NULL_REF.into())),
        (f::vm::GUEST_METRICS, Value::Ref(NULL_REF.into())),
    ] {
        if get(&tx.state, key, &vm) != value {
            tx.put(key, &vm, value);
        }
    }
    super::ops::refresh(tx, &vm);
    Ok(Value::Ref(vm))
}
