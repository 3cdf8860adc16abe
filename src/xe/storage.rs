//! The hand-written storage commands (`cli_operations.ml`): SRs, VDIs and VBDs.

use serde_json::{Map, Value as Json};

use super::api::s;
use super::argv::Params;
use super::failure::XeError;
use super::generic::{bytes_of_string, internal};
use super::records::{self, NULL_REF};
use super::table::{hand, Spec};
use super::Ctx;

pub const COMMANDS: &[Spec] = &[
    hand(
        "sr-create",
        &["name-label", "type"],
        &["name-description", "host-uuid", "device-config:", "shared", "physical-size", "content-type", "sm-config:"],
        "Create an SR of the given type (see sm-list) and plug it; prints its uuid.",
        sr_create,
    ),
    hand(
        "sr-scan",
        &["uuid"],
        &[],
        "Rescan an SR: disks found in it become VDIs, vanished ones are forgotten.",
        sr_scan,
    ),
    hand("sr-destroy", &["uuid"], &[], "Destroy an SR and everything in it.", sr_destroy),
    hand("sr-forget", &["uuid"], &[], "Forget an SR, leaving its contents.", sr_forget),
    hand("pbd-plug", &["uuid"], &[], "Attach an SR to its host through this PBD.", pbd_plug),
    hand("pbd-unplug", &["uuid"], &[], "Detach an SR from its host through this PBD.", pbd_unplug),
    hand("pbd-destroy", &["uuid"], &[], "Destroy an unplugged PBD.", pbd_destroy),
    hand(
        "vdi-create",
        &["sr-uuid", "name-label", "virtual-size"],
        &["sm-config:", "sharable", "tags:", "type"],
        "Create a VDI (virtual-size with an optional KiB/MiB/GiB/TiB unit); prints its uuid.",
        vdi_create,
    ),
    hand("vdi-destroy", &["uuid"], &[], "Destroy a VDI and its bytes.", vdi_destroy),
    hand("vdi-resize", &["uuid", "disk-size"], &["online"], "Grow a VDI to disk-size.", vdi_resize),
    hand(
        "vdi-copy",
        &["uuid"],
        &["sr-uuid", "base-vdi-uuid", "into-vdi-uuid"],
        "Copy a VDI into a new VDI on sr-uuid, or into the existing into-vdi-uuid; prints the copy's uuid.",
        vdi_copy,
    ),
    hand(
        "vdi-clone",
        &["uuid"],
        &["driver-params-", "new-name-label", "new-name-description"],
        "Clone a VDI; prints the clone's uuid.",
        vdi_clone,
    ),
    hand("vdi-snapshot", &["uuid"], &["driver-params-"], "Snapshot a VDI; prints the snapshot's uuid.", vdi_snapshot),
    hand(
        "vbd-create",
        &["vm-uuid", "device"],
        &["vdi-uuid", "bootable", "type", "mode", "unpluggable"],
        "Attach a VDI (or an empty CD drive) to a VM as a VBD; prints its uuid.",
        vbd_create,
    ),
    hand("vbd-plug", &["uuid"], &[], "Hot-plug a VBD into its running VM.", vbd_plug),
    hand("vbd-unplug", &["uuid"], &["timeout", "force"], "Hot-unplug a VBD from its running VM.", vbd_unplug),
    hand("vbd-destroy", &["uuid"], &[], "Destroy a VBD (the VDI stays).", vbd_destroy),
];

fn string_map(pairs: Vec<(String, String)>) -> Json {
    Json::Object(pairs.into_iter().map(|(k, v)| (k, Json::String(v))).collect::<Map<String, Json>>())
}

fn pool_master(ctx: &Ctx) -> Result<String, XeError> {
    let pools = ctx.api.call("pool.get_all", vec![])?;
    let pool = pools.as_array().and_then(|a| a.first()).and_then(Json::as_str).unwrap_or(NULL_REF).to_string();
    ctx.api.call_str("pool.get_master", vec![s(&pool)])
}

