//! The host's explicit messages (xapi `xapi_host.ml`, docs/xenapi-semantics.md §i): enable and
//! disable, reboot and shutdown (a disabled host only; its running VMs are stopped), evacuate
//! (a one-host pool has nowhere to move a VM to), plugins (none are installed).

use super::super::effect::{Done, Effect};
use super::super::state::State;
use super::super::tx::Tx;
use super::vm::get;
use super::{Call, Long};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::schema;
use crate::value::Value;

pub const REBOOT: Long = Long { op: "reboot", check: check_power, plan: plan_power, finish: finish_power, marks: None };
pub const SHUTDOWN: Long =
    Long { op: "shutdown", check: check_power, plan: plan_power, finish: finish_power, marks: None };

fn exists(state: &State, host: &str) -> Result<(), ApiError> {
    if state.exists(schema().class("host").expect("host").id, host) {
        Ok(())
    } else {
        Err(ApiError::handle_invalid("host", host))
    }
}

fn void() -> Result<Value, ApiError> {
    Ok(Value::String(String::new()))
}

/// What the host allows (xapi `xapi_host_helpers.ml` `valid_operations`): reboot and shutdown
/// only once disabled; no VM starts or resumes on a disabled host.
pub fn refresh(tx: &mut Tx, host: &str) {
    let enabled = get(&tx.state, f::host::ENABLED, host).as_bool() != Some(false);
    let ops: &[&str] = if enabled {
        &["provision", "evacuate", "vm_start", "vm_resume", "vm_migrate"]
    } else {
        &["provision", "evacuate", "shutdown", "reboot", "vm_migrate"]
    };
    let value = Value::Set(ops.iter().map(|op| Value::Enum((*op).into())).collect());
    if get(&tx.state, f::host::ALLOWED_OPERATIONS, host) != value {
        tx.put(f::host::ALLOWED_OPERATIONS, host, value);
    }
}

fn set_enabled(tx: &mut Tx, host: &str, enabled: bool) {
    if get(&tx.state, f::host::ENABLED, host).as_bool() != Some(enabled) {
        tx.put(f::host::ENABLED, host, Value::Bool(enabled));
    }
    refresh(tx, host);
}

/// `host.disable(host)`: no new VM starts here; idempotent.
pub fn disable(tx: &mut Tx, call: &Call) -> Result<Value, ApiError> {
    exists(&tx.state, call.str(0))?;
    set_enabled(tx, call.str(0), false);
    void()
}

/// `host.enable(host)`.
pub fn enable(tx: &mut Tx, call: &Call) -> Result<Value, ApiError> {
    exists(&tx.state, call.str(0))?;
    set_enabled(tx, call.str(0), true);
    void()
}

/// VMs with a domain on the host (running or paused), the control domain aside.
fn guests(state: &State, host: &str) -> Vec<String> {
    let vms = schema().class("VM").expect("VM");
    let (resident, power, control) = (
        vms.field("resident_on").expect("resident_on"),
        vms.field("power_state").expect("power_state"),
        vms.field("is_control_domain").expect("is_control_domain"),
    );
    state
        .table(vms.id)
        .objects
        .iter()
        .filter(|(_, o)| {
            o.fields[resident].as_str() == Some(host)
                && matches!(o.fields[power].as_str(), Some("Running" | "Paused"))
                && o.fields[control].as_bool() != Some(true)
        })
        .map(|(r, _)| r.to_string())
        .collect()
}

/// `HOST_NOT_DISABLED []` unless disabled first (xapi `assert_host_disabled`).
fn check_power(state: &State, call: &Call, _op: &str) -> Result<(), ApiError> {
    let host = call.str(0);
    exists(state, host)?;
    if get(state, f::host::ENABLED, host).as_bool() != Some(false) {
        return Err(ApiError::new(ErrorCode::HostNotDisabled, Vec::<String>::new()));
    }
    Ok(())
}

/// The VMs still running here are stopped (xapi evacuates them; a one-host pool can only shut
/// them down, as its `ensure_no_vms` does last).
fn plan_power(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let vm_uuids = guests(state, call.str(0)).iter().map(|vm| super::vm::vm_uuid(state, vm)).collect();
    Ok(Effect::HostPower { vm_uuids })
}

/// After a reboot the host is back and enabled; after a shutdown it is not live until the server
/// starts again.
fn finish_power(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let host = call.str(0);
    for vm in guests(&tx.state, host) {
        super::vm::power::halt(tx, &vm);
        super::vm::ops::refresh(tx, &vm);
    }
    let now = Value::DateTime(tx.ctx.now_secs());
    let metrics = get(&tx.state, f::host::METRICS, host).as_str().unwrap_or("").to_string();
    if call.msg.name == "reboot" {
        set_enabled(tx, host, true);
        let dom0 = get(&tx.state, f::host::CONTROL_DOMAIN, host).as_str().unwrap_or("").to_string();
        let dom0_metrics = get(&tx.state, f::vm::METRICS, &dom0).as_str().unwrap_or("").to_string();
        if tx.state.exists(schema().class("VM_metrics").expect("VM_metrics").id, &dom0_metrics) {
            tx.put(f::vm_metrics::START_TIME, &dom0_metrics, now.clone());
        }
    } else if tx.state.exists(schema().class("host_metrics").expect("host_metrics").id, &metrics) {
        tx.put(f::host_metrics::LIVE, &metrics, Value::Bool(false));
    }
    if tx.state.exists(schema().class("host_metrics").expect("host_metrics").id, &metrics) {
        tx.put(f::host_metrics::LAST_UPDATED, &metrics, now);
    }
    void()
}

/// `host.assert_can_evacuate(host)` and the check of `host.evacuate`: with no other host in
/// the pool, a host can be evacuated only when no VM runs on it.
pub fn assert_can_evacuate(state: &State, call: &Call) -> Result<Value, ApiError> {
    let host = call.str(0);
    exists(state, host)?;
    if !guests(state, host).is_empty() {
        return Err(ApiError::new(ErrorCode::NoHostsAvailable, Vec::<String>::new()));
    }
    void()
}

/// `host.evacuate(host, network, evacuate_batch_size)`: nothing to move when nothing runs.
pub fn evacuate(tx: &mut Tx, call: &Call) -> Result<Value, ApiError> {
    assert_can_evacuate(&tx.state, call)
}

/// `host.call_plugin(host, plugin, fn, args)`: no plugins are installed here.
pub fn call_plugin(state: &State, call: &Call) -> Result<Value, ApiError> {
    let a = super::args::HostCallPlugin::from(call);
    exists(state, &a.host)?;
    Err(ApiError::new(ErrorCode::XenapiMissingPlugin, [a.plugin]))
}
