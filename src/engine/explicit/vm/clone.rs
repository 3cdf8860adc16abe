//! `VM.clone`, `VM.copy` and `VM.provision` (docs/xenapi-semantics.md §g.5, §g.7): the new
//! records are logged in the outcome entry, after the host has written the disk files.

use super::super::super::effect::{DiskFile, Done, Effect};
use super::super::super::implicit::{create_internal, new_object};
use super::super::super::state::State;
use super::super::super::tx::Tx;
use super::super::{Call, Long};
use super::get;
use super::power::derived_uuid;
use super::{check_op, sr_dir};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::{schema, Relation};
use crate::value::{Value, NULL_REF};

pub const CLONE: Long = Long { op: "clone", check: check_op, plan: plan_copy, finish: finish_copy, marks: None };
pub const COPY: Long = Long { op: "copy", check: check_op, plan: plan_copy, finish: finish_copy, marks: None };
pub const PROVISION: Long =
    Long { op: "provision", check: check_op, plan: plan_provision, finish: finish_provision, marks: None };

/// The Disk VBDs of a VM with their VDIs: `(vbd, vdi)`.
pub(super) fn disks(state: &State, vm: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for vbd in get(state, f::vm::VBDS, vm).as_set().unwrap_or(&[]) {
        let vbd = vbd.as_str().unwrap_or("").to_string();
        let vdi = get(state, f::vbd::VDI, &vbd).as_str().unwrap_or(NULL_REF).to_string();
        let disk = get(state, f::vbd::TYPE, &vbd).as_str() == Some("Disk");
        if disk && vdi != NULL_REF {
            out.push((vbd, vdi));
        }
    }
    out
}

/// Where copies go: `VM.copy`'s SR argument, else the source disk's own SR.
fn target_sr(state: &State, call: &Call, vdi: &str) -> String {
    match call.args.get(2).and_then(Value::as_str) {
        Some(sr) if sr != NULL_REF && !sr.is_empty() && call.msg.name == "copy" => sr.to_string(),
        _ => get(state, f::vdi::SR, vdi).as_str().unwrap_or(NULL_REF).to_string(),
    }
}

pub(super) fn file_of(state: &State, sr: &str, uuid: String) -> Result<DiskFile, ApiError> {
    let dir = sr_dir(state, sr).ok_or_else(|| ApiError::new(ErrorCode::SrNotAttached, [sr]))?;
    Ok(DiskFile { sr_dir: dir, uuid })
}

fn plan_copy(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let mut copies = Vec::new();
    for (i, (_, vdi)) in disks(state, call.str(0)).into_iter().enumerate() {
        let from_sr = get(state, f::vdi::SR, &vdi).as_str().unwrap_or(NULL_REF).to_string();
        let from = file_of(state, &from_sr, get(state, f::vdi::UUID, &vdi).as_str().unwrap_or("").to_string())?;
        let to = file_of(state, &target_sr(state, call, &vdi), derived_uuid(task, i as u32))?;
        copies.push((from, to));
    }
    Ok(if copies.is_empty() { Effect::Nothing } else { Effect::CopyDisks(copies) })
}

/// A stored field's value for a new object copied from `source`, or `None` to take the default.
pub(super) fn copied_fields(state: &State, class: &str, source: &str) -> Vec<(String, Value)> {
    let c = schema().class(class).expect("a class");
    let Some(o) = state.get(c.id, source) else { return Vec::new() };
    c.fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !matches!(f.relation, Relation::Many { .. }) && f.name != "uuid")
        .map(|(i, f)| (f.name.clone(), o.fields[i].clone()))
        .collect()
}

pub(super) fn with(mut fields: Vec<(String, Value)>, overrides: Vec<(&str, Value)>) -> Vec<(String, Value)> {
    for (k, v) in overrides {
        match fields.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v,
            None => fields.push((k.to_string(), v)),
        }
    }
    fields
}

pub(super) fn create_from(tx: &mut Tx, class: &str, uuid: &str, fields: Vec<(String, Value)>) -> String {
    let r = tx.new_ref();
    let given: Vec<(&str, Value)> = fields.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    tx.push(new_object(class, &r, uuid, given));
    r
}

