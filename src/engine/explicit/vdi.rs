//! A VDI's bytes (docs/xenapi-semantics.md §h.3; xapi `xapi_vdi.ml`): `VDI.create` makes the
//! backing file in the SR's directory (marking `vdi_create` on the SR), `VDI.destroy` removes it
//! with the record and the VBDs on it, `VDI.resize` grows it. Long operations: the host touches
//! the file between the entry that marks the operation and the one that records the outcome.

use super::super::effect::{DiskFile, Done, Effect};
use super::super::implicit::{destroy, new_object};
use super::super::state::State;
use super::super::tx::Tx;
use super::vm::power::derived_uuid;
use super::vm::{get, sr_dir};
use super::{Call, Long};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::schema::Class;
use crate::value::{Value, NULL_REF};

pub const CREATE: Long =
    Long { op: "vdi_create", check: check_create, plan: plan_create, finish: finish_create, marks: Some(marks_sr) };
pub const DESTROY: Long =
    Long { op: "destroy", check: check_vdi, plan: plan_destroy, finish: finish_destroy, marks: None };
pub const RESIZE: Long = Long { op: "resize", check: check_vdi, plan: plan_resize, finish: finish_resize, marks: None };
pub const CLONE: Long = Long { op: "clone", check: check_vdi, plan: plan_copy, finish: finish_copy, marks: None };
pub const SNAPSHOT: Long = Long { op: "snapshot", check: check_vdi, plan: plan_copy, finish: finish_copy, marks: None };
pub const COPY: Long = Long { op: "copy", check: check_vdi, plan: plan_copy, finish: finish_copy, marks: None };

/// The disk format of a file SR rounds sizes up to 2 MiB, as xapi's VHD-backed local storage does.
const SIZE_QUANTUM: i64 = 2 << 20;

fn round_up(size: i64) -> i64 {
    (size.max(0) + SIZE_QUANTUM - 1) / SIZE_QUANTUM * SIZE_QUANTUM
}

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn marks_sr(call: &Call) -> (&'static Class, String) {
    (class::SR.get(), text(call.member("SR")))
}

/// The SR's directory when a plugged PBD gives one; which SM types take new VDIs.
pub(super) fn writable_dir(state: &State, sr: &str) -> Result<String, ApiError> {
    if !state.exists(class::SR.get().id, sr) {
        return Err(ApiError::handle_invalid("SR", sr));
    }
    let plugged = get(state, f::sr::PBDS, sr)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .any(|pbd| get(state, f::pbd::CURRENTLY_ATTACHED, pbd.as_str().unwrap_or("")).as_bool() == Some(true));
    if !plugged {
        return Err(ApiError::new(ErrorCode::SrHasNoPbds, [sr]));
    }
    let kind = text(get(state, f::sr::TYPE, sr));
    match (kind.as_str(), sr_dir(state, sr)) {
        ("ext" | "file", Some(dir)) => Ok(dir),
        _ => Err(ApiError::new(ErrorCode::SrOperationNotSupported, [sr])),
    }
}

/// `VDI.create(record)`: `cbt_metadata` is refused; the SR needs a plugged PBD and a backend
/// that makes files (`ext`, `file`).
fn check_create(state: &State, call: &Call, _op: &str) -> Result<(), ApiError> {
    if text(call.member("type")) == "cbt_metadata" {
        return Err(ApiError::new(ErrorCode::VdiIncompatibleType, ["", "CBT metadata"]));
    }
    let sr = text(call.member("SR"));
    writable_dir(state, &sr)?;
    let size = match call.member("virtual_size") {
        Value::Int(n) => n,
        _ => 0,
    };
    if size < 0 {
        return Err(ApiError::invalid_value("virtual_size", &size.to_string()));
    }
    Ok(())
}

fn plan_create(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let dir = writable_dir(state, &text(call.member("SR")))?;
    let size = match call.member("virtual_size") {
        Value::Int(n) => round_up(n),
        _ => 0,
    };
    Ok(Effect::CreateDisks(vec![(DiskFile { sr_dir: dir, uuid: derived_uuid(task, 0) }, size as u64)]))
}

