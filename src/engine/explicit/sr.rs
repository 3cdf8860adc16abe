//! Storage repositories (docs/xenapi-semantics.md §h.4; xapi `xapi_sr.ml`,
//! `xapi_sr_operations.ml`, `message_forwarding.ml`).
//!
//! The simulated host offers four SM types: `ext` (a directory the server makes beside the local
//! SR's), `file` (device_config `location`: any directory, made if missing), `iso` (`location`: a
//! directory of `.iso` images, read-only VDIs) and `udev` (removable media: no files). Any other
//! type is `SR_UNKNOWN_DRIVER`. `SR.create` and `SR.scan` and `SR.update` are long operations (the
//! host makes, lists and measures the directory); `introduce`, `forget`, the name setters and
//! `probe` are pure.

use super::super::effect::{Done, Effect, SrListing};
use super::super::implicit::{create_internal, destroy, new_object};
use super::super::state::State;
use super::super::tx::Tx;
use super::vm::{get, sr_dir};
use super::{args, Call, Long};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::schema::Class;
use crate::value::{Value, NULL_REF};

type Reply = Result<Value, ApiError>;

pub const SCAN: Long = Long { op: "scan", check: check_scan, plan: plan_scan, finish: finish_scan, marks: None };
pub const UPDATE: Long = Long { op: "update", check: check_scan, plan: plan_scan, finish: finish_update, marks: None };
pub const CREATE: Long =
    Long { op: "sr_create", check: check_create, plan: plan_create, finish: finish_create, marks: Some(marks_nothing) };
pub const DESTROY: Long =
    Long { op: "destroy", check: check_destroy, plan: plan_destroy, finish: finish_destroy, marks: None };

/// The SM types the simulated host offers, with the capabilities of each (`SM.capabilities`,
/// which `allowed_operations` follows as xapi's `xapi_sr_operations.ml` does).
pub const SM_TYPES: &[(&str, &[&str])] = &[
    ("ext", FILE_CAPABILITIES),
    ("file", FILE_CAPABILITIES),
    ("iso", &["SR_PROBE", "SR_UPDATE", "VDI_ATTACH", "VDI_DETACH", "VDI_INTRODUCE"]),
    ("udev", &["SR_UPDATE", "VDI_ATTACH", "VDI_DETACH"]),
];

const FILE_CAPABILITIES: &[&str] = &[
    "SR_PROBE",
    "SR_UPDATE",
    "VDI_CREATE",
    "VDI_DELETE",
    "VDI_ATTACH",
    "VDI_DETACH",
    "VDI_RESIZE",
    "VDI_CLONE",
    "VDI_SNAPSHOT",
    "VDI_INTRODUCE",
];

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn capabilities(kind: &str) -> &'static [&'static str] {
    SM_TYPES.iter().find(|(t, _)| *t == kind).map_or(&[], |(_, c)| c)
}

fn marks_nothing(_call: &Call) -> (&'static Class, String) {
    (class::SR.get(), String::new())
}

fn exists(state: &State, sr: &str) -> Result<(), ApiError> {
    if state.exists(class::SR.get().id, sr) {
        Ok(())
    } else {
        Err(ApiError::handle_invalid("SR", sr))
    }
}

fn pbds(state: &State, sr: &str) -> Vec<String> {
    get(state, f::sr::PBDS, sr).as_set().unwrap_or(&[]).iter().filter_map(|p| p.as_str().map(String::from)).collect()
}

fn attached(state: &State, pbd: &str) -> bool {
    get(state, f::pbd::CURRENTLY_ATTACHED, pbd).as_bool() == Some(true)
}

/// `SR_HAS_NO_PBDS [sr]` unless a PBD of the SR is plugged (xapi `forward_sr_op`).
pub fn assert_plugged(state: &State, sr: &str) -> Result<(), ApiError> {
    if pbds(state, sr).iter().any(|p| attached(state, p)) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::SrHasNoPbds, [sr]))
    }
}

// ---- scan and update ------------------------------------------------------------------------

fn check_scan(state: &State, call: &Call, _op: &str) -> Result<(), ApiError> {
    let sr = call.str(0);
    exists(state, sr)?;
    assert_plugged(state, sr)
}