/// The new VM's `other_config`: `default_template` and `xensource_internal` dropped, a new
/// `mac_seed` (a snapshot keeps its VM's), and `base_template_name` when the source is a template.
fn clone_other_config(state: &State, vm: &str, mac_seed: Option<String>) -> Value {
    let mut entries: Vec<(Value, Value)> = get(state, f::vm::OTHER_CONFIG, vm)
        .as_map()
        .unwrap_or(&[])
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), Some("default_template" | "xensource_internal")))
        .filter(|(k, _)| mac_seed.is_none() || k.as_str() != Some("mac_seed"))
        .cloned()
        .collect();
    if let Some(seed) = mac_seed {
        entries.push((Value::str("mac_seed"), Value::String(seed)));
    }
    if get(state, f::vm::IS_A_TEMPLATE, vm).as_bool() == Some(true) {
        let name = get(state, f::vm::NAME_LABEL, vm);
        entries.retain(|(k, _)| k.as_str() != Some("base_template_name"));
        entries.push((Value::str("base_template_name"), name));
    }
    Value::Map(entries)
}

fn finish_copy(tx: &mut Tx, call: &Call, _task: &str, effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let copies: &[(DiskFile, DiskFile)] = match effect {
        Effect::CopyDisks(c) => c,
        _ => &[],
    };
    let sr = match call.args.get(2).and_then(Value::as_str) {
        Some(sr) if sr != NULL_REF && !sr.is_empty() && call.msg.name == "copy" => Some(sr.to_string()),
        _ => None,
    };
    let vm = make_vm(tx, call.str(0), &Made { name: call.str(1), sr, snapshot: None }, copies)?;
    Ok(Value::Ref(vm))
}

/// What kind of VM [`make_vm`] makes.
pub(super) struct Made<'a> {
    pub name: &'a str,
    /// `VM.copy`'s SR for the new disks (else each disk's own).
    pub sr: Option<String>,
    /// A snapshot or checkpoint (else a clone or copy).
    pub snapshot: Option<Snapshot<'a>>,
}

pub(super) struct Snapshot<'a> {
    /// VDIs left out (`ignore_vdis`): their VBDs are not copied.
    pub ignore: &'a [String],
    /// `snapshot_info`.
    pub info: Vec<(&'static str, String)>,
    /// A checkpoint's memory image (its file, its SR), making the snapshot `Suspended`.
    pub image: Option<(DiskFile, String)>,
}