fn finish_create(tx: &mut Tx, call: &Call, _task: &str, effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let Effect::CreateDisks(files) = effect else { return Err(ApiError::internal("not a disk creation")) };
    let (file, size) = files.first().ok_or_else(|| ApiError::internal("no disk made"))?;
    let vdi = tx.new_ref();
    let mut given = vec![
        ("SR", call.member("SR")),
        ("virtual_size", Value::Int(*size as i64)),
        ("physical_utilisation", Value::Int(0)),
        ("location", Value::String(file.uuid.clone())),
        ("managed", Value::Bool(true)),
    ];
    for name in [
        "name_label",
        "name_description",
        "type",
        "sharable",
        "read_only",
        "other_config",
        "xenstore_data",
        "sm_config",
        "tags",
    ] {
        let v = call.member(name);
        if v != Value::Null {
            given.push((name, v));
        }
    }
    tx.push(new_object("VDI", &vdi, &file.uuid, given));
    refresh(tx, &vdi);
    super::sr::refresh(tx, &text(call.member("SR")));
    Ok(Value::Ref(vdi))
}

/// The VBDs on a VDI that are attached.
pub fn attached(state: &State, vdi: &str) -> bool {
    get(state, f::vdi::VBDS, vdi)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .any(|vbd| get(state, f::vbd::CURRENTLY_ATTACHED, vbd.as_str().unwrap_or("")).as_bool() == Some(true))
}

/// An attached read-write VBD on the VDI.
fn attached_rw(state: &State, vdi: &str) -> bool {
    get(state, f::vdi::VBDS, vdi).as_set().unwrap_or(&[]).iter().any(|vbd| {
        let vbd = vbd.as_str().unwrap_or("");
        get(state, f::vbd::CURRENTLY_ATTACHED, vbd).as_bool() == Some(true)
            && get(state, f::vbd::MODE, vbd).as_str() == Some("RW")
    })
}

/// xapi `check_operation_error` for `destroy`, `resize`, `clone`, `snapshot` and `copy`: another operation in progress, an
/// attached VBD (`VDI_IN_USE [vdi, op]`), an SR whose backend keeps no files here.
fn check_vdi(state: &State, call: &Call, op: &str) -> Result<(), ApiError> {
    let vdi = call.str(0);
    if !state.exists(class::VDI.get().id, vdi) {
        return Err(ApiError::handle_invalid("VDI", vdi));
    }
    let current = get(state, f::vdi::CURRENT_OPERATIONS, vdi);
    let busy = current.as_map().and_then(|m| m.iter().find(|(_, other)| other.as_str() != Some("copy")));
    if let Some((task, other)) = busy {
        let (other, task) = (text(other.clone()), text(task.clone()));
        return Err(ApiError::new(ErrorCode::OtherOperationInProgress, ["VDI", vdi, &other, &task]));
    }
    // Clones and snapshots run live; a copy minds only writers.
    let in_use = match op {
        "clone" | "snapshot" => false,
        "copy" => attached_rw(state, vdi),
        _ => attached(state, vdi),
    };
    if in_use {
        return Err(ApiError::new(ErrorCode::VdiInUse, [vdi, op]));
    }
    if op == "snapshot" && get(state, f::vdi::SHARABLE, vdi).as_bool() == Some(true) {
        return Err(ApiError::new(ErrorCode::VdiIsSharable, [vdi]));
    }
    if op == "resize" {
        let sr = text(get(state, f::vdi::SR, vdi));
        writable_dir(state, &sr)?;
    }
    Ok(())
}

/// The VDI's file, if its SR keeps disk files in a directory: `<location>.img` (the location is
/// the uuid for a VDI made here). An ISO library's images are not disk files.
pub fn file(state: &State, vdi: &str) -> Option<DiskFile> {
    let sr = text(get(state, f::vdi::SR, vdi));
    if text(get(state, f::sr::TYPE, &sr)) == "iso" {
        return None;
    }
    let dir = sr_dir(state, &sr)?;
    Some(DiskFile { sr_dir: dir, uuid: text(get(state, f::vdi::LOCATION, vdi)) })
}

fn plan_destroy(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    Ok(match file(state, call.str(0)) {
        Some(file) => Effect::DestroyDisks(vec![file]),
        None => Effect::Nothing,
    })
}

fn finish_destroy(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    forget(tx, call.str(0));
    Ok(Value::String(String::new()))
}

