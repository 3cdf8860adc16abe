//! `VM.snapshot`, `VM.checkpoint` and `VM.revert` (docs/xenapi-semantics.md §g.5; xapi
//! `xapi_vm_snapshot.ml`, `xapi_vm_clone.ml`): the disks (and a checkpoint's memory) are copied by
//! the host; the outcome entry records the snapshot, or puts the VM back as the snapshot had it.

use super::super::super::effect::{DiskFile, Done, Effect};
use super::super::super::implicit::destroy;
use super::super::super::state::State;
use super::super::super::tx::Tx;
use super::super::{Call, Long};
use super::clone::{copied_fields, copy_vif, create_from, disks, file_of, make_vm, suspend_vdi, with, Made, Snapshot};
use super::get;
use super::ops::{self, Vm};
use super::power::{derived_uuid, halt, set_power, suspend_image, suspend_sr};
use super::{check_op, int, vm_uuid};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::{schema, Relation, Ty};
use crate::value::{Value, NULL_REF};

pub const SNAPSHOT: Long =
    Long { op: "snapshot", check: check_op, plan: plan_snapshot, finish: finish_snapshot, marks: None };
pub const CHECKPOINT: Long =
    Long { op: "checkpoint", check: check_op, plan: plan_checkpoint, finish: finish_checkpoint, marks: None };
pub const REVERT: Long =
    Long { op: "revert", check: check_revert, plan: plan_revert, finish: finish_revert, marks: None };

/// The index of a memory image among the files an operation makes (disks take 0, 1, …).
const IMAGE: u32 = u32::MAX;

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn refs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_set).unwrap_or(&[]).iter().filter_map(|r| r.as_str().map(String::from)).collect()
}

/// Copies of the VM's disks (less `ignore`), each beside its original.
fn disk_copies(state: &State, vm: &str, task: &str, ignore: &[String]) -> Result<Vec<(DiskFile, DiskFile)>, ApiError> {
    let mut copies = Vec::new();
    for (i, (_, vdi)) in disks(state, vm).into_iter().enumerate() {
        if ignore.contains(&vdi) {
            continue;
        }
        let sr = text(get(state, f::vdi::SR, &vdi));
        let from = file_of(state, &sr, text(get(state, f::vdi::UUID, &vdi)))?;
        copies.push((from, file_of(state, &sr, derived_uuid(task, i as u32))?));
    }
    Ok(copies)
}

fn plan_snapshot(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let copies = disk_copies(state, call.str(0), task, &refs(call.args.get(2)))?;
    Ok(if copies.is_empty() { Effect::Nothing } else { Effect::CopyDisks(copies) })
}

/// `snapshot_info` of a crash-consistent snapshot.
fn crash_consistent(state: &State, vm: &str) -> Vec<(&'static str, String)> {
    vec![
        ("disk-snapshot-type", "crash_consistent".to_string()),
        ("power-state-at-snapshot", text(get(state, f::vm::POWER_STATE, vm))),
    ]
}

fn copies_of(effect: &Effect) -> &[(DiskFile, DiskFile)] {
    match effect {
        Effect::CopyDisks(c) | Effect::VmCheckpoint { copies: c, .. } => c,
        _ => &[],
    }
}

fn finish_snapshot(tx: &mut Tx, call: &Call, _task: &str, effect: &Effect, _: &Done) -> Result<Value, ApiError> {
    let vm = call.str(0);
    let ignore = refs(call.args.get(2));
    let snapshot = Snapshot { ignore: &ignore, info: crash_consistent(&tx.state, vm), image: None };
    let made = Made { name: call.str(1), sr: None, snapshot: Some(snapshot) };
    Ok(Value::Ref(make_vm(tx, vm, &made, copies_of(effect))?))
}