/// A new VM from `source` (xapi `xapi_vm_clone.ml` `copy_vm_record`, `clone`): its record copied
/// with xapi's overrides, its disks from the files the host made (`copies`, matched by the source
/// VDI's uuid), CD and empty VBDs as they are, its VIFs (a snapshot keeps their MACs).
pub(super) fn make_vm(
    tx: &mut Tx,
    source: &str,
    made: &Made,
    copies: &[(DiskFile, DiskFile)],
) -> Result<String, ApiError> {
    let source = source.to_string();
    let now = Value::DateTime(tx.ctx.now_secs());
    let metrics = create_internal(tx, "VM_metrics", vec![("last_updated", now.clone())]);
    let uuid = tx.new_uuid();
    let snapshot = made.snapshot.as_ref();
    let mac_seed = if snapshot.is_some() { None } else { Some(tx.new_uuid()) };
    let mut overrides = vec![
        ("name_label", Value::String(made.name.to_string())),
        ("is_default_template", Value::Bool(false)),
        ("other_config", clone_other_config(&tx.state, &source, mac_seed)),
        ("power_state", Value::Enum("Halted".into())),
        ("allowed_operations", Value::Set(vec![])),
        ("current_operations", Value::Map(vec![])),
        ("metrics", Value::Ref(metrics)),
        ("guest_metrics", Value::Ref(NULL_REF.into())),
        ("resident_on", Value::Ref(NULL_REF.into())),
        ("scheduled_to_be_resident_on", Value::Ref(NULL_REF.into())),
        ("domid", Value::Int(-1)),
        ("suspend_VDI", Value::Ref(NULL_REF.into())),
        ("suspend_SR", Value::Ref(NULL_REF.into())),
        ("ha_always_run", Value::Bool(false)),
        ("blobs", Value::Map(vec![])),
    ];
    match snapshot {
        Some(s) => overrides.extend([
            ("is_a_snapshot", Value::Bool(true)),
            ("is_a_template", Value::Bool(true)),
            ("snapshot_of", Value::Ref(source.clone())),
            ("snapshot_time", now.clone()),
            ("transportable_snapshot_id", Value::str("")),
            ("snapshot_info", Value::string_map(s.info.iter().map(|(k, v)| (*k, v.as_str())))),
        ]),
        None => overrides.extend([
            ("parent", Value::Ref(NULL_REF.into())),
            ("is_a_snapshot", Value::Bool(false)),
            ("snapshot_of", Value::Ref(NULL_REF.into())),
        ]),
    }
    let vm = create_from(tx, "VM", &uuid, with(copied_fields(&tx.state, "VM", &source), overrides));
    if let Some(s) = snapshot {
        // The snapshot takes the VM's place as the parent of what the VM becomes next.
        tx.put(f::vm::PARENT, &source, Value::Ref(vm.clone()));
        if let Some((image, sr)) = &s.image {
            let vdi =
                suspend_vdi(tx, &uuid, image, sr.clone(), super::int(&tx.state, &source, f::vm::MEMORY_STATIC_MAX));
            tx.put(f::vm::SUSPEND_VDI, &vm, Value::Ref(vdi));
            tx.put(f::vm::POWER_STATE, &vm, Value::Enum("Suspended".into()));
        }
    }
    let disks = disks(&tx.state, &source);
    let vbds = get(&tx.state, f::vm::VBDS, &source).as_set().unwrap_or(&[]).to_vec();
    for vbd in vbds {
        let vbd = vbd.as_str().unwrap_or("").to_string();
        let mut vdi = get(&tx.state, f::vbd::VDI, &vbd);
        if snapshot.is_some_and(|s| vdi.as_str().is_some_and(|v| s.ignore.iter().any(|i| i == v))) {
            continue;
        }
        if let Some((_, old)) = disks.iter().find(|(b, _)| *b == vbd) {
            // The copy the host made of this disk (a disk attached after the plan has none).
            let old_uuid = get(&tx.state, f::vdi::UUID, old);
            let (_, to) =
                copies.iter().find(|(from, _)| Some(from.uuid.as_str()) == old_uuid.as_str()).ok_or_else(|| {
                    ApiError::new(ErrorCode::OperationNotAllowed, ["a disk was attached during the copy"])
                })?;
            let sr = match &made.sr {
                Some(sr) => sr.clone(),
                None => get(&tx.state, f::vdi::SR, old).as_str().unwrap_or(NULL_REF).to_string(),
            };
            let mut overrides = vec![
                ("SR", Value::Ref(sr)),
                ("location", Value::String(to.uuid.clone())),
                ("allowed_operations", Value::Set(vec![])),
                ("current_operations", Value::Map(vec![])),
            ];
            overrides.extend(match snapshot {
                Some(_) => [
                    ("is_a_snapshot", Value::Bool(true)),
                    ("snapshot_of", Value::Ref(old.clone())),
                    ("snapshot_time", now.clone()),
                ],
                None => [
                    ("is_a_snapshot", Value::Bool(false)),
                    ("snapshot_of", Value::Ref(NULL_REF.into())),
                    ("snapshot_time", Value::DateTime(0)),
                ],
            });
            vdi = Value::Ref(create_from(tx, "VDI", &to.uuid, with(copied_fields(&tx.state, "VDI", old), overrides)));
        }
        let uuid = tx.new_uuid();
        let fields = with(
            copied_fields(&tx.state, "VBD", &vbd),
            vec![
                ("VM", Value::Ref(vm.clone())),
                ("VDI", vdi),
                ("currently_attached", Value::Bool(false)),
                ("allowed_operations", Value::Set(vec![])),
                ("current_operations", Value::Map(vec![])),
                ("metrics", Value::Ref(NULL_REF.into())),
            ],
        );
        create_from(tx, "VBD", &uuid, fields);
    }
    for vif in get(&tx.state, f::vm::VIFS, &source).as_set().unwrap_or(&[]).to_vec() {
        copy_vif(tx, vif.as_str().unwrap_or(""), &vm, snapshot.is_some());
    }
    super::ops::refresh(tx, &vm);
    Ok(vm)
}

