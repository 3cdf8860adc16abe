//! `SR.scan` (docs/xenapi-semantics.md §h.4; xapi `xapi_sr.ml` `scan`): the host lists the disk
//! files in the SR's directory; the outcome entry adds a VDI for a file no VDI names, forgets a
//! VDI whose file is gone, and brings sizes and the SR's utilisation up to date.

use super::super::effect::{Done, Effect};
use super::super::implicit::new_object;
use super::super::state::State;
use super::super::tx::Tx;
use super::vdi::writable_dir;
use super::vm::get;
use super::{Call, Long};
use crate::error::ApiError;
use crate::schema::generated::{class, field as f};
use crate::value::Value;

pub const SCAN: Long = Long { op: "scan", check: check_scan, plan: plan_scan, finish: finish_scan, marks: None };

fn check_scan(state: &State, call: &Call, _op: &str) -> Result<(), ApiError> {
    writable_dir(state, call.str(0)).map(|_| ())
}

fn plan_scan(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    Ok(Effect::ScanDisks { sr_dir: writable_dir(state, call.str(0))? })
}

fn finish_scan(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, done: &Done) -> Result<Value, ApiError> {
    let Done::Disks(files) = done else { return Err(ApiError::internal("the host listed no disks")) };
    let sr = call.str(0).to_string();
    let vdis = class::VDI.get();
    let known: Vec<(String, String)> = get(&tx.state, f::sr::VDIS, &sr)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .map(|v| (get(&tx.state, f::vdi::UUID, &v).as_str().unwrap_or("").to_string(), v))
        .collect();
    // A VDI whose file is gone is forgotten, with the VBDs on it (none may be attached).
    for (uuid, vdi) in &known {
        if files.iter().any(|(u, _, _)| u == uuid) {
            continue;
        }
        if super::vdi::attached(&tx.state, vdi) {
            continue;
        }
        super::vdi::forget(tx, vdi);
    }
    let (mut physical, mut virtual_total) = (0i64, 0i64);
    for (uuid, size, allocated) in files {
        let (size, allocated) = (*size as i64, *allocated as i64);
        physical += allocated;
        virtual_total += size;
        match known.iter().find(|(u, _)| u == uuid) {
            Some((_, vdi)) => {
                for (key, v) in [(f::vdi::VIRTUAL_SIZE, size), (f::vdi::PHYSICAL_UTILISATION, allocated)] {
                    if get(&tx.state, key, vdi) != Value::Int(v) {
                        tx.put(key, vdi, Value::Int(v));
                    }
                }
            }
            // A file of another SR's VDI with this uuid would be a copy: left alone.
            None if tx.state.table(vdis.id).by_uuid.contains_key(uuid) => {}
            None => {
                let vdi = tx.new_ref();
                tx.push(new_object(
                    "VDI",
                    &vdi,
                    uuid,
                    vec![
                        ("SR", Value::Ref(sr.clone())),
                        ("type", Value::Enum("user".into())),
                        ("virtual_size", Value::Int(size)),
                        ("physical_utilisation", Value::Int(allocated)),
                        ("location", Value::String(uuid.clone())),
                        ("managed", Value::Bool(true)),
                    ],
                ));
                super::vdi::refresh(tx, &vdi);
            }
        }
    }
    tx.put(f::sr::PHYSICAL_UTILISATION, &sr, Value::Int(physical));
    tx.put(f::sr::VIRTUAL_ALLOCATION, &sr, Value::Int(virtual_total));
    Ok(Value::String(String::new()))
}