fn sr_create(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let shared = params.flag("shared")?;
    let host = match params.get("host-uuid") {
        Some(uuid) => records::ref_by_uuid(&ctx.api, "host", uuid)?,
        None => {
            let hosts = ctx.api.call("host.get_all", vec![])?;
            if hosts.as_array().map(Vec::len) == Some(1) || shared {
                pool_master(ctx)?
            } else {
                return Err(internal("Required parameter not found: host-uuid"));
            }
        }
    };
    let size = params.get("physical-size").map(|t| bytes_of_string("physical-size", t).unwrap_or(0)).unwrap_or(0);
    let mut device_config = Vec::new();
    for (k, v) in params.map_params("device-config") {
        match k.strip_suffix("-filename") {
            Some(key) => {
                let text = std::fs::read_to_string(&v).map_err(|_| internal("File not found"))?;
                device_config.push((key.to_string(), text));
            }
            None => device_config.push((k, v)),
        }
    }
    let sr = ctx.api.call_str(
        "SR.create",
        vec![
            s(&host),
            string_map(device_config),
            Json::from(size),
            s(params.req("name-label")?),
            s(params.get("name-description").unwrap_or("")),
            s(params.req("type")?),
            s(params.get("content-type").unwrap_or("")),
            Json::Bool(shared),
            string_map(params.map_params("sm-config")),
        ],
    )?;
    let uuid = ctx.api.call_str("SR.get_uuid", vec![s(&sr)])?;
    ctx.out.list(&[uuid]);
    Ok(())
}

fn sr_scan(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "SR", "SR.scan")
}

fn sr_destroy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "SR", "SR.destroy")
}

fn sr_forget(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "SR", "SR.forget")
}

fn vdi_create(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let sr = records::ref_by_uuid(&ctx.api, "SR", params.req("sr-uuid")?)?;
    let size = bytes_of_string("virtual-size", params.req("virtual-size")?)?;
    let ty = params.get("type").unwrap_or("user");
    if !matches!(ty, "system" | "user" | "suspend" | "crashdump") {
        return Err(internal(format!("Unknown vdi type: {ty}")));
    }
    let tags: Vec<Json> = params.map_params("tags").into_iter().map(|(k, _)| Json::String(k)).collect();
    let mut record = Map::new();
    record.insert("name_label".into(), s(params.req("name-label")?));
    record.insert("name_description".into(), s(""));
    record.insert("SR".into(), s(&sr));
    record.insert("virtual_size".into(), Json::from(size));
    record.insert("type".into(), s(ty));
    record.insert("sharable".into(), Json::Bool(params.flag("sharable")?));
    record.insert("read_only".into(), Json::Bool(false));
    record.insert("other_config".into(), Json::Object(Map::new()));
    record.insert("xenstore_data".into(), Json::Object(Map::new()));
    record.insert("sm_config".into(), string_map(params.map_params("sm-config")));
    record.insert("tags".into(), Json::Array(tags));
    let vdi = ctx.api.call_str("VDI.create", vec![Json::Object(record)])?;
    ctx.print_uuid_of("VDI", &vdi)
}

fn vdi_destroy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "VDI", "VDI.destroy")
}

fn vdi_resize(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let vdi = records::ref_by_uuid(&ctx.api, "VDI", params.req("uuid")?)?;
    let size = bytes_of_string("disk-size", params.req("disk-size")?)?;
    let method = if params.get("online") == Some("true") { "VDI.resize_online" } else { "VDI.resize" };
    ctx.api.call(method, vec![s(&vdi), Json::from(size)])?;
    Ok(())
}

fn vdi_copy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let vdi = records::ref_by_uuid(&ctx.api, "VDI", params.req("uuid")?)?;
    let base = match params.get("base-vdi-uuid") {
        Some(u) => records::ref_by_uuid(&ctx.api, "VDI", u)?,
        None => NULL_REF.into(),
    };
    let (sr, into) = match (params.get("sr-uuid"), params.get("into-vdi-uuid")) {
        (Some(sr), None) => (records::ref_by_uuid(&ctx.api, "SR", sr)?, NULL_REF.to_string()),
        (None, Some(into)) => (NULL_REF.to_string(), records::ref_by_uuid(&ctx.api, "VDI", into)?),
        _ => {
            return Err(internal(
                "Please specify one but not both of: a destination sr-uuid (I will create a fresh VDI); or a destination into-vdi-uuid (I will copy the blocks into this VDI)",
            ))
        }
    };
    // Asynchronous, so that a terminal shows the copy's progress.
    let task = ctx.api.call_str("Async.VDI.copy", vec![s(&vdi), s(&sr), s(&base), s(&into)])?;
    let bar = super::progress::Bar::choose(params.contains("progress"), ctx.out.minimal());
    let result = super::progress::wait(ctx, &task, bar)?;
    let copy = super::progress::result_ref(&result);
    ctx.print_uuid_of("VDI", &copy)
}

