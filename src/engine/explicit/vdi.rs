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

/// The disk format of a file SR rounds sizes up to 2 MiB, as xapi's VHD-backed local storage does.
const SIZE_QUANTUM: i64 = 2 << 20;

fn round_up(size: i64) -> i64 {
    (size.max(0) + SIZE_QUANTUM - 1) / SIZE_QUANTUM * SIZE_QUANTUM
}

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// A member of the `VDI.create` record (`Null` if absent).
fn member(call: &Call, name: &str) -> Value {
    match call.args.first().map(Value::materialized) {
        Some(Value::Record(members)) => members.into_iter().find(|(k, _)| k == name).map_or(Value::Null, |(_, v)| v),
        _ => Value::Null,
    }
}

fn marks_sr(call: &Call) -> (&'static Class, String) {
    (class::SR.get(), text(member(call, "SR")))
}

/// The SR's directory when a plugged PBD gives one; which SM types take new VDIs.
fn writable_dir(state: &State, sr: &str) -> Result<String, ApiError> {
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
    if text(member(call, "type")) == "cbt_metadata" {
        return Err(ApiError::new(ErrorCode::VdiIncompatibleType, ["", "CBT metadata"]));
    }
    let sr = text(member(call, "SR"));
    writable_dir(state, &sr)?;
    let size = match member(call, "virtual_size") {
        Value::Int(n) => n,
        _ => 0,
    };
    if size < 0 {
        return Err(ApiError::invalid_value("virtual_size", &size.to_string()));
    }
    Ok(())
}

fn plan_create(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let dir = writable_dir(state, &text(member(call, "SR")))?;
    let size = match member(call, "virtual_size") {
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
        ("SR", member(call, "SR")),
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
        let v = member(call, name);
        if v != Value::Null {
            given.push((name, v));
        }
    }
    tx.push(new_object("VDI", &vdi, &file.uuid, given));
    refresh(tx, &vdi);
    Ok(Value::Ref(vdi))
}

/// The VBDs on a VDI that are attached.
fn attached(state: &State, vdi: &str) -> bool {
    get(state, f::vdi::VBDS, vdi)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .any(|vbd| get(state, f::vbd::CURRENTLY_ATTACHED, vbd.as_str().unwrap_or("")).as_bool() == Some(true))
}

/// xapi `check_operation_error` for `destroy` and `resize`: another operation in progress, an
/// attached VBD (`VDI_IN_USE [vdi, op]`), an SR whose backend keeps no files here.
fn check_vdi(state: &State, call: &Call, op: &str) -> Result<(), ApiError> {
    let vdi = call.str(0);
    if !state.exists(class::VDI.get().id, vdi) {
        return Err(ApiError::handle_invalid("VDI", vdi));
    }
    let current = get(state, f::vdi::CURRENT_OPERATIONS, vdi);
    if let Some((task, other)) = current.as_map().and_then(|m| m.first()) {
        return Err(ApiError::new(
            ErrorCode::OtherOperationInProgress,
            ["VDI", vdi, &text(other.clone()), &text(task.clone())],
        ));
    }
    if attached(state, vdi) {
        return Err(ApiError::new(ErrorCode::VdiInUse, [vdi, op]));
    }
    if op == "resize" {
        let sr = text(get(state, f::vdi::SR, vdi));
        writable_dir(state, &sr)?;
    }
    Ok(())
}

/// The VDI's file, if its SR keeps files in a directory.
fn file(state: &State, vdi: &str) -> Option<DiskFile> {
    let dir = sr_dir(state, &text(get(state, f::vdi::SR, vdi)))?;
    Some(DiskFile { sr_dir: dir, uuid: text(get(state, f::vdi::UUID, vdi)) })
}

fn plan_destroy(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    Ok(match file(state, call.str(0)) {
        Some(file) => Effect::DestroyDisks(vec![file]),
        None => Effect::Nothing,
    })
}

/// The record goes with every VBD on it; a VM whose suspend image it was has none any more.
fn finish_destroy(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let vdi = call.str(0).to_string();
    let vbds = class::VBD.get();
    for vbd in get(&tx.state, f::vdi::VBDS, &vdi).as_set().unwrap_or(&[]).to_vec() {
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
        .filter(|(_, o)| o.fields[f::vm::SUSPEND_VDI.index].as_str() == Some(vdi.as_str()))
        .map(|(r, _)| r.clone())
        .collect();
    for vm in suspended {
        tx.put(f::vm::SUSPEND_VDI, &vm, Value::Ref(NULL_REF.into()));
    }
    destroy(tx, class::VDI.get(), &vdi);
    Ok(Value::String(String::new()))
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
