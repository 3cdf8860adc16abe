//! Whether a VM can run on a host (xapi `xapi_vm_helpers.ml` `assert_can_boot_here`,
//! docs/xenapi-semantics.md §g.1): `VM.assert_can_boot_here`, the checks of a start or resume,
//! and `VM.pool_migrate`, which in a one-host pool is a localhost migration.

use super::super::super::effect::{Done, Effect};
use super::super::super::state::State;
use super::super::super::tx::Tx;
use super::super::{Call, Long};
use super::ops::{self, Vm};
use super::{assert_memory_order, field, int, this_host, vm_uuid};
use crate::error::ApiError;
use crate::schema::schema;
use crate::value::{Value, NULL_REF};

pub const POOL_MIGRATE: Long =
    Long { op: "pool_migrate", check: check_migrate, plan: plan_migrate, finish: finish_migrate };

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
        m("memory_static_min"),
        m("memory_dynamic_min"),
        m("memory_dynamic_max"),
        m("memory_static_max"),
    )?;
    let metrics = text(field(state, "host", host, "metrics"));
    if field(state, "host_metrics", &metrics, "live").as_bool() == Some(false) {
        return Err(ApiError::new("HOST_NOT_LIVE", Vec::<String>::new()));
    }
    let control = field(state, "VM", vm, "is_control_domain").as_bool() == Some(true);
    let resident = text(field(state, "VM", vm, "resident_on")) == host;
    if !control && !resident && field(state, "host", host, "enabled").as_bool() == Some(false) {
        return Err(ApiError::new("HOST_DISABLED", [host]));
    }
    for sr in required_srs(state, vm) {
        if !sr_reachable(state, &sr, host) {
            return Err(ApiError::new("VM_REQUIRES_SR", [vm, sr.as_str()]));
        }
    }
    if memory == Memory::Check {
        let needed = m("memory_dynamic_max").max(m("memory_target"));
        let available = super::power::free_memory(state);
        if needed > available {
            return Err(ApiError::new("HOST_NOT_ENOUGH_FREE_MEMORY", [needed.to_string(), available.to_string()]));
        }
    }
    let vcpus = m("VCPUs_max");
    let pcpus = host_cpus(state, host);
    let unrestricted = field(state, "VM", vm, "platform")
        .as_map()
        .unwrap_or(&[])
        .iter()
        .any(|(k, v)| k.as_str() == Some("vcpu-unrestricted") && matches!(v.as_str(), Some("true" | "1")));
    if vcpus > pcpus && !unrestricted {
        return Err(ApiError::new("HOST_NOT_ENOUGH_PCPUS", [vcpus.to_string(), pcpus.to_string()]));
    }
    Ok(())
}

/// The host's CPU count (`cpu_info:cpu_count`).
fn host_cpus(state: &State, host: &str) -> i64 {
    let info = field(state, "host", host, "cpu_info");
    let count = info.as_map().unwrap_or(&[]).iter().find(|(k, _)| k.as_str() == Some("cpu_count")).cloned();
    count.and_then(|(_, v)| v.as_str()?.parse().ok()).unwrap_or(1)
}

/// The SRs of the VM's non-empty disks and of its suspend image.
fn required_srs(state: &State, vm: &str) -> Vec<String> {
    let mut vdis: Vec<String> = field(state, "VM", vm, "VBDs")
        .as_set()
        .unwrap_or(&[])
        .iter()
        .filter(|vbd| field(state, "VBD", vbd.as_str().unwrap_or(""), "empty").as_bool() != Some(true))
        .map(|vbd| text(field(state, "VBD", vbd.as_str().unwrap_or(""), "VDI")))
        .collect();
    vdis.push(text(field(state, "VM", vm, "suspend_VDI")));
    let mut srs: Vec<String> = vdis
        .iter()
        .filter(|v| !v.is_empty() && v.as_str() != NULL_REF)
        .map(|v| text(field(state, "VDI", v, "SR")))
        .filter(|sr| !sr.is_empty() && sr != NULL_REF)
        .collect();
    srs.sort();
    srs.dedup();
    srs
}

/// An SR is reachable from a host through a plugged PBD of that host.
fn sr_reachable(state: &State, sr: &str, host: &str) -> bool {
    field(state, "SR", sr, "PBDs").as_set().unwrap_or(&[]).iter().any(|pbd| {
        let pbd = pbd.as_str().unwrap_or("");
        text(field(state, "PBD", pbd, "host")) == host
            && field(state, "PBD", pbd, "currently_attached").as_bool() == Some(true)
    })
}

/// `VM.assert_can_boot_here(self, host)`.
pub fn assert_can_boot_here_call(state: &State, call: &Call) -> Result<Value, ApiError> {
    let vm = call.str(0);
    Vm::get(state, vm)?;
    let memory = if text(field(state, "VM", vm, "resident_on")) == call.str(1) { Memory::Skip } else { Memory::Check };
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
                    Err(ApiError::new("NO_HOSTS_AVAILABLE", Vec::<String>::new()))
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
    tx.set("VM", vm, "domid", Value::Int(*domid));
    tx.set("VM", vm, "resident_on", Value::Ref(call.str(1).to_string()));
    Ok(Value::String(String::new()))
}