fn vdi_clone(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let vdi = records::ref_by_uuid(&ctx.api, "VDI", params.req("uuid")?)?;
    let clone = ctx.api.call_str("VDI.clone", vec![s(&vdi), string_map(params.map_params("driver-params"))])?;
    if let Some(name) = params.get("new-name-label") {
        ctx.api.call("VDI.set_name_label", vec![s(&clone), s(name)])?;
    }
    if let Some(desc) = params.get("new-name-description") {
        ctx.api.call("VDI.set_name_description", vec![s(&clone), s(desc)])?;
    }
    ctx.print_uuid_of("VDI", &clone)
}

fn vdi_snapshot(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let vdi = records::ref_by_uuid(&ctx.api, "VDI", params.req("uuid")?)?;
    let snap = ctx.api.call_str("VDI.snapshot", vec![s(&vdi), string_map(params.map_params("driver-params"))])?;
    ctx.print_uuid_of("VDI", &snap)
}

fn vbd_create(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let vm = records::ref_by_uuid(&ctx.api, "VM", params.req("vm-uuid")?)?;
    let (vdi, empty) = match params.get("vdi-uuid") {
        Some(u) => (records::ref_by_uuid(&ctx.api, "VDI", u)?, false),
        None => (NULL_REF.to_string(), true),
    };
    let mode = match params.get("mode").map(str::to_ascii_lowercase).as_deref() {
        None | Some("rw") => "RW",
        Some("ro") => "RO",
        Some(other) => return Err(internal(format!("Unknown mode: {other} (should be \"ro\" or \"rw\""))),
    };
    let ty = match params.get("type").map(str::to_ascii_lowercase).as_deref() {
        None | Some("disk") => "Disk",
        Some("cd") => "CD",
        Some("floppy") => "Floppy",
        Some(other) => {
            return Err(internal(format!("\"Unknown type: {other} (should be \"cd\", \"disk\" or \"floppy\"")))
        }
    };
    if ty == "Disk" && empty {
        return Err(internal("Empty VBDs can only be made for type=CD"));
    }
    let mut record = Map::new();
    record.insert("VM".into(), s(&vm));
    record.insert("VDI".into(), s(&vdi));
    record.insert("userdevice".into(), s(params.req("device")?));
    record.insert("bootable".into(), Json::Bool(params.flag("bootable")?));
    record.insert("mode".into(), s(mode));
    record.insert("type".into(), s(ty));
    record.insert("unpluggable".into(), Json::Bool(params.flag_or("unpluggable", true)?));
    record.insert("empty".into(), Json::Bool(empty));
    record.insert("qos_algorithm_type".into(), s(""));
    record.insert("qos_algorithm_params".into(), Json::Object(Map::new()));
    record.insert("other_config".into(), Json::Object(Map::new()));
    record.insert("device".into(), s(""));
    record.insert("currently_attached".into(), Json::Bool(false));
    let vbd = ctx.api.call_str("VBD.create", vec![Json::Object(record)])?;
    ctx.print_uuid_of("VBD", &vbd)
}

fn vbd_plug(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "VBD", "VBD.plug")
}

fn vbd_unplug(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let vbd = records::ref_by_uuid(&ctx.api, "VBD", params.req("uuid")?)?;
    let timeout: f64 = match params.get("timeout") {
        None => 0.0,
        Some(t) => t.parse().map_err(|_| internal("Failed to parse parameter 'timeout': expecting a float"))?,
    };
    let method = if params.flag("force")? { "VBD.unplug_force" } else { "VBD.unplug" };
    match ctx.api.call(method, vec![s(&vbd)]) {
        Ok(_) => Ok(()),
        Err(XeError::Api { code, params: p }) if code == "DEVICE_DETACH_REJECTED" && timeout > 0.0 => {
            let start = std::time::Instant::now();
            while start.elapsed().as_secs_f64() < timeout {
                std::thread::sleep(std::time::Duration::from_secs(5).min(std::time::Duration::from_secs_f64(timeout)));
                if ctx.api.call("VBD.get_currently_attached", vec![s(&vbd)])? == Json::Bool(false) {
                    return Ok(());
                }
            }
            Err(XeError::Api { code, params: p })
        }
        Err(e) => Err(e),
    }
}

fn vbd_destroy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "VBD", "VBD.destroy")
}

fn pbd_plug(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "PBD", "PBD.plug")
}

fn pbd_unplug(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "PBD", "PBD.unplug")
}

fn pbd_destroy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "PBD", "PBD.destroy")
}