/// A running VM's memory is saved while it runs on; a suspended VM's image is copied; a paused
/// VM's checkpoint has its disks only (xapi's `Disk_op_checkpoint`).
fn plan_checkpoint(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let vm = call.str(0);
    let mut copies = disk_copies(state, vm, task, &[])?;
    match text(get(state, f::vm::POWER_STATE, vm)).as_str() {
        "Running" => {
            let sr = suspend_sr(state, vm).ok_or_else(|| ApiError::new(ErrorCode::VmNoSuspendSr, [vm]))?;
            let image = file_of(state, &sr, derived_uuid(task, IMAGE))?;
            Ok(Effect::VmCheckpoint { vm_uuid: vm_uuid(state, vm), image, copies })
        }
        "Suspended" => {
            if let Some(image) = suspend_image(state, vm)? {
                let to = DiskFile { sr_dir: image.sr_dir.clone(), uuid: derived_uuid(task, IMAGE) };
                copies.push((image, to));
            }
            Ok(Effect::CopyDisks(copies))
        }
        _ => Ok(if copies.is_empty() { Effect::Nothing } else { Effect::CopyDisks(copies) }),
    }
}

fn finish_checkpoint(tx: &mut Tx, call: &Call, task: &str, effect: &Effect, _: &Done) -> Result<Value, ApiError> {
    let vm = call.str(0);
    let state = &tx.state;
    let power = text(get(state, f::vm::POWER_STATE, vm));
    let image = match effect {
        Effect::VmCheckpoint { image, .. } => suspend_sr(state, vm).map(|sr| (image.clone(), sr)),
        Effect::CopyDisks(copies) => {
            let source_vdi = text(get(state, f::vm::SUSPEND_VDI, vm));
            let sr = text(get(state, f::vdi::SR, &source_vdi));
            copies.iter().find(|(_, to)| to.uuid == derived_uuid(task, IMAGE)).map(|(_, to)| (to.clone(), sr))
        }
        _ => None,
    };
    // Only a checkpoint of a running VM describes itself (xapi passes `{}` otherwise).
    let info = if power == "Running" { crash_consistent(state, vm) } else { Vec::new() };
    let snapshot = Snapshot { ignore: &[], info, image };
    let made = Made { name: call.str(1), sr: None, snapshot: Some(snapshot) };
    Ok(Value::Ref(make_vm(tx, vm, &made, copies_of(effect))?))
}

/// The VM a snapshot was taken of.
fn snapshot_of(state: &State, snapshot: &str) -> String {
    text(get(state, f::vm::SNAPSHOT_OF, snapshot))
}

/// `revert` on the snapshot, then `reverting` on its VM; a snapshot whose VM is gone cannot be
/// reverted here (`VM_REVERT_FAILED [snapshot, vm]`, xapi's order).
fn check_revert(state: &State, call: &Call, op: &str) -> Result<(), ApiError> {
    let snapshot = call.str(0);
    ops::check(&Vm::get(state, snapshot)?, op)?;
    let vm = snapshot_of(state, snapshot);
    let target = Vm::get(state, &vm).map_err(|_| ApiError::new(ErrorCode::VmRevertFailed, [snapshot, vm.as_str()]))?;
    if !target.current.is_empty() {
        return Err(ops::other_operation_in_progress(&target));
    }
    ops::check(&target, "reverting")
}

/// The snapshot's disks whose counterpart (`snapshot_of`) is a disk of the VM: `(snapshot VDI, VM VDI)`.
fn counterparts(state: &State, snapshot: &str, vm: &str) -> Vec<(String, String)> {
    let ours: Vec<String> = disks(state, vm).into_iter().map(|(_, vdi)| vdi).collect();
    disks(state, snapshot)
        .into_iter()
        .filter_map(|(_, vdi)| {
            let of = text(get(state, f::vdi::SNAPSHOT_OF, &vdi));
            ours.contains(&of).then_some((vdi, of))
        })
        .collect()
}

fn disk_file(state: &State, vdi: &str) -> Result<DiskFile, ApiError> {
    file_of(state, &text(get(state, f::vdi::SR, vdi)), text(get(state, f::vdi::UUID, vdi)))
}

