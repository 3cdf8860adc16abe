//! `VM.power_state_reset` (xapi `xapi_vm.ml` `power_state_reset`, docs/xenapi-semantics.md §g.1):
//! marks a VM halted when the host has no domain for it; refused for the control domain and for
//! a VM whose domain exists.

use super::super::super::effect::{Done, Effect};
use super::super::super::state::State;
use super::super::super::tx::Tx;
use super::super::{Call, Long};
use super::get;
use super::ops::Vm;
use super::vm_uuid;
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::value::Value;

pub const POWER_STATE_RESET: Long =
    Long { op: "power_state_reset", check: check_reset, plan: plan_reset, finish: finish_reset, marks: None };

/// No lifecycle check (xapi runs it outside `with_vm_operation`): only the control domain is refused.
fn check_reset(state: &State, call: &Call, _op: &str) -> Result<(), ApiError> {
    if Vm::get(state, call.str(0))?.is_control_domain {
        return Err(ApiError::new(ErrorCode::CannotResetControlDomain, [call.str(0)]));
    }
    Ok(())
}

/// A running or paused VM: ask the host whether its domain exists.
fn plan_reset(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let vm = call.str(0);
    Ok(match get(state, f::vm::POWER_STATE, vm).as_str() {
        Some("Running" | "Paused") => Effect::VmStat { vm_uuid: vm_uuid(state, vm) },
        _ => Effect::Nothing,
    })
}

/// `DOMAIN_EXISTS [vm]` (xapi sends the VM alone), else xapi's `force_state_reset` to Halted:
/// every operation mark cleared, devices detached, no residency; `suspend_VDI` is kept.
fn finish_reset(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, done: &Done) -> Result<Value, ApiError> {
    let vm = call.str(0);
    if let Done::DomainExists(true) = done {
        return Err(ApiError::new(ErrorCode::DomainExists, [vm]));
    }
    tx.put(f::vm::CURRENT_OPERATIONS, vm, Value::Map(Vec::new()));
    tx.put(f::vm::REQUIRES_REBOOT, vm, Value::Bool(false));
    super::power::halt(tx, vm);
    Ok(Value::String(String::new()))
}
