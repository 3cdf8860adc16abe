//! VM power operations as long operations (docs/xenapi-semantics.md §g.1): `check` runs in the
//! entry that marks the operation, `plan` names the host effect, `finish` records what the host
//! did in the entry that ends the operation.

use super::super::super::effect::{DiskFile, DomainSpec, Done, Effect};
use super::super::super::implicit::{create_internal, destroy};
use super::super::super::state::State;
use super::super::super::tx::Tx;
use super::super::{Call, Long};
use super::get;
use super::ops::{self, Vm};
use super::{field, int, sr_dir, this_host, vm_uuid};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::schema;
use crate::value::{Value, NULL_REF};

const fn long(op: &'static str, plan: super::super::PlanFn, finish: super::super::FinishFn) -> Long {
    Long { op, check: check_power, plan, finish, marks: None }
}

pub const START: Long = long("start", plan_start, finish_running);
pub const START_ON: Long = long("start_on", plan_start, finish_running);
pub const CLEAN_SHUTDOWN: Long = long("clean_shutdown", plan_clean_shutdown, finish_halted);
pub const HARD_SHUTDOWN: Long = long("hard_shutdown", plan_hard_shutdown, finish_halted);
pub const SHUTDOWN: Long = long("shutdown", plan_shutdown, finish_halted);
pub const CLEAN_REBOOT: Long = long("clean_reboot", plan_clean_reboot, finish_running);
pub const HARD_REBOOT: Long = long("hard_reboot", plan_hard_reboot, finish_running);
pub const PAUSE: Long = long("pause", plan_pause, finish_paused);
pub const UNPAUSE: Long = long("unpause", plan_unpause, finish_unpaused);
pub const SUSPEND: Long = long("suspend", plan_suspend, finish_suspended);
pub const RESUME: Long = long("resume", plan_resume, finish_running);
pub const RESUME_ON: Long = long("resume_on", plan_resume, finish_running);

/// xapi's lifecycle check for the row's operation, plus what a start or resume needs: a host
/// the VM can boot on (`boot.rs`).
fn check_power(state: &State, call: &Call, op: &str) -> Result<(), ApiError> {
    let vm = Vm::get(state, call.str(0))?;
    ops::check(&vm, op)?;
    if matches!(op, "start" | "start_on" | "resume" | "resume_on") {
        super::boot::check_placement(state, call, op)?;
    }
    Ok(())
}

/// The host's total memory less what its running and paused domains (the control domain too) hold.
pub fn free_memory(state: &State) -> i64 {
    let host = this_host(state);
    let metrics = get(state, f::host::METRICS, &host);
    let total = match get(state, f::host_metrics::MEMORY_TOTAL, metrics.as_str().unwrap_or("")) {
        Value::Int(i) => i,
        _ => 0,
    };
    let class = ops::vm_class();
    let used: i64 = state
        .table(class.id)
        .objects
        .keys()
        .filter(|r| matches!(get(state, f::vm::POWER_STATE, r).as_str(), Some("Running" | "Paused")))
        .map(|r| int(state, r, f::vm::MEMORY_DYNAMIC_MAX).max(int(state, r, f::vm::MEMORY_TARGET)))
        .sum();
    total - used
}

fn spec(state: &State, vm: &str) -> DomainSpec {
    let hvm = get(state, f::vm::HVM_BOOT_POLICY, vm).as_str().is_some_and(|p| !p.is_empty())
        || get(state, f::vm::DOMAIN_TYPE, vm).as_str() == Some("hvm");
    DomainSpec {
        vm_uuid: vm_uuid(state, vm),
        memory_bytes: int(state, vm, f::vm::MEMORY_DYNAMIC_MAX).max(0) as u64,
        vcpus: int(state, vm, f::vm::VCPUS_AT_STARTUP).max(1) as u32,
        hvm,
    }
}

fn plan_start(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let paused = call.args.get(1).and_then(Value::as_bool).unwrap_or(false);
    Ok(Effect::VmStart { spec: spec(state, call.str(0)), paused })
}

fn plan_clean_shutdown(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    Ok(Effect::VmShutdown { vm_uuid: vm_uuid(state, call.str(0)), clean: true, image: None })
}

fn plan_hard_shutdown(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let vm = call.str(0);
    // A suspended VM's image goes with it (its VDI record is dropped by `finish_halted`).
    let image = match get(state, f::vm::POWER_STATE, vm).as_str() {
        Some("Suspended") => suspend_image(state, vm)?,
        // A clean operation it cancelled may have halted the VM already: nothing left to do.
        Some("Halted") => return Ok(Effect::Nothing),
        _ => None,
    };
    Ok(Effect::VmShutdown { vm_uuid: vm_uuid(state, vm), clean: false, image })
}