fn plan_revert(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let snapshot = call.str(0);
    let vm = snapshot_of(state, snapshot);
    let copies = disk_copies(state, snapshot, task, &[])?;
    let mut remove = Vec::new();
    for (_, ours) in counterparts(state, snapshot, &vm) {
        remove.push(disk_file(state, &ours)?);
    }
    if let Some(image) = suspend_image(state, &vm)? {
        remove.push(image);
    }
    let image = match suspend_image(state, snapshot)? {
        Some(from) => {
            let to = DiskFile { sr_dir: from.sr_dir.clone(), uuid: derived_uuid(task, IMAGE) };
            Some((from, to))
        }
        None => None,
    };
    let halt = text(get(state, f::vm::POWER_STATE, &vm)) != "Halted";
    Ok(Effect::VmRevert { vm_uuid: vm_uuid(state, &vm), halt, copies, image, remove })
}

/// Fields a revert leaves as they are on the VM (xapi `revert_vm_fields`, for a snapshot without
/// metadata: its own record is the VM's past).
const KEPT_BY_REVERT: &[&str] = &[
    "uuid",
    "suspend_VDI",
    "power_state",
    "parent",
    "current_operations",
    "allowed_operations",
    "metrics",
    "guest_metrics",
    "resident_on",
    "domid",
    "protection_policy",
    "snapshot_schedule",
    "scheduled_to_be_resident_on",
    "tags",
    "affinity",
    "groups",
    "name_label",
    "is_a_snapshot",
    "is_a_template",
    "is_default_template",
    "snapshot_of",
    "snapshot_time",
    "transportable_snapshot_id",
    "snapshot_info",
    "snapshot_metadata",
    "is_vmss_snapshot",
    "blobs",
    "appliance",
];