fn plan_scan(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let sr = call.str(0);
    assert_plugged(state, sr)?;
    match sr_dir(state, sr) {
        Some(dir) => Ok(Effect::ScanDisks { sr_dir: dir, iso: text(get(state, f::sr::TYPE, sr)) == "iso" }),
        // Removable storage: nothing to list.
        None => Ok(Effect::Nothing),
    }
}

fn finish_scan(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, done: &Done) -> Reply {
    if let Done::Sr(listing) = done {
        record_listing(tx, call.str(0), listing, true);
    }
    Ok(Value::String(String::new()))
}

/// `SR.update`: the sizes only (xapi `xapi_sr.ml` `update`: `SR.stat`).
fn finish_update(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, done: &Done) -> Reply {
    if let Done::Sr(listing) = done {
        record_listing(tx, call.str(0), listing, false);
    }
    Ok(Value::String(String::new()))
}

/// What the host found: with `vdis`, a VDI for each file no VDI names and none for a VDI whose
/// file is gone (`SR.scan`, docs/xenapi-semantics.md §h.4); always the sizes.
fn record_listing(tx: &mut Tx, sr: &str, listing: &SrListing, vdis: bool) {
    if vdis {
        if text(get(&tx.state, f::sr::TYPE, sr)) == "iso" {
            scan_isos(tx, sr, &listing.isos);
        } else {
            scan_disks(tx, sr, &listing.disks);
        }
    }
    let virtual_total: i64 =
        vdis_of(&tx.state, sr).iter().map(|v| get(&tx.state, f::vdi::VIRTUAL_SIZE, v).as_int().unwrap_or(0)).sum();
    let updates = [
        (f::sr::PHYSICAL_SIZE, listing.size as i64),
        (f::sr::PHYSICAL_UTILISATION, listing.size.saturating_sub(listing.free) as i64),
        (f::sr::VIRTUAL_ALLOCATION, virtual_total),
    ];
    for (key, v) in updates {
        if get(&tx.state, key, sr) != Value::Int(v) {
            tx.put(key, sr, Value::Int(v));
        }
    }
}

fn vdis_of(state: &State, sr: &str) -> Vec<String> {
    get(state, f::sr::VDIS, sr).as_set().unwrap_or(&[]).iter().filter_map(|v| v.as_str().map(String::from)).collect()
}

fn scan_disks(tx: &mut Tx, sr: &str, files: &[(String, u64, u64)]) {
    let known: Vec<(String, String)> =
        vdis_of(&tx.state, sr).into_iter().map(|v| (text(get(&tx.state, f::vdi::LOCATION, &v)), v)).collect();
    // A VDI whose file is gone is forgotten, with the VBDs on it (none may be attached).
    for (location, vdi) in &known {
        if !files.iter().any(|(u, _, _)| u == location) && !super::vdi::attached(&tx.state, vdi) {
            super::vdi::forget(tx, vdi);
        }
    }
    let vdis = class::VDI.get();
    for (location, size, allocated) in files {
        let (size, allocated) = (*size as i64, *allocated as i64);
        match known.iter().find(|(known, _)| known == location) {
            Some((_, vdi)) => {
                for (key, v) in [(f::vdi::VIRTUAL_SIZE, size), (f::vdi::PHYSICAL_UTILISATION, allocated)] {
                    if get(&tx.state, key, vdi) != Value::Int(v) {
                        tx.put(key, vdi, Value::Int(v));
                    }
                }
            }
            // A file of another SR's VDI with this uuid would be a copy: left alone.
            None if tx.state.table(vdis.id).by_uuid.contains_key(location.as_str()) => {}
            None => {
                // Named by a free uuid, the VDI takes it; another name gets a new one.
                let uuid = if crate::value::is_uuid(location) { location.to_ascii_lowercase() } else { tx.new_uuid() };
                let vdi = tx.new_ref();
                tx.push(new_object(
                    "VDI",
                    &vdi,
                    &uuid,
                    vec![
                        ("SR", Value::Ref(sr.to_string())),
                        ("type", Value::Enum("user".into())),
                        ("virtual_size", Value::Int(size)),
                        ("physical_utilisation", Value::Int(allocated)),
                        ("location", Value::String(location.clone())),
                        ("managed", Value::Bool(true)),
                    ],
                ));
                super::vdi::refresh(tx, &vdi);
            }
        }
    }
}