/// A VDI's record goes with every VBD on it; a VM whose suspend image it was has none any more
/// (`VDI.destroy`, and `SR.scan` of a file that is gone).
pub(super) fn forget(tx: &mut Tx, vdi: &str) {
    let vbds = class::VBD.get();
    for vbd in get(&tx.state, f::vdi::VBDS, vdi).as_set().unwrap_or(&[]).to_vec() {
        if let Some(vbd) = vbd.as_str().filter(|v| tx.state.exists(vbds.id, v)) {
            destroy(tx, vbds, vbd);
        }
    }
    let vms = class::VM.get();
    let suspended: Vec<String> = tx
        .state
        .table(vms.id)
        .objects
        .iter()
        .filter(|(_, o)| o.fields[f::vm::SUSPEND_VDI.index].as_str() == Some(vdi))
        .map(|(r, _)| r.to_string())
        .collect();
    for vm in suspended {
        tx.put(f::vm::SUSPEND_VDI, &vm, Value::Ref(NULL_REF.into()));
    }
    let sr = super::sr::of_vdi(&tx.state, vdi);
    destroy(tx, class::VDI.get(), vdi);
    if let Some(sr) = sr {
        super::sr::refresh(tx, &sr);
    }
}

/// `VDI.resize(vdi, size)`: the file grows to the size rounded up as the disk format does; a
/// disk does not shrink here (`INVALID_VALUE ["size", size]`).
fn plan_resize(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let vdi = call.str(0);
    let size = match call.args.get(1) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    };
    let current = match get(state, f::vdi::VIRTUAL_SIZE, vdi) {
        Value::Int(n) => n,
        _ => 0,
    };
    if size < current {
        return Err(ApiError::invalid_value("size", &size.to_string()));
    }
    let file = file(state, vdi)
        .ok_or_else(|| ApiError::new(ErrorCode::SrOperationNotSupported, [text(get(state, f::vdi::SR, vdi))]))?;
    Ok(Effect::ResizeDisk { file, size: round_up(size) as u64 })
}

fn finish_resize(tx: &mut Tx, call: &Call, _task: &str, effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let Effect::ResizeDisk { size, .. } = effect else { return Err(ApiError::internal("not a resize")) };
    tx.put(f::vdi::VIRTUAL_SIZE, call.str(0), Value::Int(*size as i64));
    Ok(Value::String(String::new()))
}

/// `VDI.copy`'s SR, else the VDI's own.
fn target_sr(state: &State, call: &Call) -> String {
    match call.args.get(1).and_then(Value::as_str) {
        Some(sr) if call.msg.name == "copy" && sr != NULL_REF && !sr.is_empty() => sr.to_string(),
        _ => text(get(state, f::vdi::SR, call.str(0))),
    }
}

/// `clone(vdi, driver_params)`, `snapshot(vdi, driver_params)`: a copy beside the VDI;
/// `copy(vdi, sr, base_vdi, into_vdi)`: a full copy to `sr`. The host copies the bytes (holes
/// stay holes) into a file named by a uuid derived from the task.
fn plan_copy(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let vdi = call.str(0);
    let sr = text(get(state, f::vdi::SR, vdi));
    let from = file(state, vdi).ok_or_else(|| ApiError::new(ErrorCode::SrOperationNotSupported, [sr.as_str()]))?;
    if let Some(into) = into_vdi(state, call)? {
        // Into an existing VDI (xapi `xapi_vdi.ml` `copy`): writable and large enough. A
        // `base_vdi` only lets xapi copy less; the whole copy gives the same bytes.
        if get(state, f::vdi::READ_ONLY, &into).as_bool() == Some(true) {
            return Err(ApiError::new(ErrorCode::VdiReadonly, [into.as_str()]));
        }
        let need = get(state, f::vdi::VIRTUAL_SIZE, vdi).as_int().unwrap_or(0);
        if get(state, f::vdi::VIRTUAL_SIZE, &into).as_int().unwrap_or(0) < need {
            return Err(ApiError::new(ErrorCode::VdiTooSmall, [into.clone(), need.to_string()]));
        }
        if attached(state, &into) {
            return Err(ApiError::new(ErrorCode::VdiInUse, [into.as_str(), "copy"]));
        }
        let to_sr = text(get(state, f::vdi::SR, &into));
        let to = file(state, &into).ok_or_else(|| ApiError::new(ErrorCode::SrOperationNotSupported, [to_sr]))?;
        return Ok(Effect::CopyDisks(vec![(from, to)]));
    }
    if get(state, f::vdi::MANAGED, vdi).as_bool() == Some(false) {
        return Err(ApiError::new(ErrorCode::VdiNotManaged, [vdi]));
    }
    let dir = writable_dir(state, &target_sr(state, call))?;
    Ok(Effect::CopyDisks(vec![(from, DiskFile { sr_dir: dir, uuid: derived_uuid(task, 0) })]))
}

