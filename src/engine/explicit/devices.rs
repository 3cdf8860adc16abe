//! Plugging a VM's disks and network interfaces while it runs, and a CD's media
//! (docs/xenapi-semantics.md §h.1, §h.2; xapi `xapi_vbd_helpers.ml` and `xapi_vif_helpers.ml`
//! `valid_operations`, `xapi_vbd.ml`, `xapi_vif.ml`). The simulated hypervisor has nothing to do
//! for a hot-plug beyond what the records say, so these are single entries.

use super::super::state::State;
use super::super::tx::Tx;
use super::vm::get;
use super::Call;
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::schema::{ClassKey, FieldKey};
use crate::value::{Value, NULL_REF};

type Reply = Result<Value, ApiError>;

fn void() -> Reply {
    Ok(Value::String(String::new()))
}

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn flag(state: &State, key: FieldKey, r: &str) -> bool {
    get(state, key, r).as_bool() == Some(true)
}

/// A VBD's or VIF's fields, by device class.
struct Kind {
    class: ClassKey,
    name: &'static str,
    vm: FieldKey,
    attached: FieldKey,
    current: FieldKey,
    hotplug: &'static str,
}

const VBD: Kind = Kind {
    class: class::VBD,
    name: "VBD",
    vm: f::vbd::VM,
    attached: f::vbd::CURRENTLY_ATTACHED,
    current: f::vbd::CURRENT_OPERATIONS,
    hotplug: "can_use_hotplug_vbd",
};

const VIF: Kind = Kind {
    class: class::VIF,
    name: "VIF",
    vm: f::vif::VM,
    attached: f::vif::CURRENTLY_ATTACHED,
    current: f::vif::CURRENT_OPERATIONS,
    hotplug: "can_use_hotplug_vif",
};

/// xapi's `valid_operations` for plug (`plug = true`) and unplug, in its order: another
/// operation on the device, `VBD_NOT_UNPLUGGABLE`, the VM's power state and the device's
/// attachment, the VM shutting down, an HVM guest without hotplug drivers.
fn check_plug(state: &State, kind: &Kind, device: &str, plug: bool) -> Result<String, ApiError> {
    if !state.exists(kind.class.get().id, device) {
        return Err(ApiError::handle_invalid(kind.name, device));
    }
    if let Some((task, op)) = get(state, kind.current, device).as_map().and_then(|m| m.first()) {
        let (op, task) = (text(op.clone()), text(task.clone()));
        return Err(ApiError::new(ErrorCode::OtherOperationInProgress, [kind.name, device, &op, &task]));
    }
    if kind.name == "VBD" && !plug && !flag(state, f::vbd::UNPLUGGABLE, device) {
        return Err(ApiError::new(ErrorCode::VbdNotUnpluggable, [device]));
    }
    let vm = text(get(state, kind.vm, device));
    let power = text(get(state, f::vm::POWER_STATE, &vm));
    if power != "Running" {
        return Err(ApiError::new(ErrorCode::VmBadPowerState, [vm.as_str(), "running", &power.to_ascii_lowercase()]));
    }
    let attached = flag(state, kind.attached, device);
    if plug && attached {
        return Err(ApiError::new(ErrorCode::DeviceAlreadyAttached, [device]));
    }
    if !plug && !attached {
        return Err(ApiError::new(ErrorCode::DeviceAlreadyDetached, [device]));
    }
    let vm_ops = get(state, f::vm::CURRENT_OPERATIONS, &vm);
    let stopping = vm_ops
        .as_map()
        .unwrap_or(&[])
        .iter()
        .find(|(_, op)| matches!(op.as_str(), Some("clean_shutdown" | "hard_shutdown" | "suspend" | "pause")));
    if let Some((_, op)) = stopping {
        let text = format!("Current operation on VM:{vm} is {}", op.as_str().unwrap_or(""));
        return Err(ApiError::new(ErrorCode::OperationNotAllowed, [text]));
    }
    check_hotplug_drivers(state, kind, &vm)?;
    Ok(vm)
}

/// An HVM guest needs PV drivers that can hot-plug (xapi `xapi_pv_driver_version.ml`
/// `make_error_opt`): `VM_MISSING_PV_DRIVERS [vm]`, or the guest's own refusal.
fn check_hotplug_drivers(state: &State, kind: &Kind, vm: &str) -> Result<(), ApiError> {
    if text(get(state, f::vm::DOMAIN_TYPE, vm)) != "hvm" {
        return Ok(());
    }
    let gm = text(get(state, f::vm::GUEST_METRICS, vm));
    let can = match kind.hotplug {
        "can_use_hotplug_vbd" => text(get(state, f::vm_guest_metrics::CAN_USE_HOTPLUG_VBD, &gm)),
        _ => text(get(state, f::vm_guest_metrics::CAN_USE_HOTPLUG_VIF, &gm)),
    };
    match can.as_str() {
        "yes" => return Ok(()),
        "no" => {
            let text = format!("VM states it does not support {} hotplug.", kind.name);
            return Err(ApiError::new(ErrorCode::OperationNotAllowed, [text]));
        }
        _ => {}
    }
    if flag(state, f::vm_guest_metrics::PV_DRIVERS_DETECTED, &gm) {
        return Ok(());
    }
    if super::vm::ops::has_pv_drivers(&get(state, f::vm_guest_metrics::PV_DRIVERS_VERSION, &gm)) {
        return Ok(());
    }
    Err(ApiError::new(ErrorCode::VmMissingPvDrivers, [vm]))
}