/// An ISO library's VDIs: one per `.iso` file, read-only, named and located by the file name.
fn scan_isos(tx: &mut Tx, sr: &str, files: &[(String, u64)]) {
    let known: Vec<(String, String)> =
        vdis_of(&tx.state, sr).into_iter().map(|v| (text(get(&tx.state, f::vdi::LOCATION, &v)), v)).collect();
    for (location, vdi) in &known {
        if !files.iter().any(|(name, _)| name == location) && !super::vdi::attached(&tx.state, vdi) {
            super::vdi::forget(tx, vdi);
        }
    }
    for (name, size) in files {
        let size = *size as i64;
        match known.iter().find(|(location, _)| location == name) {
            Some((_, vdi)) => {
                if get(&tx.state, f::vdi::VIRTUAL_SIZE, vdi) != Value::Int(size) {
                    tx.put(f::vdi::VIRTUAL_SIZE, vdi, Value::Int(size));
                    tx.put(f::vdi::PHYSICAL_UTILISATION, vdi, Value::Int(size));
                }
            }
            None => {
                let vdi = create_internal(
                    tx,
                    "VDI",
                    vec![
                        ("name_label", Value::String(name.clone())),
                        ("SR", Value::Ref(sr.to_string())),
                        ("type", Value::Enum("user".into())),
                        ("virtual_size", Value::Int(size)),
                        ("physical_utilisation", Value::Int(size)),
                        ("location", Value::String(name.clone())),
                        ("read_only", Value::Bool(true)),
                        ("sharable", Value::Bool(true)),
                        ("managed", Value::Bool(true)),
                    ],
                );
                super::vdi::refresh(tx, &vdi);
            }
        }
    }
}

// ---- create and destroy ---------------------------------------------------------------------

/// Where an SR of `kind` keeps its files: `file` and `iso` at device_config `location`; `ext`
/// in a directory of its own beside the local SR's; `udev` nowhere.
fn directory_for(state: &State, kind: &str, config: &Value, uuid: &str) -> Result<Option<String>, ApiError> {
    let location = config.as_map().unwrap_or(&[]).iter().find(|(k, _)| k.as_str() == Some("location"));
    match kind {
        "udev" => Ok(None),
        "file" | "iso" => match location.and_then(|(_, v)| v.as_str()).filter(|l| !l.is_empty()) {
            Some(l) if l.starts_with('/') => Ok(Some(l.trim_end_matches('/').to_string())),
            Some(l) => Err(backend_failure("ConfigLocationInvalid", &format!("location {l} is not an absolute path"))),
            None => Err(backend_failure("ConfigLocationMissing", "device_config has no location")),
        },
        _ => {
            // ext: beside the first-boot local SR's directory.
            let local = state
                .table(class::SR.get().id)
                .objects
                .keys()
                .filter(|sr| text(get(state, f::sr::TYPE, sr)) == "ext")
                .find_map(|sr| sr_dir(state, sr));
            let parent = local
                .as_deref()
                .and_then(|d| std::path::Path::new(d).parent())
                .ok_or_else(|| backend_failure("ConfigDeviceInvalid", "this host has no local storage directory"))?;
            Ok(Some(parent.join(format!("sr-{uuid}")).to_string_lossy().into_owned()))
        }
    }
}

fn backend_failure(status: &str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::SrBackendFailure, [status, "", message])
}

fn sr_kind(call_type: &str) -> Result<String, ApiError> {
    let kind = call_type.to_ascii_lowercase();
    if SM_TYPES.iter().any(|(t, _)| *t == kind) {
        Ok(kind)
    } else {
        Err(ApiError::new(ErrorCode::SrUnknownDriver, [call_type]))
    }
}

