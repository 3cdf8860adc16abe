//! Attaching an SR to a host (docs/xenapi-semantics.md §h.4; xapi `xapi_pbd.ml`): `PBD.plug`
//! and `PBD.unplug` are idempotent; an unplug is refused while a running VM on that host uses a
//! VDI of the SR, and a PBD is not destroyed while attached. An SR without an attached PBD takes
//! no new VDI (`SR_HAS_NO_PBDS`) and boots no VM (`VM_REQUIRES_SR`).

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
    }
    Ok(Value::String(String::new()))
}

/// `PBD.plug(self)`.
pub fn plug(tx: &mut Tx, call: &Call) -> Reply {
    existing(tx, call.str(0))?;
    set_attached(tx, call.str(0), true)
}

/// `PBD.unplug(self)`: `VDI_IN_USE [vdi, "unplug"]` for the first VDI of the SR attached to a
/// running VM on the PBD's host.
pub fn unplug(tx: &mut Tx, call: &Call) -> Reply {
    let pbd = call.str(0);
    existing(tx, pbd)?;
    let (sr, host) = (text(get(&tx.state, f::pbd::SR, pbd)), text(get(&tx.state, f::pbd::HOST, pbd)));
    for vdi in get(&tx.state, f::sr::VDIS, &sr).as_set().unwrap_or(&[]) {
        let vdi = vdi.as_str().unwrap_or("");
        let in_use = get(&tx.state, f::vdi::VBDS, vdi).as_set().unwrap_or(&[]).iter().any(|vbd| {
            let vbd = vbd.as_str().unwrap_or("");
            let vm = text(get(&tx.state, f::vbd::VM, vbd));
            get(&tx.state, f::vbd::CURRENTLY_ATTACHED, vbd).as_bool() == Some(true)
                && text(get(&tx.state, f::vm::RESIDENT_ON, &vm)) == host
        });
        if in_use {
            return Err(ApiError::new(ErrorCode::VdiInUse, [vdi, "unplug"]));
        }
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
    super::super::implicit::destroy(tx, class::PBD.get(), pbd);
    Ok(Value::String(String::new()))
}
