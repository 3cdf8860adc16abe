//! Whether a VM can run on a host (xapi `xapi_vm_helpers.ml` `assert_can_boot_here`,
//! docs/xenapi-semantics.md §g.1): `VM.assert_can_boot_here`, the checks of a start or resume,
//! and `VM.pool_migrate`, which in a one-host pool is a localhost migration.

use super::super::super::effect::{Done, Effect};
use super::super::super::state::State;
use super::super::super::tx::Tx;
use super::super::{Call, Long};
use super::get;
use super::ops::{self, Vm};
use super::{assert_memory_order, int, this_host, vm_uuid};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::schema;
use crate::value::{Value, NULL_REF};

pub const POOL_MIGRATE: Long =
    Long { op: "pool_migrate", check: check_migrate, plan: plan_migrate, finish: finish_migrate, marks: None };

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// Which checks [`assert_can_boot_here`] makes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// The VM's memory must fit in what the host has free.
    Check,
    /// The VM already runs there (a localhost migration needs room for a second copy: checked).
    Skip,
}

/// xapi's order: the VM's own parameters, the host live, enabled (unless the VM is a control
/// domain or already resident there), the SRs of its disks reachable, free memory, enough CPUs.
pub fn assert_can_boot_here(state: &State, vm: &str, host: &str, memory: Memory) -> Result<(), ApiError> {
    let hosts = schema().class("host").expect("host");
    if !state.exists(hosts.id, host) {
        return Err(ApiError::handle_invalid("host", host));
    }
    let m = |n| int(state, vm, n);
    assert_memory_order(
        m(f::vm::MEMORY_STATIC_MIN),
        m(f::vm::MEMORY_DYNAMIC_MIN),
        m(f::vm::MEMORY_DYNAMIC_MAX),
        m(f::vm::MEMORY_STATIC_MAX),
    )?;
    let metrics = text(get(state, f::host::METRICS, host));
    if get(state, f::host_metrics::LIVE, &metrics).as_bool() == Some(false) {
        return Err(ApiError::new(ErrorCode::HostNotLive, Vec::<String>::new()));
    }
    let control = get(state, f::vm::IS_CONTROL_DOMAIN, vm).as_bool() == Some(true);
    let resident = text(get(state, f::vm::RESIDENT_ON, vm)) == host;
    if !control && !resident && get(state, f::host::ENABLED, host).as_bool() == Some(false) {
        return Err(ApiError::new(ErrorCode::HostDisabled, [host]));
    }
    for sr in required_srs(state, vm) {
        if !sr_reachable(state, &sr, host) {
            return Err(ApiError::new(ErrorCode::VmRequiresSr, [vm, sr.as_str()]));
        }
    }
    if memory == Memory::Check {
        let needed = m(f::vm::MEMORY_DYNAMIC_MAX).max(m(f::vm::MEMORY_TARGET));
        let available = super::power::free_memory(state);
        if needed > available {
            return Err(ApiError::new(ErrorCode::HostNotEnoughFreeMemory, [needed.to_string(), available.to_string()]));
        }
    }
    let vcpus = m(f::vm::VCPUS_MAX);
    let pcpus = host_cpus(state, host);
    let unrestricted = get(state, f::vm::PLATFORM, vm)
        .as_map()
        .unwrap_or(&[])
        .iter()
        .any(|(k, v)| k.as_str() == Some("vcpu-unrestricted") && matches!(v.as_str(), Some("true" | "1")));
    if vcpus > pcpus && !unrestricted {
        return Err(ApiError::new(ErrorCode::HostNotEnoughPcpus, [vcpus.to_string(), pcpus.to_string()]));
    }
    Ok(())
}

/// The host's CPU count (`cpu_info:cpu_count`).
fn host_cpus(state: &State, host: &str) -> i64 {
    let info = get(state, f::host::CPU_INFO, host);
    let count = info.as_map().unwrap_or(&[]).iter().find(|(k, _)| k.as_str() == Some("cpu_count")).cloned();
    count.and_then(|(_, v)| v.as_str()?.parse().ok()).unwrap_or(1)
}