/// `VM.shutdown`: clean when the guest runs, hard otherwise (xapi falls back to hard).
fn plan_shutdown(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    match get(state, f::vm::POWER_STATE, call.str(0)).as_str() {
        Some("Running") => plan_clean_shutdown(state, call, task),
        _ => plan_hard_shutdown(state, call, task),
    }
}

fn plan_clean_reboot(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    Ok(Effect::VmReboot { spec: spec(state, call.str(0)), clean: true })
}

/// A VM a cancelled clean operation halted meanwhile is started (xapi `Xapi_vm.hard_reboot`).
fn plan_hard_reboot(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let vm = call.str(0);
    match get(state, f::vm::POWER_STATE, vm).as_str() {
        Some("Halted") => Ok(Effect::VmStart { spec: spec(state, vm), paused: false }),
        Some("Suspended") => Err(ApiError::new(ErrorCode::VmBadPowerState, [vm, "running", "suspended"])),
        _ => Ok(Effect::VmReboot { spec: spec(state, vm), clean: false }),
    }
}

fn plan_pause(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    Ok(Effect::VmPause { vm_uuid: vm_uuid(state, call.str(0)) })
}

fn plan_unpause(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    Ok(Effect::VmUnpause { vm_uuid: vm_uuid(state, call.str(0)) })
}

/// The suspend image goes to the pool's suspend-image SR, under a uuid derived from the task (so
/// the outcome entry records the same VDI the effect wrote).
fn plan_suspend(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let vm = call.str(0);
    let sr = suspend_sr(state, vm).ok_or_else(|| ApiError::new(ErrorCode::VmNoSuspendSr, [vm]))?;
    let dir = sr_dir(state, &sr).ok_or_else(|| ApiError::new(ErrorCode::SrNotAttached, [sr.as_str()]))?;
    Ok(Effect::VmSuspend { vm_uuid: vm_uuid(state, vm), image: DiskFile { sr_dir: dir, uuid: derived_uuid(task, 0) } })
}

fn plan_resume(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let vm = call.str(0);
    let paused = call.args.get(1).and_then(Value::as_bool).unwrap_or(false);
    let image = suspend_image(state, vm)?.ok_or_else(|| ApiError::internal("a suspended VM without its image"))?;
    Ok(Effect::VmResume { spec: spec(state, vm), image, paused })
}

/// The file of a suspended VM's image (`suspend_VDI`), if it has one.
pub(super) fn suspend_image(state: &State, vm: &str) -> Result<Option<DiskFile>, ApiError> {
    let vdi = get(state, f::vm::SUSPEND_VDI, vm).as_str().unwrap_or(NULL_REF).to_string();
    let Some(uuid) = get(state, f::vdi::UUID, &vdi).as_str().map(String::from) else { return Ok(None) };
    let sr = get(state, f::vdi::SR, &vdi).as_str().unwrap_or("").to_string();
    let dir = sr_dir(state, &sr).ok_or_else(|| ApiError::new(ErrorCode::SrNotAttached, [sr.as_str()]))?;
    Ok(Some(DiskFile { sr_dir: dir, uuid }))
}

/// The VM's suspend SR, else the pool's suspend-image SR.
pub(super) fn suspend_sr(state: &State, vm: &str) -> Option<String> {
    let own = get(state, f::vm::SUSPEND_SR, vm).as_str().unwrap_or(NULL_REF).to_string();
    let sr = if own != NULL_REF && !own.is_empty() { own } else { super::pool_ref(state, "suspend_image_SR") };
    (sr != NULL_REF && !sr.is_empty()).then_some(sr)
}

/// A uuid chosen by an operation before its outcome is logged: derived from its task's ref.
pub fn derived_uuid(task: &str, index: u32) -> String {
    let mut h = blake3::Hasher::new_derive_key("xenledger 2026 operation uuid");
    h.update(task.as_bytes());
    h.update(&index.to_le_bytes());
    crate::value::uuid_v4(h.finalize().as_bytes())
}

pub(super) fn set_power(tx: &mut Tx, vm: &str, state: &str) {
    tx.put(f::vm::POWER_STATE, vm, Value::Enum(state.into()));
    let metrics = get(&tx.state, f::vm::METRICS, vm);
    if let Some(m) = metrics.as_str().filter(|m| tx.state.exists(schema().class("VM_metrics").unwrap().id, m)) {
        let m = m.to_string();
        let now = Value::DateTime(tx.ctx.now_secs());
        let flags = match state {
            "Running" => vec![Value::str("running")],
            "Paused" => vec![Value::str("paused")],
            _ => vec![],
        };
        tx.put(f::vm_metrics::STATE, &m, Value::Set(flags));
        tx.put(f::vm_metrics::LAST_UPDATED, &m, now);
    }
}