fn set_attached(tx: &mut Tx, kind: &Kind, device: &str, attached: bool) -> Reply {
    tx.put(kind.attached, device, Value::Bool(attached));
    void()
}

/// `VBD.plug`: a read-only disk of an HVM guest cannot be plugged (its emulator needs it writable).
pub fn vbd_plug(tx: &mut Tx, call: &Call) -> Reply {
    let vbd = call.str(0);
    let vm = check_plug(&tx.state, &VBD, vbd, true)?;
    let is_cd = text(get(&tx.state, f::vbd::TYPE, vbd)) == "CD";
    if text(get(&tx.state, f::vm::DOMAIN_TYPE, &vm)) == "hvm" {
        if is_cd {
            let text = "HVM CDROMs cannot be hotplugged/unplugged, only inserted or ejected";
            return Err(ApiError::new(ErrorCode::OperationNotAllowed, [text]));
        }
        if text(get(&tx.state, f::vbd::MODE, vbd)) == "RO" {
            return Err(ApiError::new(ErrorCode::DiskVbdMustBeReadwriteForHvm, [vbd]));
        }
    }
    set_attached(tx, &VBD, vbd, true)
}

/// `VBD.unplug`, `VBD.unplug_force`.
pub fn vbd_unplug(tx: &mut Tx, call: &Call) -> Reply {
    let vbd = call.str(0);
    let vm = check_plug(&tx.state, &VBD, vbd, false)?;
    if text(get(&tx.state, f::vm::DOMAIN_TYPE, &vm)) == "hvm" && text(get(&tx.state, f::vbd::TYPE, vbd)) == "CD" {
        let text = "HVM CDROMs cannot be hotplugged/unplugged, only inserted or ejected";
        return Err(ApiError::new(ErrorCode::OperationNotAllowed, [text]));
    }
    set_attached(tx, &VBD, vbd, false)
}

/// `VIF.plug`: not on the control domain.
pub fn vif_plug(tx: &mut Tx, call: &Call) -> Reply {
    let vif = call.str(0);
    let vm = text(get(&tx.state, f::vif::VM, vif));
    if get(&tx.state, f::vm::IS_CONTROL_DOMAIN, &vm).as_bool() == Some(true) {
        return Err(ApiError::new(ErrorCode::OperationNotAllowed, ["Control domain does not support hotplug"]));
    }
    check_plug(&tx.state, &VIF, vif, true)?;
    set_attached(tx, &VIF, vif, true)
}

/// `VIF.unplug`, `VIF.unplug_force`.
pub fn vif_unplug(tx: &mut Tx, call: &Call) -> Reply {
    let vif = call.str(0);
    check_plug(&tx.state, &VIF, vif, false)?;
    set_attached(tx, &VIF, vif, false)
}

/// A CD's media change, in xapi's order: a removable device, empty (insert) or not (eject), a VM
/// that is not suspended.
fn check_media(state: &State, vbd: &str, insert: bool) -> Result<String, ApiError> {
    if !state.exists(class::VBD.get().id, vbd) {
        return Err(ApiError::handle_invalid("VBD", vbd));
    }
    if text(get(state, f::vbd::TYPE, vbd)) != "CD" {
        return Err(ApiError::new(ErrorCode::VbdNotRemovableMedia, [vbd]));
    }
    let empty = flag(state, f::vbd::EMPTY, vbd);
    if insert && !empty {
        return Err(ApiError::new(ErrorCode::VbdNotEmpty, [vbd]));
    }
    if !insert && empty {
        return Err(ApiError::new(ErrorCode::VbdIsEmpty, [vbd]));
    }
    let vm = text(get(state, f::vbd::VM, vbd));
    let power = text(get(state, f::vm::POWER_STATE, &vm));
    if power == "Suspended" {
        return Err(ApiError::new(ErrorCode::VmBadPowerState, [vm.as_str(), "halted, running", "suspended"]));
    }
    Ok(vm)
}