/// A copy of a VIF for `vm`; a new MAC unless `keep_mac` (snapshots and reverts keep it).
pub(super) fn copy_vif(tx: &mut Tx, vif: &str, vm: &str, keep_mac: bool) -> String {
    let uuid = tx.new_uuid();
    let mut overrides = vec![
        ("VM", Value::Ref(vm.to_string())),
        ("currently_attached", Value::Bool(false)),
        ("allowed_operations", Value::Set(vec![])),
        ("current_operations", Value::Map(vec![])),
        ("metrics", Value::Ref(NULL_REF.into())),
    ];
    if !keep_mac {
        // As xapi regenerates it: from the new VM's mac_seed and the device (§h.2).
        let seed = super::super::mac::seed(&tx.state, vm);
        let device = get(&tx.state, f::vif::DEVICE, vif).as_str().and_then(|d| d.parse::<u32>().ok());
        let mac = match (seed, device) {
            (Some(seed), Some(device)) => super::super::mac::generated(device, &seed),
            _ => mac_from(&uuid),
        };
        overrides.push(("MAC", Value::String(mac)));
        overrides.push(("MAC_autogenerated", Value::Bool(true)));
    }
    create_from(tx, "VIF", &uuid, with(copied_fields(&tx.state, "VIF", vif), overrides))
}

/// A VM's memory image as a VDI of type `suspend` (sized from the VM's memory) in `sr`.
pub(super) fn suspend_vdi(tx: &mut Tx, vm_uuid: &str, image: &DiskFile, sr: String, size: i64) -> String {
    let vdi = tx.new_ref();
    tx.push(new_object(
        "VDI",
        &vdi,
        &image.uuid,
        vec![
            ("name_label", Value::String(format!("Suspend image for VM {vm_uuid}"))),
            ("SR", Value::Ref(sr)),
            ("type", Value::Enum("suspend".into())),
            ("virtual_size", Value::Int(size)),
            ("physical_utilisation", Value::Int(size)),
            ("location", Value::String(image.uuid.clone())),
            ("managed", Value::Bool(true)),
        ],
    ));
    vdi
}

/// A new VIF's MAC, from the first six bytes of its uuid.
pub(super) fn mac_from(uuid: &str) -> String {
    let hex: String = uuid.chars().filter(char::is_ascii_hexdigit).collect();
    let mut b = [0u8; 6];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    crate::value::format_mac(b)
}

/// One `<disk>` of a template's `other_config:disks`.
#[derive(Debug, PartialEq)]
struct DiskSpec {
    device: String,
    size: i64,
    sr: String,
    bootable: bool,
    kind: String,
}

/// Parses the provisioning XML (xapi `xapi_templates.ml` `disk_of_xml`): a `<provision>` root
/// without attributes holding `<disk device size sr bootable [type]/>` elements.
fn parse_disks(xml: &str) -> Result<Vec<DiskSpec>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut root = false;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) | Event::Empty(e) if e.name().0 == "provision" => {
                if e.attributes().next().is_some() {
                    return Err("the provision element has attributes".into());
                }
                root = true;
            }
            Event::Start(e) | Event::Empty(e) if e.name().0 == "disk" && root => {
                let get = |name: &str| -> Option<String> {
                    e.attributes().flatten().find(|a| a.key.0 == name).map(|a| a.value.to_string())
                };
                let device = get("device").ok_or("a disk without device")?;
                let size = get("size").and_then(|s| s.parse().ok()).ok_or("a disk without a valid size")?;
                let sr = get("sr").ok_or("a disk without sr")?;
                let bootable = get("bootable").is_some_and(|b| b == "true");
                let kind = get("type").unwrap_or_else(|| "system".into());
                out.push(DiskSpec { device, size, sr, bootable, kind });
            }
            Event::Start(e) | Event::Empty(e) => {
                return Err(format!("unexpected element {}", e.name().0));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root {
        return Err("no provision element".into());
    }
    Ok(out)
}

fn other_config_key(state: &State, vm: &str, key: &str) -> Option<String> {
    get(state, f::vm::OTHER_CONFIG, vm)
        .as_map()
        .unwrap_or(&[])
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .and_then(|(_, v)| v.as_str().map(String::from))
}

