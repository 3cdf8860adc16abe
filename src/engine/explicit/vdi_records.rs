//! A VDI's record where no bytes move (xapi `xapi_vdi.ml`, `message_forwarding.ml`):
//! `VDI.introduce` (a record for a file already in the SR), `VDI.forget` (the record goes, the
//! file stays) and the explicit setters.

use super::super::effect::{Done, Effect};
use super::super::implicit::new_object;
use super::super::state::State;
use super::super::tx::Tx;
use super::vm::{get, sr_dir};
use super::{args, Call, Long};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::schema::Class;
use crate::value::Value;

type Reply = Result<Value, ApiError>;

pub const INTRODUCE: Long = Long {
    op: "vdi_introduce",
    check: check_introduce,
    plan: plan_introduce,
    finish: finish_introduce,
    marks: Some(marks_sr),
};

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn marks_sr(call: &Call) -> (&'static Class, String) {
    (class::SR.get(), args::VdiIntroduce::from(call).SR)
}

fn existing(state: &State, vdi: &str) -> Result<(), ApiError> {
    if state.exists(class::VDI.get().id, vdi) {
        Ok(())
    } else {
        Err(ApiError::handle_invalid("VDI", vdi))
    }
}

/// The VDI already in `sr` at `location`, if any.
fn at_location(state: &State, sr: &str, location: &str) -> Option<String> {
    get(state, f::sr::VDIS, sr)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| v.as_str())
        .find(|v| get(state, f::vdi::LOCATION, v).as_str() == Some(location))
        .map(String::from)
}

/// xapi's order: the SM must introduce (`SR_OPERATION_NOT_SUPPORTED`), a PBD must be plugged
/// (`SR_HAS_NO_PBDS`), the location must be free in the SR (`LOCATION_NOT_UNIQUE`), and the
/// uuid unused (`UUID_INVALID`).
fn check_introduce(state: &State, call: &Call, _op: &str) -> Result<(), ApiError> {
    let a = args::VdiIntroduce::from(call);
    if !state.exists(class::SR.get().id, &a.SR) {
        return Err(ApiError::handle_invalid("SR", &a.SR));
    }
    let kind = text(get(state, f::sr::TYPE, &a.SR));
    let introduces = super::sr::SM_TYPES.iter().any(|(t, caps)| *t == kind && caps.contains(&"VDI_INTRODUCE"));
    if !introduces {
        return Err(ApiError::new(ErrorCode::SrOperationNotSupported, [a.SR.as_str()]));
    }
    super::sr::assert_plugged(state, &a.SR)?;
    let uuid = a.uuid.to_ascii_lowercase();
    if let Some(other) = at_location(state, &a.SR, &a.location) {
        if text(get(state, f::vdi::UUID, &other)) != uuid {
            return Err(ApiError::new(ErrorCode::LocationNotUnique, [a.SR.as_str(), a.location.as_str()]));
        }
    }
    if !uuid.is_empty() && state.table(class::VDI.get().id).by_uuid.contains_key(uuid.as_str()) {
        return Err(ApiError::new(ErrorCode::UuidInvalid, ["VDI", uuid.as_str()]));
    }
    Ok(())
}

fn plan_introduce(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let a = args::VdiIntroduce::from(call);
    let dir = sr_dir(state, &a.SR).ok_or_else(|| ApiError::new(ErrorCode::SrOperationNotSupported, [a.SR.as_str()]))?;
    Ok(Effect::ScanDisks { sr_dir: dir, iso: text(get(state, f::sr::TYPE, &a.SR)) == "iso" })
}