/// `VBD.insert(vbd, vdi)`: a managed VDI goes into an empty CD drive.
pub fn vbd_insert(tx: &mut Tx, call: &Call) -> Reply {
    let (vbd, vdi) = (call.str(0), call.str(1).to_string());
    check_media(&tx.state, vbd, true)?;
    if !tx.state.exists(class::VDI.get().id, &vdi) {
        return Err(ApiError::handle_invalid("VDI", &vdi));
    }
    if get(&tx.state, f::vdi::MANAGED, &vdi).as_bool() == Some(false) {
        return Err(ApiError::new(ErrorCode::VdiNotManaged, [vdi.as_str()]));
    }
    tx.put(f::vbd::VDI, vbd, Value::Ref(vdi));
    tx.put(f::vbd::EMPTY, vbd, Value::Bool(false));
    void()
}

/// `VBD.eject(vbd)`: the drive is left empty.
pub fn vbd_eject(tx: &mut Tx, call: &Call) -> Reply {
    let vbd = call.str(0);
    check_media(&tx.state, vbd, false)?;
    tx.put(f::vbd::VDI, vbd, Value::Ref(NULL_REF.into()));
    tx.put(f::vbd::EMPTY, vbd, Value::Bool(true));
    void()
}

/// The metrics record a device names, destroyed with it.
fn destroy_with_metrics(tx: &mut Tx, kind: &Kind, metrics: FieldKey, device: &str) {
    let m = text(get(&tx.state, metrics, device));
    let metrics_class = if kind.name == "VBD" { class::VBD_METRICS } else { class::VIF_METRICS };
    if tx.state.exists(metrics_class.get().id, &m) {
        super::super::implicit::destroy(tx, metrics_class.get(), &m);
    }
    super::super::implicit::destroy(tx, kind.class.get(), device);
}

/// `VBD.destroy` (xapi `xapi_vbd_helpers.ml` `destroy`): not while attached; its metrics go too.
pub fn vbd_destroy(tx: &mut Tx, call: &Call) -> Reply {
    let vbd = call.str(0);
    if !tx.state.exists(class::VBD.get().id, vbd) {
        return Err(ApiError::handle_invalid("VBD", vbd));
    }
    if flag(&tx.state, f::vbd::CURRENTLY_ATTACHED, vbd) {
        let vm = text(get(&tx.state, f::vbd::VM, vbd));
        let text = format!(
            "VBD '{}' still attached to '{}'",
            text(get(&tx.state, f::vbd::UUID, vbd)),
            text(get(&tx.state, f::vm::UUID, &vm))
        );
        return Err(ApiError::new(ErrorCode::OperationNotAllowed, [text]));
    }
    destroy_with_metrics(tx, &VBD, f::vbd::METRICS, vbd);
    void()
}

/// `VIF.destroy` (xapi `xapi_vif_helpers.ml` `destroy`): not while attached to a running VM.
pub fn vif_destroy(tx: &mut Tx, call: &Call) -> Reply {
    let vif = call.str(0);
    if !tx.state.exists(class::VIF.get().id, vif) {
        return Err(ApiError::handle_invalid("VIF", vif));
    }
    let vm = text(get(&tx.state, f::vif::VM, vif));
    let running = !matches!(get(&tx.state, f::vm::DOMID, &vm), Value::Int(-1) | Value::Null);
    if running && flag(&tx.state, f::vif::CURRENTLY_ATTACHED, vif) {
        return Err(ApiError::new(ErrorCode::OperationNotAllowed, ["VIF currently attached to a running VM"]));
    }
    destroy_with_metrics(tx, &VIF, f::vif::METRICS, vif);
    void()
}

/// `VIF.create(record)` (xapi `xapi_vif_helpers.ml` `create`): the device an unsigned decimal
/// (`INVALID_DEVICE`), a MAC generated from the VM's `mac_seed` when empty (`MAC_autogenerated`),
/// else a valid one (`MAC_INVALID`), the device unused on the VM (`DEVICE_ALREADY_EXISTS`);
/// attached only if the VM is suspended.
pub fn vif_create(tx: &mut Tx, call: &Call) -> Reply {
    // The record as any constructor takes it (members, types, refs: docs §a.5, §d.3) first.
    let Value::Ref(vif) = super::super::implicit::write(tx, call.class, call.msg, call.args)? else {
        return Err(ApiError::internal("VIF.create made no VIF"));
    };
    let device = text(call.member("device"));
    let Ok(number) = device.parse::<u32>() else {
        return Err(ApiError::new(ErrorCode::InvalidDevice, [device.as_str()]));
    };
    let vm = text(call.member("VM"));
    let seed = super::mac::seed(&tx.state, &vm);
    let given_mac = text(call.member("MAC"));
    let (mac, generated) = match seed {
        Some(seed) if given_mac.is_empty() => (super::mac::generated(number, &seed), true),
        _ => (given_mac, false),
    };
    if !super::mac::is_valid(&mac) {
        return Err(ApiError::new(ErrorCode::MacInvalid, [mac.as_str()]));
    }
    let taken = get(&tx.state, f::vm::VIFS, &vm).as_set().unwrap_or(&[]).iter().any(|other| {
        let other = other.as_str().unwrap_or("");
        other != vif && text(get(&tx.state, f::vif::DEVICE, other)).parse::<u32>().ok() == Some(number)
    });
    if taken {
        return Err(ApiError::new(ErrorCode::DeviceAlreadyExists, [device.as_str()]));
    }
    tx.put(f::vif::MAC, &vif, Value::String(mac));
    tx.put(f::vif::MAC_AUTOGENERATED, &vif, Value::Bool(generated));
    if text(get(&tx.state, f::vm::POWER_STATE, &vm)) != "Suspended" {
        tx.put(f::vif::CURRENTLY_ATTACHED, &vif, Value::Bool(false));
    }
    Ok(Value::Ref(vif))
}

