//! Attaching an SR to a host (docs/xenapi-semantics.md §h.4; xapi `xapi_pbd.ml`): `PBD.create`
//! refuses a second PBD for the same SR and host; `PBD.plug` and `PBD.unplug` are idempotent; a
//! plug needs a driver for the SR's type; an unplug is refused while a running VM on that host
//! uses a VDI of the SR, and a PBD is not destroyed while attached. An SR without an attached PBD
//! takes no new VDI (`SR_HAS_NO_PBDS`) and boots no VM (`VM_REQUIRES_SR`).

use super::super::tx::Tx;
use super::vm::get;
use super::Call;
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::value::Value;

type Reply = Result<Value, ApiError>;

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn existing(tx: &Tx, pbd: &str) -> Result<(), ApiError> {
    if tx.state.exists(class::PBD.get().id, pbd) {
        Ok(())
    } else {
        Err(ApiError::handle_invalid("PBD", pbd))
    }
}

fn set_attached(tx: &mut Tx, pbd: &str, attached: bool) -> Reply {
    if get(&tx.state, f::pbd::CURRENTLY_ATTACHED, pbd).as_bool() != Some(attached) {
        tx.put(f::pbd::CURRENTLY_ATTACHED, pbd, Value::Bool(attached));
        super::sr::refresh(tx, &text(get(&tx.state, f::pbd::SR, pbd)));
    }
    Ok(Value::String(String::new()))
}

/// `PBD.create(record)`: `PBD_EXISTS [sr, host, pbd]` for a second PBD of the SR on the host;
/// the `SRmaster` key is xapi's own (`VALUE_NOT_SUPPORTED`); `other_config` is not taken, as
/// xapi's; the new PBD is unplugged.
pub fn create(tx: &mut Tx, call: &Call) -> Reply {
    let (host, sr, config) = (text(call.member("host")), text(call.member("SR")), call.member("device_config"));
    if !tx.state.exists(class::HOST.get().id, &host) {
        return Err(ApiError::handle_invalid("host", &host));
    }
    if !tx.state.exists(class::SR.get().id, &sr) {
        return Err(ApiError::handle_invalid("SR", &sr));
    }
    let existing = get(&tx.state, f::sr::PBDS, &sr)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .filter_map(|p| p.as_str().map(String::from))
        .find(|p| text(get(&tx.state, f::pbd::HOST, p)) == host);
    if let Some(pbd) = existing {
        return Err(ApiError::new(ErrorCode::PbdExists, [sr, host, pbd]));
    }
    let master = config.as_map().unwrap_or(&[]).iter().find(|(k, _)| k.as_str() == Some("SRmaster")).cloned();
    if let Some((_, v)) = master {
        let v = text(v);
        return Err(ApiError::new(
            ErrorCode::ValueNotSupported,
            ["SRmaster", v.as_str(), "This key is for internal use only"],
        ));
    }
    let config = if config == Value::Null { Value::Map(Vec::new()) } else { config };
    let pbd = super::super::implicit::create_internal(
        tx,
        "PBD",
        vec![
            ("host", Value::Ref(host)),
            ("SR", Value::Ref(sr.clone())),
            ("device_config", config),
            ("currently_attached", Value::Bool(false)),
        ],
    );
    super::sr::refresh(tx, &sr);
    Ok(Value::Ref(pbd))
}

/// `PBD.plug(self)`: the SR's type needs a driver here (`SR_UNKNOWN_DRIVER [type]`, checked
/// even when already plugged, as xapi binds first).
pub fn plug(tx: &mut Tx, call: &Call) -> Reply {
    let pbd = call.str(0);
    existing(tx, pbd)?;
    let sr = text(get(&tx.state, f::pbd::SR, pbd));
    let kind = text(get(&tx.state, f::sr::TYPE, &sr));
    if !super::sr::SM_TYPES.iter().any(|(t, _)| *t == kind) {
        return Err(ApiError::new(ErrorCode::SrUnknownDriver, [kind]));
    }
    set_attached(tx, pbd, true)
}

/// `PBD.unplug(self)`: refused while a VDI of the SR is busy (`OTHER_OPERATION_IN_PROGRESS`) or
/// attached to a running VM on the PBD's host (`VDI_IN_USE` naming every such VDI, as xapi's
/// `xapi_pbd.ml` sends it).
pub fn unplug(tx: &mut Tx, call: &Call) -> Reply {
    let pbd = call.str(0);
    existing(tx, pbd)?;
    let (sr, host) = (text(get(&tx.state, f::pbd::SR, pbd)), text(get(&tx.state, f::pbd::HOST, pbd)));
    let vdis: Vec<String> = get(&tx.state, f::sr::VDIS, &sr)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    for vdi in &vdis {
        super::busy(&tx.state, f::vdi::CURRENT_OPERATIONS, vdi)?;
    }
    if get(&tx.state, f::pbd::CURRENTLY_ATTACHED, pbd).as_bool() != Some(true) {
        return Ok(Value::String(String::new()));
    }
    let in_use: Vec<String> = vdis
        .into_iter()
        .filter(|vdi| {
            get(&tx.state, f::vdi::VBDS, vdi).as_set().unwrap_or(&[]).iter().any(|vbd| {
                let vbd = vbd.as_str().unwrap_or("");
                let vm = text(get(&tx.state, f::vbd::VM, vbd));
                get(&tx.state, f::vbd::CURRENTLY_ATTACHED, vbd).as_bool() == Some(true)
                    && text(get(&tx.state, f::vm::RESIDENT_ON, &vm)) == host
            })
        })
        .collect();
    if !in_use.is_empty() {
        return Err(ApiError::new(ErrorCode::VdiInUse, in_use));
    }
    set_attached(tx, pbd, false)
}

/// `PBD.destroy(self)`: not while attached.
pub fn destroy(tx: &mut Tx, call: &Call) -> Reply {
    let pbd = call.str(0);
    existing(tx, pbd)?;
    if get(&tx.state, f::pbd::CURRENTLY_ATTACHED, pbd).as_bool() == Some(true) {
        return Err(ApiError::new(ErrorCode::OperationNotAllowed, ["PBD is currently attached"]));
    }
    let sr = text(get(&tx.state, f::pbd::SR, pbd));
    super::super::implicit::destroy(tx, class::PBD.get(), pbd);
    super::sr::refresh(tx, &sr);
    Ok(Value::String(String::new()))
}