/// The SRs of the VM's non-empty disks and of its suspend image.
fn required_srs(state: &State, vm: &str) -> Vec<String> {
    let mut vdis: Vec<String> = get(state, f::vm::VBDS, vm)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .filter(|vbd| get(state, f::vbd::EMPTY, vbd.as_str().unwrap_or("")).as_bool() != Some(true))
        .map(|vbd| text(get(state, f::vbd::VDI, vbd.as_str().unwrap_or(""))))
        .collect();
    vdis.push(text(get(state, f::vm::SUSPEND_VDI, vm)));
    let mut srs: Vec<String> = vdis
        .iter()
        .filter(|v| !v.is_empty() && v.as_str() != NULL_REF)
        .map(|v| text(get(state, f::vdi::SR, v)))
        .filter(|sr| !sr.is_empty() && sr != NULL_REF)
        .collect();
    srs.sort();
    srs.dedup();
    srs
}

/// An SR is reachable from a host through a plugged PBD of that host.
fn sr_reachable(state: &State, sr: &str, host: &str) -> bool {
    get(state, f::sr::PBDS, sr).as_set().unwrap_or(&[]).iter().any(|pbd| {
        let pbd = pbd.as_str().unwrap_or("");
        text(get(state, f::pbd::HOST, pbd)) == host
            && get(state, f::pbd::CURRENTLY_ATTACHED, pbd).as_bool() == Some(true)
    })
}

/// `VM.assert_can_boot_here(self, host)`.
pub fn assert_can_boot_here_call(state: &State, call: &Call) -> Result<Value, ApiError> {
    let vm = call.str(0);
    Vm::get(state, vm)?;
    let memory = if text(get(state, f::vm::RESIDENT_ON, vm)) == call.str(1) { Memory::Skip } else { Memory::Check };
    assert_can_boot_here(state, vm, call.str(1), memory)?;
    Ok(Value::String(String::new()))
}

/// The checks of a start (`start_on` and `resume_on` name the host; `start` and `resume` place the
/// VM, and a host that fails for any reason but memory is no host at all: `NO_HOSTS_AVAILABLE`).
pub fn check_placement(state: &State, call: &Call, op: &str) -> Result<(), ApiError> {
    let vm = call.str(0);
    match op {
        "start_on" | "resume_on" => assert_can_boot_here(state, vm, call.str(1), Memory::Check),
        _ => {
            let host = this_host(state);
            match assert_can_boot_here(state, vm, &host, Memory::Skip) {
                Err(e) if e.code != "MEMORY_CONSTRAINT_VIOLATION_ORDER" => {
                    Err(ApiError::new(ErrorCode::NoHostsAvailable, Vec::<String>::new()))
                }
                Err(e) => Err(e),
                Ok(()) => assert_can_boot_here(state, vm, &host, Memory::Check),
            }
        }
    }
}

/// `VM.pool_migrate(vm, host, options)`: the VM's own host is the only one, so this is a
/// localhost migration, which xapi allows; it needs room for the second copy while it runs.
fn check_migrate(state: &State, call: &Call, op: &str) -> Result<(), ApiError> {
    let vm = call.str(0);
    ops::check(&Vm::get(state, vm)?, op)?;
    assert_can_boot_here(state, vm, call.str(1), Memory::Check)
}

fn plan_migrate(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    Ok(Effect::VmMigrate { vm_uuid: vm_uuid(state, call.str(0)) })
}

fn finish_migrate(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, done: &Done) -> Result<Value, ApiError> {
    let Done::Domain { domid } = done else { return Err(ApiError::internal("the host reported no domain")) };
    let vm = call.str(0);
    tx.put(f::vm::DOMID, vm, Value::Int(*domid));
    tx.put(f::vm::RESIDENT_ON, vm, Value::Ref(call.str(1).to_string()));
    Ok(Value::String(String::new()))
}