fn finish_revert(tx: &mut Tx, call: &Call, _task: &str, effect: &Effect, _: &Done) -> Result<Value, ApiError> {
    let snapshot = call.str(0).to_string();
    let vm = snapshot_of(&tx.state, &snapshot);
    let Effect::VmRevert { copies, image, remove, .. } = effect else {
        return Err(ApiError::internal("not a revert"));
    };
    revert_fields(tx, &snapshot, &vm);
    let (vbds, vdis, vifs) = (class("VBD"), class("VDI"), class("VIF"));
    // Before the old disks go: which VDIs name each of them as their origin (`snapshot_of`).
    let snapshot_of = vdis.field("snapshot_of").expect("VDI.snapshot_of");
    let mut sources = Vec::new();
    for (from, to) in copies {
        let Some(source) = tx.state.table(vdis.id).by_uuid.get(from.uuid.as_str()).map(|r| r.to_string()) else {
            continue;
        };
        let old = text(get(&tx.state, f::vdi::SNAPSHOT_OF, &source));
        let pointing: Vec<String> = tx
            .state
            .table(vdis.id)
            .objects
            .iter()
            .filter(|(_, o)| old != NULL_REF && !old.is_empty() && o.fields[snapshot_of].as_str() == Some(old.as_str()))
            .map(|(r, _)| r.to_string())
            .collect();
        sources.push((source, to, pointing));
    }
    // The VM's devices go: its VBDs, the disks the snapshot replaces, its memory image, its VIFs.
    for vbd in refs(Some(&get(&tx.state, f::vm::VBDS, &vm))) {
        destroy(tx, vbds, &vbd);
    }
    let replaced: Vec<String> = remove.iter().map(|f| f.uuid.clone()).collect();
    for uuid in &replaced {
        if let Some(vdi) = tx.state.table(vdis.id).by_uuid.get(uuid.as_str()).map(|r| r.to_string()) {
            destroy(tx, vdis, &vdi);
        }
    }
    tx.put(f::vm::SUSPEND_VDI, &vm, Value::Ref(NULL_REF.into()));
    for vif in refs(Some(&get(&tx.state, f::vm::VIFS, &vm))) {
        destroy(tx, vifs, &vif);
    }
    // The snapshot's disks, copied, become the VM's; what pointed at the old disks points at them.
    let mut new_disks: Vec<(String, String)> = Vec::new();
    for (source, to, pointing) in sources {
        let overrides = vec![
            ("location", Value::String(to.uuid.clone())),
            ("is_a_snapshot", Value::Bool(false)),
            ("snapshot_of", Value::Ref(NULL_REF.into())),
            ("snapshot_time", Value::DateTime(0)),
            ("allowed_operations", Value::Set(vec![])),
            ("current_operations", Value::Map(vec![])),
        ];
        let vdi = create_from(tx, "VDI", &to.uuid, with(copied_fields(&tx.state, "VDI", &source), overrides));
        for r in pointing {
            if tx.state.exists(vdis.id, &r) {
                tx.put(f::vdi::SNAPSHOT_OF, &r, Value::Ref(vdi.clone()));
            }
        }
        new_disks.push((source, vdi));
    }
    for vbd in refs(Some(&get(&tx.state, f::vm::VBDS, &snapshot))) {
        let vdi = text(get(&tx.state, f::vbd::VDI, &vbd));
        let vdi = new_disks.iter().find(|(s, _)| *s == vdi).map_or(vdi, |(_, n)| n.clone());
        let uuid = tx.new_uuid();
        let overrides = vec![
            ("VM", Value::Ref(vm.clone())),
            ("VDI", Value::Ref(if vdi.is_empty() { NULL_REF.into() } else { vdi })),
            ("currently_attached", Value::Bool(false)),
            ("allowed_operations", Value::Set(vec![])),
            ("current_operations", Value::Map(vec![])),
            ("metrics", Value::Ref(NULL_REF.into())),
        ];
        create_from(tx, "VBD", &uuid, with(copied_fields(&tx.state, "VBD", &vbd), overrides));
    }
    for vif in refs(Some(&get(&tx.state, f::vm::VIFS, &snapshot))) {
        copy_vif(tx, &vif, &vm, true);
    }
    halt(tx, &vm);
    if let Some((from, to)) = image {
        let source = tx.state.table(vdis.id).by_uuid.get(from.uuid.as_str()).map(|r| r.to_string()).unwrap_or_default();
        let sr = text(get(&tx.state, f::vdi::SR, &source));
        let size = int(&tx.state, &vm, f::vm::MEMORY_STATIC_MAX);
        let vdi = suspend_vdi(tx, &vm_uuid(&tx.state, &vm), to, sr, size);
        tx.put(f::vm::SUSPEND_VDI, &vm, Value::Ref(vdi));
        set_power(tx, &vm, "Suspended");
    }
    tx.put(f::vm::PARENT, &vm, Value::Ref(snapshot));
    ops::refresh(tx, &vm);
    Ok(Value::String(String::new()))
}

fn class(name: &str) -> &'static crate::schema::Class {
    schema().class(name).expect("a datamodel class")
}

/// The VM's configuration as the snapshot recorded it (less what [`KEPT_BY_REVERT`] names and
/// the references to objects that are gone), with `ha_always_run` off.
fn revert_fields(tx: &mut Tx, snapshot: &str, vm: &str) {
    let vms = class("VM");
    let Some(o) = tx.state.get(vms.id, snapshot) else { return };
    let mut changes = Vec::new();
    for (i, f) in vms.fields.iter().enumerate() {
        if KEPT_BY_REVERT.contains(&f.name.as_str()) || matches!(f.relation, Relation::Many { .. }) {
            continue;
        }
        let value = o.fields[i].clone();
        if let (Ty::Ref(target), Some(r)) = (&f.ty, value.as_str()) {
            let exists = schema().class(target).is_some_and(|c| tx.state.exists(c.id, r));
            if r != NULL_REF && !exists {
                continue;
            }
        }
        changes.push((f.name.as_str(), value));
    }
    let current = tx.state.get(vms.id, vm).map(|o| o.fields.clone()).unwrap_or_default();
    for (name, value) in changes {
        let i = vms.field(name).expect("a VM field");
        if current.get(i) != Some(&value) {
            tx.set("VM", vm, name, value);
        }
    }
    tx.put(f::vm::HA_ALWAYS_RUN, vm, Value::Bool(false));
}