/// VDI types a VBD may attach (xapi `xapi_vbd.ml` `create`).
const ATTACHABLE_TYPES: &[&str] =
    &["system", "user", "ephemeral", "suspend", "crashdump", "metadata", "rrd", "pvs_cache"];

/// `VBD.create(record)` (xapi `xapi_vbd.ml` `create`, docs §h.1), after the record's own checks:
/// the VDI's type, CDs read-only, only CDs empty, no writer on a read-only VDI, a valid device
/// (`autodetect` takes the first free one), not taken on the VM. `device` and
/// `currently_attached` are kept only for a suspended VM; a `VBD_metrics` record goes with it.
pub fn vbd_create(tx: &mut Tx, call: &Call) -> Reply {
    let Value::Ref(vbd) = super::super::implicit::write(tx, call.class, call.msg, call.args)? else {
        return Err(ApiError::internal("VBD.create made no VBD"));
    };
    let state = &tx.state;
    let (vm, vdi) = (text(call.member("VM")), text(call.member("VDI")));
    let kind = text(call.member("type"));
    let mode = text(call.member("mode"));
    let empty = call.member("empty").as_bool() == Some(true);
    if !empty && vdi != NULL_REF && !vdi.is_empty() {
        let vdi_type = text(get(state, f::vdi::TYPE, &vdi));
        if !ATTACHABLE_TYPES.contains(&vdi_type.as_str()) {
            return Err(ApiError::new(ErrorCode::VdiIncompatibleType, [vdi.as_str(), vdi_type.as_str()]));
        }
    }
    if kind == "CD" && mode != "RO" {
        return Err(ApiError::new(ErrorCode::VbdCdsMustBeReadonly, Vec::<String>::new()));
    }
    if kind != "CD" && empty {
        return Err(ApiError::new(ErrorCode::VbdNotRemovableMedia, ["in constructor"]));
    }
    if mode == "RW" && !empty && flag(state, f::vdi::READ_ONLY, &vdi) {
        return Err(ApiError::new(ErrorCode::VdiReadonly, [vdi.as_str()]));
    }
    let others: Vec<String> = get(state, f::vm::VBDS, &vm)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .filter(|v| *v != vbd)
        .collect();
    let used: Vec<i64> = others
        .iter()
        .flat_map(|v| [text(get(state, f::vbd::USERDEVICE, v)), text(get(state, f::vbd::DEVICE, v))])
        .filter_map(|d| super::vm::queries::disk_number(&d))
        .collect();
    let given = text(call.member("userdevice"));
    let userdevice = if given == "autodetect" {
        let last = if flag(state, f::vm::IS_CONTROL_DOMAIN, &vm) { 255 } else { 254 };
        match (0..=last).find(|n| !used.contains(n)) {
            Some(n) => n.to_string(),
            None => return Err(ApiError::new(ErrorCode::InvalidDevice, ["autodetect"])),
        }
    } else {
        match super::vm::queries::disk_number(&given) {
            Some(n) if used.contains(&n) => {
                return Err(ApiError::new(ErrorCode::DeviceAlreadyExists, [given.as_str()]))
            }
            Some(_) => given,
            None => return Err(ApiError::new(ErrorCode::InvalidDevice, [given.as_str()])),
        }
    };
    let suspended = text(get(state, f::vm::POWER_STATE, &vm)) == "Suspended";
    tx.put(f::vbd::USERDEVICE, &vbd, Value::String(userdevice));
    if !suspended {
        tx.put(f::vbd::DEVICE, &vbd, Value::str(""));
        tx.put(f::vbd::CURRENTLY_ATTACHED, &vbd, Value::Bool(false));
    }
    let metrics = super::super::implicit::create_internal(tx, "VBD_metrics", vec![]);
    tx.put(f::vbd::METRICS, &vbd, Value::Ref(metrics));
    Ok(Value::Ref(vbd))
}