/// The record, with the size the host measured; as xapi's, the caller's `read_only`, `managed`,
/// sizes and snapshot fields are not taken (the SM's word is), but its names, type, sharing and
/// maps are.
fn finish_introduce(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, done: &Done) -> Reply {
    let a = args::VdiIntroduce::from(call);
    let Done::Sr(listing) = done else { return Err(ApiError::internal("the host listed nothing")) };
    let iso = text(get(&tx.state, f::sr::TYPE, &a.SR)) == "iso";
    let found = if iso {
        listing.isos.iter().find(|(name, _)| *name == a.location).map(|(_, size)| (*size, *size))
    } else {
        listing.disks.iter().find(|(loc, _, _)| *loc == a.location).map(|(_, size, used)| (*size, *used))
    };
    let Some((size, used)) = found else {
        return Err(ApiError::new(ErrorCode::VdiLocationMissing, [a.SR.as_str(), a.location.as_str()]));
    };
    if let Some(vdi) = at_location(&tx.state, &a.SR, &a.location) {
        return Ok(Value::Ref(vdi));
    }
    let uuid = if a.uuid.is_empty() { tx.new_uuid() } else { a.uuid.to_ascii_lowercase() };
    let mut given = vec![
        ("SR", Value::Ref(a.SR.clone())),
        ("location", Value::String(a.location.clone())),
        ("type", Value::Enum(a.r#type.clone())),
        ("sharable", Value::Bool(a.sharable)),
        ("read_only", Value::Bool(iso)),
        ("other_config", a.other_config.clone()),
        ("xenstore_data", a.xenstore_data.clone()),
        ("virtual_size", Value::Int(size as i64)),
        ("physical_utilisation", Value::Int(used as i64)),
        ("managed", Value::Bool(true)),
    ];
    for (name, value) in [("name_label", &a.name_label), ("name_description", &a.name_description)] {
        if !value.is_empty() {
            given.push((name, Value::String(value.clone())));
        }
    }
    let vdi = tx.new_ref();
    tx.push(new_object("VDI", &vdi, &uuid, given));
    super::vdi::refresh(tx, &vdi);
    super::sr::refresh(tx, &a.SR);
    Ok(Value::Ref(vdi))
}

/// `VDI.forget(vdi)`: the record goes (with its VBDs), the file stays for a later `SR.scan`;
/// refused while attached (`VDI_IN_USE [vdi, "forget"]`) or busy.
pub fn forget(tx: &mut Tx, call: &Call) -> Reply {
    let vdi = call.str(0);
    existing(&tx.state, vdi)?;
    super::busy(&tx.state, f::vdi::CURRENT_OPERATIONS, vdi)?;
    if super::vdi::attached(&tx.state, vdi) {
        return Err(ApiError::new(ErrorCode::VdiInUse, [vdi, "forget"]));
    }
    super::vdi::forget(tx, vdi);
    Ok(Value::String(String::new()))
}

/// `VDI.set_name_label`, `VDI.set_name_description`: through the SM, so only while the SR is
/// plugged (`SR_HAS_NO_PBDS`).
pub fn set_name(tx: &mut Tx, call: &Call) -> Reply {
    let vdi = call.str(0);
    existing(&tx.state, vdi)?;
    super::sr::assert_plugged(&tx.state, &text(get(&tx.state, f::vdi::SR, vdi)))?;
    let key = if call.msg.name == "set_name_label" { f::vdi::NAME_LABEL } else { f::vdi::NAME_DESCRIPTION };
    tx.put(key, vdi, Value::String(call.str(1).to_string()));
    Ok(Value::String(String::new()))
}

/// Every VM with a VBD on the VDI must be halted (`VM_BAD_POWER_STATE [vm, "halted", actual]`):
/// `set_on_boot` and `set_allow_caching` change how the disk is attached.
fn assert_vms_halted(state: &State, vdi: &str) -> Result<(), ApiError> {
    for vbd in get(state, f::vdi::VBDS, vdi).as_set().unwrap_or(&[]) {
        let vm = text(get(state, f::vbd::VM, vbd.as_str().unwrap_or("")));
        let power = text(get(state, f::vm::POWER_STATE, &vm));
        if power != "Halted" {
            return Err(ApiError::new(ErrorCode::VmBadPowerState, [vm, "halted".into(), power.to_ascii_lowercase()]));
        }
    }
    Ok(())
}

/// `VDI.set_on_boot(self, value)`: the SR must be able to reset disks on boot.
pub fn set_on_boot(tx: &mut Tx, call: &Call) -> Reply {
    let vdi = call.str(0);
    existing(&tx.state, vdi)?;
    assert_vms_halted(&tx.state, vdi)?;
    super::busy(&tx.state, f::vdi::CURRENT_OPERATIONS, vdi)?;
    let sr = text(get(&tx.state, f::vdi::SR, vdi));
    if super::vdi::file(&tx.state, vdi).is_none() {
        return Err(ApiError::new(ErrorCode::SrOperationNotSupported, [sr]));
    }
    super::sr::assert_plugged(&tx.state, &sr)?;
    tx.put(f::vdi::ON_BOOT, vdi, call.args.get(1).cloned().unwrap_or(Value::Enum("persist".into())));
    Ok(Value::String(String::new()))
}

/// `VDI.set_allow_caching(self, value)`.
pub fn set_allow_caching(tx: &mut Tx, call: &Call) -> Reply {
    let vdi = call.str(0);
    existing(&tx.state, vdi)?;
    assert_vms_halted(&tx.state, vdi)?;
    tx.put(f::vdi::ALLOW_CACHING, vdi, Value::Bool(call.args.get(1).and_then(Value::as_bool).unwrap_or(false)));
    Ok(Value::String(String::new()))
}