/// The SR a `<disk>` names: its uuid, or the pool's default SR when empty.
fn disk_sr(state: &State, uuid: &str) -> Result<String, ApiError> {
    let srs = schema().class("SR").expect("SR");
    if uuid.is_empty() {
        let sr = super::pool_ref(state, "default_SR");
        if state.exists(srs.id, &sr) {
            return Ok(sr);
        }
        return Err(ApiError::new(ErrorCode::UuidInvalid, ["sr", ""]));
    }
    state
        .table(srs.id)
        .by_uuid
        .get(uuid)
        .map(|r| r.to_string())
        .ok_or_else(|| ApiError::new(ErrorCode::UuidInvalid, ["sr", uuid]))
}

fn provision_disks(state: &State, vm: &str) -> Result<Vec<(DiskSpec, String)>, ApiError> {
    let Some(xml) = other_config_key(state, vm, "disks") else { return Ok(Vec::new()) };
    let specs = parse_disks(&xml).map_err(|e| ApiError::internal(format!("other_config:disks: {e}")))?;
    specs
        .into_iter()
        .map(|d| {
            let sr = disk_sr(state, &d.sr)?;
            Ok((d, sr))
        })
        .collect()
}

fn plan_provision(state: &State, call: &Call, task: &str) -> Result<Effect, ApiError> {
    let mut files = Vec::new();
    for (i, (disk, sr)) in provision_disks(state, call.str(0))?.into_iter().enumerate() {
        files.push((file_of(state, &sr, derived_uuid(task, i as u32))?, disk.size.max(0) as u64));
    }
    Ok(if files.is_empty() { Effect::Nothing } else { Effect::CreateDisks(files) })
}

fn finish_provision(tx: &mut Tx, call: &Call, task: &str, effect: &Effect, _done: &Done) -> Result<Value, ApiError> {
    let vm = call.str(0).to_string();
    let disks = provision_disks(&tx.state, &vm)?;
    let made = match effect {
        Effect::CreateDisks(files) => files.len(),
        _ => 0,
    };
    if disks.len() != made {
        // `other_config:disks` changed while the files were being made.
        return Err(ApiError::new(
            ErrorCode::OperationNotAllowed,
            ["the template's disks changed during provisioning"],
        ));
    }
    tx.put(f::vm::IS_A_TEMPLATE, &vm, Value::Bool(false));
    let vm_uuid = super::vm_uuid(&tx.state, &vm);
    for (i, (disk, sr)) in disks.into_iter().enumerate() {
        let uuid = derived_uuid(task, i as u32);
        let vdi = tx.new_ref();
        tx.push(new_object(
            "VDI",
            &vdi,
            &uuid,
            vec![
                ("name_label", Value::String(disk.device.clone())),
                ("name_description", Value::str("Created by template provisioner")),
                ("SR", Value::Ref(sr)),
                ("virtual_size", Value::Int(disk.size)),
                ("type", Value::Enum(disk.kind.clone())),
                ("location", Value::String(uuid.clone())),
                ("managed", Value::Bool(true)),
                ("sm_config", Value::string_map([("vmhint", vm_uuid.as_str())])),
            ],
        ));
        create_internal(
            tx,
            "VBD",
            vec![
                ("VM", Value::Ref(vm.clone())),
                ("VDI", Value::Ref(vdi)),
                ("userdevice", Value::String(disk.device)),
                ("bootable", Value::Bool(disk.bootable)),
                ("mode", Value::Enum("RW".into())),
                ("type", Value::Enum("Disk".into())),
                ("unpluggable", Value::Bool(disk.kind != "system")),
                ("other_config", Value::string_map([("owner", "")])),
            ],
        );
    }
    let kept: Vec<(Value, Value)> = get(&tx.state, f::vm::OTHER_CONFIG, &vm)
        .as_map()
        .unwrap_or(&[])
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), Some("disks" | "postinstall")))
        .cloned()
        .collect();
    tx.put(f::vm::OTHER_CONFIG, &vm, Value::Map(kept));
    Ok(Value::String(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provisioning_xml_of_the_templates_parses() {
        let xml = r#"<provision><disk device="0" size="10737418240" sr="" bootable="true" type="system"/></provision>"#;
        let disks = parse_disks(xml).unwrap();
        assert_eq!(
            disks,
            vec![DiskSpec { device: "0".into(), size: 10 << 30, sr: "".into(), bootable: true, kind: "system".into() }]
        );
        assert!(parse_disks(r#"<provision a="1"/>"#).is_err());
        assert!(parse_disks(r#"<disks/>"#).is_err());
    }
}