fn check_create(state: &State, call: &Call, _op: &str) -> Result<(), ApiError> {
    let a = args::SrCreate::from(call);
    if !state.exists(class::HOST.get().id, &a.host) {
        return Err(ApiError::handle_invalid("host", &a.host));
    }
    let kind = sr_kind(&a.r#type)?;
    if a.device_config.as_map().unwrap_or(&[]).iter().any(|(k, _)| k.as_str() == Some("SRmaster")) {
        return Err(ApiError::new(ErrorCode::ValueNotSupported, ["SRmaster", "", "This key is for internal use only"]));
    }
    directory_for(state, &kind, &a.device_config, "").map(|_| ())
}

fn plan_create(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let a = args::SrCreate::from(call);
    let kind = sr_kind(&a.r#type)?;
    let uuid = super::vm::power::derived_uuid(task, 0);
    Ok(match directory_for(state, &kind, &a.device_config, &uuid)? {
        Some(dir) => Effect::SrCreate { sr_dir: dir, make: kind != "iso", iso: kind == "iso" },
        None => Effect::Nothing,
    })
}

/// `SR.create`: the record (as `SR.introduce` makes it), one PBD on the host, plugged, and the
/// sizes and (for an ISO library) the images the host found.
fn finish_create(tx: &mut Tx, call: &Call, task: &str, effect: &Effect, done: &Done) -> Reply {
    let a = args::SrCreate::from(call);
    let kind = sr_kind(&a.r#type)?;
    let uuid = super::vm::power::derived_uuid(task, 0);
    let sr =
        introduce_record(tx, &uuid, &a.name_label, &a.name_description, &kind, &a.content_type, a.shared, a.sm_config);
    let mut config: Vec<(Value, Value)> = a.device_config.as_map().unwrap_or(&[]).to_vec();
    if let Effect::SrCreate { sr_dir, .. } = effect {
        if kind == "ext" {
            config.retain(|(k, _)| k.as_str() != Some("location"));
            config.push((Value::str("location"), Value::String(sr_dir.clone())));
        }
    }
    create_internal(
        tx,
        "PBD",
        vec![
            ("host", Value::Ref(a.host.clone())),
            ("SR", Value::Ref(sr.clone())),
            ("device_config", Value::Map(config)),
            ("currently_attached", Value::Bool(true)),
        ],
    );
    if let Done::Sr(listing) = done {
        record_listing(tx, &sr, listing, true);
    }
    refresh(tx, &sr);
    Ok(Value::Ref(sr))
}

#[allow(clippy::too_many_arguments)]
fn introduce_record(
    tx: &mut Tx,
    uuid: &str,
    name_label: &str,
    name_description: &str,
    kind: &str,
    content_type: &str,
    shared: bool,
    sm_config: Value,
) -> String {
    let sr = tx.new_ref();
    tx.push(new_object(
        "SR",
        &sr,
        uuid,
        vec![
            ("name_label", Value::str(name_label)),
            ("name_description", Value::str(name_description)),
            ("type", Value::str(kind)),
            ("content_type", Value::str(content_type)),
            ("shared", Value::Bool(shared)),
            ("sm_config", sm_config),
            ("physical_size", Value::Int(-1)),
            ("physical_utilisation", Value::Int(-1)),
            ("virtual_allocation", Value::Int(0)),
        ],
    ));
    sr
}

/// `SR.introduce(uuid, name_label, name_description, type, content_type, shared, sm_config)`:
/// the record alone, no PBD (xapi `xapi_sr.ml` `introduce`).
pub fn introduce(tx: &mut Tx, call: &Call) -> Reply {
    let a = args::SrIntroduce::from(call);
    let uuid = if a.uuid.is_empty() { tx.new_uuid() } else { a.uuid.to_ascii_lowercase() };
    if tx.state.table(class::SR.get().id).by_uuid.contains_key(uuid.as_str()) {
        return Err(ApiError::new(ErrorCode::SrUuidExists, [uuid]));
    }
    let kind = a.r#type.to_ascii_lowercase();
    let sr =
        introduce_record(tx, &uuid, &a.name_label, &a.name_description, &kind, &a.content_type, a.shared, a.sm_config);
    refresh(tx, &sr);
    Ok(Value::Ref(sr))
}

/// The checks of `destroy` and `forget` in xapi's order (`xapi_sr_operations.ml`).
fn assert_removable(state: &State, sr: &str, op: &str) -> Result<(), ApiError> {
    exists(state, sr)?;
    let pbds = pbds(state, sr);
    if pbds.iter().any(|p| attached(state, p)) {
        return Err(ApiError::new(ErrorCode::SrHasPbd, [sr]));
    }
    if op == "destroy" {
        if pbds.is_empty() {
            return Err(ApiError::new(ErrorCode::SrHasNoPbds, [sr]));
        }
        let managed = vdis_of(state, sr).iter().any(|v| {
            get(state, f::vdi::MANAGED, v).as_bool() == Some(true)
                && get(state, f::vdi::TYPE, v).as_str() != Some("rrd")
        });
        if managed {
            return Err(ApiError::new(ErrorCode::SrNotEmpty, Vec::<String>::new()));
        }
    }
    super::busy(state, f::sr::CURRENT_OPERATIONS, sr)?;
    let indestructible = get(state, f::sr::OTHER_CONFIG, sr)
        .as_map()
        .unwrap_or(&[])
        .iter()
        .any(|(k, v)| k.as_str() == Some("indestructible") && v.as_str() == Some("true"));
    if op == "destroy" && indestructible {
        return Err(ApiError::new(ErrorCode::SrIndestructible, [sr]));
    }
    Ok(())
}

fn check_destroy(state: &State, call: &Call, _op: &str) -> Result<(), ApiError> {
    assert_removable(state, call.str(0), "destroy")
}

/// The host removes the directory of an `ext` SR (the server made it); a `file` or `iso`
/// directory belongs to the user and stays.
fn plan_destroy(state: &State, call: &Call, _task: &str) -> Result<Effect, ApiError> {
    let sr = call.str(0);
    match sr_dir(state, sr) {
        Some(dir) if text(get(state, f::sr::TYPE, sr)) == "ext" => Ok(Effect::SrRemove { sr_dir: dir }),
        _ => Ok(Effect::Nothing),
    }
}

fn finish_destroy(tx: &mut Tx, call: &Call, _task: &str, _effect: &Effect, _done: &Done) -> Reply {
    really_forget(tx, call.str(0));
    Ok(Value::String(String::new()))
}

/// `SR.forget(sr)`: the records go (PBDs, VDIs with their VBDs, the SR); no file is touched.
pub fn forget(tx: &mut Tx, call: &Call) -> Reply {
    let sr = call.str(0);
    assert_removable(&tx.state, sr, "forget")?;
    really_forget(tx, sr);
    Ok(Value::String(String::new()))
}

fn really_forget(tx: &mut Tx, sr: &str) {
    for pbd in pbds(&tx.state, sr) {
        destroy(tx, class::PBD.get(), &pbd);
    }
    for vdi in vdis_of(&tx.state, sr) {
        super::vdi::forget(tx, &vdi);
    }
    // The pool's and hosts' SR fields that name it are cleared by the fold.
    destroy(tx, class::SR.get(), sr);
}

// ---- setters and probe ----------------------------------------------------------------------

/// `SR.set_name_label(sr, value)`, `SR.set_name_description(sr, value)`: through the SM, so
/// only while plugged (`SR_HAS_NO_PBDS`).
pub fn set_name(tx: &mut Tx, call: &Call) -> Reply {
    let sr = call.str(0);
    exists(&tx.state, sr)?;
    assert_plugged(&tx.state, sr)?;
    let key = if call.msg.name == "set_name_label" { f::sr::NAME_LABEL } else { f::sr::NAME_DESCRIPTION };
    tx.put(key, sr, Value::String(call.str(1).to_string()));
    Ok(Value::String(String::new()))
}

/// `SR.set_shared(sr, value)`: not unshared while more than one PBD attaches it.
pub fn set_shared(tx: &mut Tx, call: &Call) -> Reply {
    let sr = call.str(0);
    exists(&tx.state, sr)?;
    let shared = call.args.get(1).and_then(Value::as_bool).unwrap_or(false);
    let pbds = pbds(&tx.state, sr);
    if !shared && pbds.len() > 1 {
        return Err(ApiError::new(ErrorCode::SrHasMultiplePbds, pbds));
    }
    tx.put(f::sr::SHARED, sr, Value::Bool(shared));
    Ok(Value::String(String::new()))
}

/// Setters xapi lets only its storage managers' own sessions call (`PERMISSION_DENIED [""]` for
/// every client session: `message_forwarding.ml`, `sm.ml` `assert_session_has_internal_sr_access`).
pub fn sm_only(state: &State, call: &Call) -> Reply {
    let class = call.class;
    if let Some(r) = call.args.first().and_then(Value::as_str) {
        if !state.exists(class.id, r) {
            return Err(ApiError::handle_invalid(&class.name, r));
        }
    }
    Err(ApiError::new(ErrorCode::PermissionDenied, [""]))
}

/// `SR.probe(host, device_config, type, sm_config)`: the SRs already made at the location the
/// device_config names, as xapi's SM plugins answer (`<SRlist><SR><UUID>…</UUID></SR></SRlist>`).
pub fn probe(state: &State, call: &Call) -> Reply {
    let a = args::SrProbe::from(call);
    if !state.exists(class::HOST.get().id, &a.host) {
        return Err(ApiError::handle_invalid("host", &a.host));
    }
    let kind = sr_kind(&a.r#type)?;
    let mut xml = String::from("<?xml version=\"1.0\" ?>\n<SRlist>\n");
    if kind != "udev" {
        let wanted = directory_for(state, &kind, &a.device_config, "")?;
        for sr in state.table(class::SR.get().id).objects.keys() {
            if text(get(state, f::sr::TYPE, sr)) == kind && sr_dir(state, sr) == wanted && wanted.is_some() {
                let uuid = text(get(state, f::sr::UUID, sr));
                xml.push_str(&format!("\t<SR>\n\t\t<UUID>{uuid}</UUID>\n\t</SR>\n"));
            }
        }
    }
    xml.push_str("</SRlist>\n");
    Ok(Value::String(xml))
}

// ---- allowed operations ---------------------------------------------------------------------

/// `allowed_operations` of an SR, as `xapi_sr_operations.ml` computes it: the SM's
/// capabilities, attached PBDs (destroy, forget), no PBD or managed VDIs (destroy), and one
/// operation at a time (plugs may overlap).
pub fn refresh(tx: &mut Tx, sr: &str) {
    if !tx.state.exists(class::SR.get().id, sr) {
        return;
    }
    let state = &tx.state;
    let caps = capabilities(&text(get(state, f::sr::TYPE, sr)));
    let needs = |op: &str| match op {
        "vdi_create" => Some("VDI_CREATE"),
        "vdi_destroy" => Some("VDI_DELETE"),
        "vdi_resize" => Some("VDI_RESIZE"),
        "vdi_introduce" => Some("VDI_INTRODUCE"),
        "vdi_snapshot" => Some("VDI_SNAPSHOT"),
        "update" => Some("SR_UPDATE"),
        _ => None,
    };
    let busy: Vec<String> = get(state, f::sr::CURRENT_OPERATIONS, sr)
        .as_map()
        .unwrap_or(&[])
        .iter()
        .map(|(_, op)| text(op.clone()))
        .collect();
    let ops = [
        "scan",
        "destroy",
        "forget",
        "plug",
        "unplug",
        "vdi_create",
        "vdi_destroy",
        "vdi_resize",
        "vdi_clone",
        "vdi_snapshot",
        "vdi_introduce",
        "update",
        "pbd_create",
        "pbd_destroy",
    ];
    let allowed: Vec<Value> = ops
        .iter()
        .filter(|op| needs(op).is_none_or(|cap| caps.contains(&cap)))
        .filter(|op| !matches!(**op, "destroy" | "forget") || assert_removable(state, sr, op).is_ok())
        .filter(|op| busy.is_empty() || (**op == "plug" && busy.iter().all(|b| b == "plug")))
        .map(|op| Value::Enum((*op).into()))
        .collect();
    let value = Value::Set(allowed);
    if get(state, f::sr::ALLOWED_OPERATIONS, sr) != value {
        tx.put(f::sr::ALLOWED_OPERATIONS, sr, value);
    }
}

/// The SR of a VDI, for callers that refresh it after a VDI comes or goes.
pub(super) fn of_vdi(state: &State, vdi: &str) -> Option<String> {
    get(state, f::vdi::SR, vdi)
        .as_str()
        .filter(|s| *s != NULL_REF && state.exists(class::SR.get().id, s))
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offered_type_has_capabilities_and_others_are_unknown() {
        for (kind, caps) in SM_TYPES {
            assert!(!caps.is_empty(), "{kind}");
            assert_eq!(sr_kind(&kind.to_ascii_uppercase()).unwrap(), *kind);
        }
        assert_eq!(sr_kind("nfs").unwrap_err().to_wire(), ["SR_UNKNOWN_DRIVER", "nfs"]);
    }
}