/// Devices follow the domain: attached while it exists.
fn attach_devices(tx: &mut Tx, vm: &str, attached: bool) {
    for class in ["VBD", "VIF"] {
        let devices = field(&tx.state, "VM", vm, &format!("{class}s"));
        for d in devices.as_set().unwrap_or(&[]).to_vec() {
            let d = d.as_str().unwrap_or("").to_string();
            if class == "VBD" && get(&tx.state, f::vbd::EMPTY, &d).as_bool() == Some(true) {
                continue;
            }
            if field(&tx.state, class, &d, "currently_attached").as_bool() != Some(attached) {
                tx.set(class, &d, "currently_attached", Value::Bool(attached));
            }
        }
    }
}

/// Running (or paused at start): domain, residency, metrics, consoles, the guest agent's report.
fn finish_running(tx: &mut Tx, call: &Call, _task: &str, effect: &Effect, done: &Done) -> Result<Value, ApiError> {
    let vm = call.str(0).to_string();
    let Done::Domain { domid } = done else { return Err(ApiError::internal("the host reported no domain")) };
    let paused = match effect {
        Effect::VmStart { paused, .. } | Effect::VmResume { paused, .. } => *paused,
        _ => false,
    };
    if let Effect::VmResume { .. } = effect {
        let vdi = get(&tx.state, f::vm::SUSPEND_VDI, &vm).as_str().unwrap_or("").to_string();
        let vdis = schema().class("VDI").expect("VDI");
        if tx.state.exists(vdis.id, &vdi) {
            destroy(tx, vdis, &vdi);
        }
        tx.put(f::vm::SUSPEND_VDI, &vm, Value::Ref(NULL_REF.into()));
    }
    let now = Value::DateTime(tx.ctx.now_secs());
    tx.put(f::vm::DOMID, &vm, Value::Int(*domid));
    let host = this_host(&tx.state);
    tx.put(f::vm::RESIDENT_ON, &vm, Value::Ref(host.clone()));
    set_power(tx, &vm, if paused { "Paused" } else { "Running" });
    metrics_at_start(tx, &vm, now.clone());
    consoles(tx, &vm, &host);
    guest_agent(tx, &vm, now);
    attach_devices(tx, &vm, true);
    Ok(Value::String(String::new()))
}

fn metrics_at_start(tx: &mut Tx, vm: &str, now: Value) {
    let metrics = get(&tx.state, f::vm::METRICS, vm).as_str().unwrap_or("").to_string();
    if !tx.state.exists(schema().class("VM_metrics").expect("VM_metrics").id, &metrics) {
        return;
    }
    let memory = Value::Int(int(&tx.state, vm, f::vm::MEMORY_DYNAMIC_MAX));
    let vcpus = Value::Int(int(&tx.state, vm, f::vm::VCPUS_AT_STARTUP));
    let hvm = get(&tx.state, f::vm::HVM_BOOT_POLICY, vm).as_str().is_some_and(|p| !p.is_empty());
    tx.put(f::vm::MEMORY_TARGET, vm, memory.clone());
    tx.put(f::vm_metrics::MEMORY_ACTUAL, &metrics, memory);
    tx.put(f::vm_metrics::VCPUS_NUMBER, &metrics, vcpus);
    tx.put(f::vm_metrics::START_TIME, &metrics, now);
    tx.put(f::vm_metrics::CURRENT_DOMAIN_TYPE, &metrics, Value::Enum(if hvm { "hvm" } else { "pv" }.into()));
}

/// A running domain has an `rfb` and a `vt100` console at `https://<host address>/console?ref=…`
/// (xapi creates them at start, and dom0's at first start: create_misc.ml).
pub fn consoles(tx: &mut Tx, vm: &str, host: &str) {
    if !get(&tx.state, f::vm::CONSOLES, vm).as_set().unwrap_or(&[]).is_empty() {
        return;
    }
    let address = get(&tx.state, f::host::ADDRESS, host).as_str().unwrap_or("localhost").to_string();
    for protocol in ["rfb", "vt100"] {
        let console = create_internal(
            tx,
            "console",
            vec![("protocol", Value::Enum(protocol.into())), ("VM", Value::Ref(vm.to_string()))],
        );
        let location = format!("https://{address}/console?ref={console}");
        tx.put(f::console::LOCATION, &console, Value::String(location));
    }
}