/// `VDI.copy`'s `into_vdi`, when given.
fn into_vdi(state: &State, call: &Call) -> Result<Option<String>, ApiError> {
    if call.msg.name != "copy" {
        return Ok(None);
    }
    match call.args.get(3).and_then(Value::as_str).filter(|r| *r != NULL_REF && !r.is_empty()) {
        Some(r) if state.exists(class::VDI.get().id, r) => Ok(Some(r.to_string())),
        Some(r) => Err(ApiError::handle_invalid("VDI", r)),
        None => Ok(None),
    }
}

/// The new VDI: the source's description, type, flags, maps and size (xapi `xapi_vdi.ml`
/// `clone`/`snapshot`, quicktest_vdi.ml); a snapshot points at its source.
fn finish_copy(tx: &mut Tx, call: &Call, _task: &str, effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let Effect::CopyDisks(copies) = effect else { return Err(ApiError::internal("not a disk copy")) };
    let (_, to) = copies.first().ok_or_else(|| ApiError::internal("no disk copied"))?;
    let source = call.str(0).to_string();
    if let Some(into) = into_vdi(&tx.state, call)? {
        let used = get(&tx.state, f::vdi::PHYSICAL_UTILISATION, &source);
        tx.put(f::vdi::PHYSICAL_UTILISATION, &into, used);
        return Ok(Value::Ref(into));
    }
    let sr = target_sr(&tx.state, call);
    let kept = [
        f::vdi::NAME_LABEL,
        f::vdi::NAME_DESCRIPTION,
        f::vdi::TYPE,
        f::vdi::SHARABLE,
        f::vdi::READ_ONLY,
        f::vdi::OTHER_CONFIG,
        f::vdi::XENSTORE_DATA,
        f::vdi::SM_CONFIG,
        f::vdi::ON_BOOT,
        f::vdi::ALLOW_CACHING,
        f::vdi::TAGS,
        f::vdi::VIRTUAL_SIZE,
        f::vdi::PHYSICAL_UTILISATION,
    ];
    let mut given: Vec<(&str, Value)> = kept.iter().map(|k| (k.name(), get(&tx.state, *k, &source))).collect();
    if call.msg.name == "copy" {
        // A copy is writable and starts its own SM state (xapi `xapi_vdi.ml` `copy`).
        given.retain(|(k, _)| !matches!(*k, "read_only" | "sm_config"));
    }
    given.push(("SR", Value::Ref(sr)));
    given.push(("location", Value::String(to.uuid.clone())));
    given.push(("managed", Value::Bool(true)));
    if call.msg.name == "snapshot" {
        given.push(("is_a_snapshot", Value::Bool(true)));
        given.push(("snapshot_of", Value::Ref(source.clone())));
        given.push(("snapshot_time", Value::DateTime(tx.ctx.now_secs())));
    }
    let vdi = tx.new_ref();
    tx.push(new_object("VDI", &vdi, &to.uuid, given));
    refresh(tx, &vdi);
    if let Some(sr) = super::sr::of_vdi(&tx.state, &vdi) {
        super::sr::refresh(tx, &sr);
    }
    Ok(Value::Ref(vdi))
}

/// `allowed_operations` of a VDI: what would pass its check now, of what is implemented here.
pub fn refresh(tx: &mut Tx, vdi: &str) {
    let vdis = class::VDI.get();
    if !tx.state.exists(vdis.id, vdi) {
        return;
    }
    let busy = get(&tx.state, f::vdi::CURRENT_OPERATIONS, vdi).as_map().is_some_and(|m| !m.is_empty());
    let in_use = attached(&tx.state, vdi);
    let resizable = sr_dir(&tx.state, &text(get(&tx.state, f::vdi::SR, vdi))).is_some();
    let mut ops = Vec::new();
    if !busy && resizable {
        ops.extend(["clone", "snapshot"]);
        if !attached_rw(&tx.state, vdi) {
            ops.push("copy");
        }
    }
    if !busy && !in_use {
        ops.push("destroy");
        if resizable {
            ops.push("resize");
        }
    }
    let value = Value::Set(ops.into_iter().map(|op| Value::Enum(op.into())).collect());
    if get(&tx.state, f::vdi::ALLOWED_OPERATIONS, vdi) != value {
        tx.put(f::vdi::ALLOWED_OPERATIONS, vdi, value);
    }
}