/// The simulated guest agent: OS and driver versions, and an address per VIF, as a guest with
/// its PV tools reports them (Ansible and Terraform wait for that address).
fn guest_agent(tx: &mut Tx, vm: &str, now: Value) {
    let vifs = get(&tx.state, f::vm::VIFS, vm).as_set().unwrap_or(&[]).to_vec();
    let mut networks = Vec::new();
    for vif in vifs {
        let vif = vif.as_str().unwrap_or("");
        let device = get(&tx.state, f::vif::DEVICE, vif).as_str().unwrap_or("0").to_string();
        let domid = int(&tx.state, vm, f::vm::DOMID);
        let ip = format!("10.0.{}.{}", (domid / 250) % 250, 2 + domid % 250);
        networks.push((Value::String(format!("{device}/ip")), Value::String(ip.clone())));
        networks.push((Value::String(format!("{device}/ipv4/0")), Value::String(ip)));
    }
    let given = vec![
        (
            "os_version",
            Value::string_map([("name", "xenledger simulated guest"), ("distro", "simulated"), ("uname", "6.1.0")]),
        ),
        ("PV_drivers_version", Value::string_map([("major", "9"), ("minor", "4"), ("micro", "0"), ("build", "1")])),
        ("PV_drivers_up_to_date", Value::Bool(true)),
        ("PV_drivers_detected", Value::Bool(true)),
        ("networks", Value::Map(networks)),
        ("other", Value::string_map([("feature-shutdown", "1"), ("feature-suspend", "1"), ("has-vendor-device", "0")])),
        ("live", Value::Bool(true)),
        ("last_updated", now),
    ];
    let old = get(&tx.state, f::vm::GUEST_METRICS, vm).as_str().unwrap_or("").to_string();
    let class = schema().class("VM_guest_metrics").expect("VM_guest_metrics");
    if tx.state.exists(class.id, &old) {
        for (name, value) in given {
            tx.set("VM_guest_metrics", &old, name, value);
        }
    } else {
        let gm = create_internal(tx, "VM_guest_metrics", given);
        tx.put(f::vm::GUEST_METRICS, vm, Value::Ref(gm));
    }
}

/// Halted: no domain, no residency, devices detached, consoles gone, a suspend image dropped.
fn finish_halted(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let vm = call.str(0).to_string();
    let vdi = get(&tx.state, f::vm::SUSPEND_VDI, &vm).as_str().unwrap_or(NULL_REF).to_string();
    let vdis = schema().class("VDI").expect("VDI");
    if tx.state.exists(vdis.id, &vdi) {
        destroy(tx, vdis, &vdi);
        tx.put(f::vm::SUSPEND_VDI, &vm, Value::Ref(NULL_REF.into()));
    }
    halt(tx, &vm);
    Ok(Value::String(String::new()))
}

/// The bookkeeping of a domain that is gone (xapi `force_state_reset_keep_current_operations`).
pub fn halt(tx: &mut Tx, vm: &str) {
    set_power(tx, vm, "Halted");
    tx.put(f::vm::DOMID, vm, Value::Int(-1));
    tx.put(f::vm::RESIDENT_ON, vm, Value::Ref(NULL_REF.into()));
    tx.put(f::vm::SCHEDULED_TO_BE_RESIDENT_ON, vm, Value::Ref(NULL_REF.into()));
    attach_devices(tx, vm, false);
    let consoles = schema().class("console").expect("console");
    for c in get(&tx.state, f::vm::CONSOLES, vm).as_set().unwrap_or(&[]).to_vec() {
        if let Some(c) = c.as_str().filter(|c| tx.state.exists(consoles.id, c)) {
            destroy(tx, consoles, c);
        }
    }
}

fn finish_paused(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    set_power(tx, call.str(0), "Paused");
    Ok(Value::String(String::new()))
}

fn finish_unpaused(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    set_power(tx, call.str(0), "Running");
    Ok(Value::String(String::new()))
}

/// Suspended: the image becomes a VDI of type `suspend` sized from the VM's memory.
fn finish_suspended(tx: &mut Tx, call: &Call, _task: &str, effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let vm = call.str(0).to_string();
    let Effect::VmSuspend { image, .. } = effect else { return Err(ApiError::internal("not a suspend")) };
    let sr = suspend_sr(&tx.state, &vm).unwrap_or_else(|| NULL_REF.into());
    let size = int(&tx.state, &vm, f::vm::MEMORY_STATIC_MAX);
    let vdi = super::clone::suspend_vdi(tx, &vm_uuid(&tx.state, &vm), image, sr, size);
    tx.put(f::vm::SUSPEND_VDI, &vm, Value::Ref(vdi));
    set_power(tx, &vm, "Suspended");
    tx.put(f::vm::DOMID, &vm, Value::Int(-1));
    tx.put(f::vm::RESIDENT_ON, &vm, Value::Ref(NULL_REF.into()));
    attach_devices(tx, &vm, false);
    Ok(Value::String(String::new()))
}
