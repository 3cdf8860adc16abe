//! The hand-written VM commands (`cli_operations.ml`): install from a template, the power
//! operations (asynchronous, with a progress bar), clone, copy, snapshot, uninstall, destroy,
//! and the disk and VIF listings.

use serde_json::Value as Json;

use super::api::s;
use super::argv::Params;
use super::failure::XeError;
use super::generic::{self, internal};
use super::progress::{self, Bar};
use super::records::{self, Obj, NULL_REF};
use super::select::{do_vm_op, Include};
use super::table::{Selectors, Spec};
use super::Ctx;

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "vm-install",
        reqd: &["new-name-label"],
        optn: &["sr-name-label", "sr-uuid", "template", "copy-bios-strings-from"],
        help: "Make a VM from a template (template= a uuid or a name label), its disks on the SR given or the pool's default SR; prints the new VM's uuid.",
        selectors: Selectors::None,
        standard: true,
        run: install,
    },
    Spec {
        name: "vm-start",
        reqd: &[],
        optn: &["force", "on", "paused"],
        help: "Start the selected VM(s).",
        selectors: Selectors::Vm,
        standard: true,
        run: start,
    },
    Spec {
        name: "vm-shutdown",
        reqd: &[],
        optn: &["force"],
        help: "Shut the selected VM(s) down (--force: at once).",
        selectors: Selectors::Vm,
        standard: true,
        run: shutdown,
    },
    Spec {
        name: "vm-reboot",
        reqd: &[],
        optn: &["force"],
        help: "Reboot the selected VM(s) (--force: at once).",
        selectors: Selectors::Vm,
        standard: true,
        run: reboot,
    },
    Spec {
        name: "vm-suspend",
        reqd: &[],
        optn: &[],
        help: "Suspend the selected VM(s).",
        selectors: Selectors::Vm,
        standard: true,
        run: suspend,
    },
    Spec {
        name: "vm-resume",
        reqd: &[],
        optn: &["force", "on"],
        help: "Resume the selected suspended VM(s).",
        selectors: Selectors::Vm,
        standard: true,
        run: resume,
    },
    Spec {
        name: "vm-clone",
        reqd: &["new-name-label"],
        optn: &["new-name-description"],
        help: "Clone the selected VM or template (fast disk clones); prints the new uuid.",
        selectors: Selectors::Vm,
        standard: true,
        run: clone,
    },
    Spec {
        name: "vm-copy",
        reqd: &["new-name-label"],
        optn: &["new-name-description", "sr-uuid"],
        help: "Copy the selected VM or template, disks in full; prints the new uuid.",
        selectors: Selectors::Vm,
        standard: true,
        run: copy,
    },
    Spec {
        name: "vm-snapshot",
        reqd: &["new-name-label"],
        optn: &["new-name-description", "ignore-vdi-uuids"],
        help: "Snapshot the selected VM; prints the snapshot's uuid.",
        selectors: Selectors::Vm,
        standard: true,
        run: snapshot,
    },
    Spec {
        name: "vm-uninstall",
        reqd: &[],
        optn: &["force"],
        help: "Destroy the selected VM(s), their snapshots and the disks they own (asks first unless --force).",
        selectors: Selectors::Vm,
        standard: true,
        run: uninstall,
    },
    Spec {
        name: "snapshot-revert",
        reqd: &[],
        optn: &["snapshot-uuid", "uuid"],
        help: "Revert a VM to one of its snapshots (snapshot-uuid=).",
        selectors: Selectors::None,
        standard: true,
        run: snapshot_revert,
    },
    Spec {
        name: "vm-destroy",
        reqd: &["uuid"],
        optn: &[],
        help: "Destroy a VM's record, leaving its disks.",
        selectors: Selectors::None,
        standard: false,
        run: destroy,
    },
    Spec {
        name: "vm-disk-list",
        reqd: &[],
        optn: &["vbd-params", "vdi-params"],
        help: "List the disks of the selected VM(s): each VBD and its VDI.",
        selectors: Selectors::Vm,
        standard: true,
        run: disk_list,
    },
    Spec {
        name: "vm-vif-list",
        reqd: &[],
        optn: &[],
        help: "List the VIFs of the selected VM(s).",
        selectors: Selectors::Vm,
        standard: true,
        run: vif_list,
    },
];

fn find_template_by_name(ctx: &mut Ctx, name: &str) -> Result<String, XeError> {
    let all = records::all(&ctx.api, &mut ctx.res, "VM")?;
    let hits: Vec<&Obj> = all
        .iter()
        .filter(|o| {
            records::name_of(&o.record) == name
                && o.record.get("is_a_template") == Some(&Json::Bool(true))
                && o.record.get("is_control_domain") != Some(&Json::Bool(true))
        })
        .collect();
    match hits.as_slice() {
        [] => Err(internal("No templates matched")),
        [one] => Ok(one.r#ref.clone()),
        _ => Err(internal("More than one matching template found")),
    }
}

fn install(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let new_name = params.req("new-name-label")?.to_string();
    let template = if let Some(uuid) = params.get("template-uuid") {
        records::ref_by_uuid(&ctx.api, "VM", uuid).map_err(|_| internal("Cannot find template"))?
    } else if let Some(name) = params.get("template-name-label").or(params.get("template-name")) {
        find_template_by_name(ctx, name)?
    } else if let Some(t) = params.get("template") {
        match records::ref_by_uuid(&ctx.api, "VM", t) {
            Ok(r) => r,
            Err(_) => find_template_by_name(ctx, t)?,
        }
    } else {
        return Err(internal(
            "Template must be specified by parameter 'template-uuid', 'template-name', 'template-name-label' or 'template'",
        ));
    };
    let api = &ctx.api;
    if api.call("VM.get_is_a_template", vec![s(&template)])? != Json::Bool(true) {
        return Err(internal("Can only install from templates"));
    }
    let is_snapshot = api.call("VM.get_is_a_snapshot", vec![s(&template)])? == Json::Bool(true);
    let sr_given = params.contains("sr-uuid") || params.contains("sr-name-label");
    if is_snapshot && sr_given {
        return Err(internal(
            "Do not use the sr-name-label or sr-uuid argument when installing from a snapshot. By default, it will install each new disk on the same SR as the corresponding snapshot disks.",
        ));
    }
    let mut sr = NULL_REF.to_string();
    if !is_snapshot {
        if let Some(uuid) = params.get("sr-uuid") {
            sr = records::ref_by_uuid(api, "SR", uuid)?;
        }
        if let Some(name) = params.get("sr-name-label") {
            let hits: Vec<String> = match api.call("SR.get_by_name_label", vec![s(name)])? {
                Json::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                _ => Vec::new(),
            };
            if hits.is_empty() {
                return Err(internal("No SR with that name-label found"));
            }
            if params.contains("sr-uuid") {
                if !hits.contains(&sr) {
                    return Err(internal("SR specified via sr-uuid doesn't have the name specified via sr-name-label"));
                }
            } else if hits.len() > 1 {
                return Err(internal("Multiple SRs with that name-label found"));
            } else {
                sr = hits[0].clone();
            }
        }
    }
    let suspend_sr = if sr != NULL_REF { sr.clone() } else { api.call_str("VM.get_suspend_SR", vec![s(&template)])? };
    let sr_uuid = if sr != NULL_REF {
        api.call_str("SR.get_uuid", vec![s(&sr)])?
    } else {
        let pools = api.call("pool.get_all", vec![])?;
        let pool = pools.as_array().and_then(|a| a.first()).and_then(Json::as_str).unwrap_or(NULL_REF).to_string();
        let default_sr = api.call_str("pool.get_default_SR", vec![s(&pool)]).unwrap_or_else(|_| NULL_REF.into());
        match api.call_str("SR.get_uuid", vec![s(&default_sr)]) {
            Ok(u) => u,
            Err(_) => {
                let oc = api.call("VM.get_other_config", vec![s(&template)])?;
                if oc.get("disks").is_some() {
                    return Err(internal(
                        "Failed to find a valid default SR for the Pool. Please provide an sr-name-label or sr-uuid parameter.",
                    ));
                }
                String::new()
            }
        }
    };
    let new_vm = if sr != NULL_REF && !is_snapshot {
        api.call_str("VM.copy", vec![s(&template), s(&new_name), s(&sr)])?
    } else {
        api.call_str("VM.clone", vec![s(&template), s(&new_name)])?
    };
    let finish = || -> Result<String, XeError> {
        api.call("VM.set_name_description", vec![s(&new_vm), s("Installed via xe CLI")])?;
        api.call("VM.set_suspend_SR", vec![s(&new_vm), s(&suspend_sr)])?;
        let oc = api.call("VM.get_other_config", vec![s(&new_vm)])?;
        if let Some(disks) = oc.get("disks").and_then(Json::as_str) {
            let rewritten = set_disk_srs(disks, &sr_uuid);
            api.call("VM.remove_from_other_config", vec![s(&new_vm), s("disks")])?;
            api.call("VM.add_to_other_config", vec![s(&new_vm), s("disks"), s(&rewritten)])?;
        }
        api.call("VM.provision", vec![s(&new_vm)])?;
        if let Some(host_uuid) = params.get("copy-bios-strings-from") {
            let host = records::ref_by_uuid(api, "host", host_uuid)?;
            api.call("VM.copy_bios_strings", vec![s(&new_vm), s(&host)])?;
        }
        api.call_str("VM.get_uuid", vec![s(&new_vm)])
    };
    match finish() {
        Ok(uuid) => {
            ctx.out.list(&[uuid]);
            Ok(())
        }
        Err(e) => {
            let _ = api.call("VM.destroy", vec![s(&new_vm)]);
            Err(e)
        }
    }
}

/// Sets the `sr` attribute of every `<disk …/>` of a template's provisioning XML.
pub fn set_disk_srs(xml: &str, sr_uuid: &str) -> String {
    let mut out = String::with_capacity(xml.len() + 64);
    let mut rest = xml;
    while let Some(at) = rest.find("<disk") {
        out.push_str(&rest[..at]);
        let tag_end = rest[at..].find('>').map(|i| at + i).unwrap_or(rest.len() - 1);
        let tag = &rest[at..tag_end];
        let (body, close) = match tag.strip_suffix('/') {
            Some(b) => (b, "/"),
            None => (tag, ""),
        };
        let body = remove_attr(body, "sr");
        out.push_str(body.trim_end());
        out.push_str(&format!(" sr=\"{sr_uuid}\"{close}"));
        rest = &rest[tag_end..];
    }
    out.push_str(rest);
    out
}

fn remove_attr(tag: &str, name: &str) -> String {
    for quote in ['"', '\''] {
        let lead = format!(" {name}={quote}");
        if let Some(start) = tag.find(&lead) {
            if let Some(len) = tag[start + lead.len()..].find(quote) {
                return format!("{}{}", &tag[..start], &tag[start + lead.len() + len + 1..]);
            }
        }
    }
    tag.to_string()
}

/// The host named by `on=` (a uuid or a name label).
fn host_by_name_or_id(ctx: &mut Ctx, name: &str) -> Result<String, XeError> {
    let hosts = records::all(&ctx.api, &mut ctx.res, "host")?;
    hosts
        .iter()
        .find(|h| records::uuid_of(&h.record) == name || records::name_of(&h.record) == name)
        .map(|h| h.r#ref.clone())
        .ok_or_else(|| internal(format!("Host {name} not found")))
}

/// Runs an `Async.` call on one VM and waits for its task.
fn async_op(ctx: &mut Ctx, params: &Params, method: &str, args: Vec<Json>) -> Result<(), XeError> {
    let task = ctx.api.call_str(&format!("Async.{method}"), args)?;
    let bar = Bar::choose(params.contains("progress"), ctx.out.minimal());
    ctx.out.flush_to_stdout();
    progress::wait(ctx, &task, bar).map(|_| ())
}

fn start(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let force = params.flag("force")?;
    let paused = params.flag("paused")?;
    let include = Include { control_domains: true, templates: false };
    do_vm_op(ctx, params, include, &["on", "paused", "progress"], true, |ctx, vm| match params.get("on") {
        Some(on) => {
            let host = host_by_name_or_id(ctx, on)?;
            async_op(ctx, params, "VM.start_on", vec![s(&vm.r#ref), s(&host), paused.into(), force.into()])
        }
        None => async_op(ctx, params, "VM.start", vec![s(&vm.r#ref), paused.into(), force.into()]),
    })?;
    Ok(())
}

fn shutdown(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let method = if params.flag("force")? { "VM.hard_shutdown" } else { "VM.clean_shutdown" };
    do_vm_op(ctx, params, Include::default(), &["progress"], true, |ctx, vm| {
        async_op(ctx, params, method, vec![s(&vm.r#ref)])
    })?;
    Ok(())
}

fn reboot(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let method = if params.flag("force")? { "VM.hard_reboot" } else { "VM.clean_reboot" };
    do_vm_op(ctx, params, Include::default(), &[], true, |ctx, vm| {
        ctx.api.call(method, vec![s(&vm.r#ref)]).map(|_| ())
    })?;
    Ok(())
}

fn suspend(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    do_vm_op(ctx, params, Include::default(), &["progress"], true, |ctx, vm| {
        async_op(ctx, params, "VM.suspend", vec![s(&vm.r#ref)])
    })?;
    Ok(())
}

fn resume(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let force = params.flag("force")?;
    do_vm_op(ctx, params, Include::default(), &["on", "progress"], true, |ctx, vm| match params.get("on") {
        Some(on) => {
            let host = host_by_name_or_id(ctx, on)?;
            async_op(ctx, params, "VM.resume_on", vec![s(&vm.r#ref), s(&host), false.into(), force.into()])
        }
        None => async_op(ctx, params, "VM.resume", vec![s(&vm.r#ref), false.into(), force.into()]),
    })?;
    Ok(())
}

/// Sets the description on the first of the new VMs (as xe, which sets it on one) and prints
/// their uuids.
fn print_new_vms(ctx: &mut Ctx, params: &Params, new: Vec<String>) -> Result<(), XeError> {
    if let (Some(desc), Some(first)) = (params.get("new-name-description"), new.first()) {
        ctx.api.call("VM.set_name_description", vec![s(first), s(desc)])?;
    }
    let mut uuids = Vec::with_capacity(new.len());
    for r in &new {
        uuids.push(ctx.api.call_str("VM.get_uuid", vec![s(r)])?);
    }
    ctx.out.list(&uuids);
    Ok(())
}

fn clone(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let name = params.req("new-name-label")?.to_string();
    let include = Include { control_domains: false, templates: true };
    let ignore = ["new-name-label", "new-name-description", "ignore-vdi-uuids"];
    let new = do_vm_op(ctx, params, include, &ignore, true, |ctx, vm| {
        ctx.api.call_str("VM.clone", vec![s(&vm.r#ref), s(&name)])
    })?;
    print_new_vms(ctx, params, new)
}

fn snapshot(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let name = params.req("new-name-label")?.to_string();
    let mut ignore_vdis = Vec::new();
    for uuid in params.get("ignore-vdi-uuids").unwrap_or("").split(',').filter(|u| !u.is_empty()) {
        ignore_vdis.push(s(&records::ref_by_uuid(&ctx.api, "VDI", uuid)?));
    }
    let ignore = ["new-name-label", "new-name-description", "ignore-vdi-uuids"];
    let new = do_vm_op(ctx, params, Include::default(), &ignore, true, |ctx, vm| {
        ctx.api.call_str("VM.snapshot", vec![s(&vm.r#ref), s(&name), Json::Array(ignore_vdis.clone())])
    })?;
    print_new_vms(ctx, params, new)
}

fn copy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let name = params.req("new-name-label")?.to_string();
    let sr = match params.get("sr-uuid") {
        Some(uuid) => records::ref_by_uuid(&ctx.api, "SR", uuid)?,
        None => NULL_REF.to_string(),
    };
    let include = Include { control_domains: false, templates: true };
    let ignore = ["new-name-label", "sr-uuid", "new-name-description"];
    let new = do_vm_op(ctx, params, include, &ignore, false, |ctx, vm| {
        ctx.api.call_str("VM.copy", vec![s(&vm.r#ref), s(&name), s(&sr)])
    })?;
    print_new_vms(ctx, params, new)
}

fn snapshot_revert(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let uuid = params
        .get("snapshot-uuid")
        .or(params.get("uuid"))
        .ok_or_else(|| XeError::usage("Required parameter not found", "snapshot-uuid"))?;
    let snap = records::ref_by_uuid(&ctx.api, "VM", uuid)?;
    ctx.api.call("VM.revert", vec![s(&snap)])?;
    Ok(())
}

fn destroy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let vm = records::ref_by_uuid(&ctx.api, "VM", params.req("uuid")?)?;
    if ctx.api.call("VM.get_is_control_domain", vec![s(&vm)])? == Json::Bool(true) {
        return Err(XeError::api("OPERATION_NOT_ALLOWED", &["You cannot destroy a control domain via the CLI"]));
    }
    ctx.api.call("VM.destroy", vec![s(&vm)])?;
    Ok(())
}

/// What `vm-uninstall` destroys of one VM: the disks it owns and its suspend image.
struct Doomed {
    vm: String,
    vdis: Vec<String>,
    suspend_vdi: Option<String>,
}

fn doomed(ctx: &mut Ctx, vm: &str) -> Result<Doomed, XeError> {
    let api = &ctx.api;
    let mut vdis = Vec::new();
    let vbds = api.call("VM.get_VBDs", vec![s(vm)])?;
    for vbd in vbds.as_array().into_iter().flatten().filter_map(Json::as_str) {
        let oc = api.call("VBD.get_other_config", vec![s(vbd)])?;
        let vdi = api.call_str("VBD.get_VDI", vec![s(vbd)])?;
        if api.call_str("VDI.get_uuid", vec![s(&vdi)]).is_ok() && oc.get("owner").is_some() {
            vdis.push(vdi);
        }
    }
    let suspend_vdi = api
        .call_str("VM.get_suspend_VDI", vec![s(vm)])
        .ok()
        .filter(|v| api.call_str("VDI.get_uuid", vec![s(v)]).is_ok());
    Ok(Doomed { vm: vm.to_string(), vdis, suspend_vdi })
}

fn uninstall(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let selected = do_vm_op(ctx, params, Include::default(), &[], true, |_, vm| Ok(vm.r#ref.clone()))?;
    let mut vms = selected.clone();
    for vm in &selected {
        let snaps = ctx.api.call("VM.get_snapshots", vec![s(vm)])?;
        vms.extend(snaps.as_array().into_iter().flatten().filter_map(Json::as_str).map(str::to_string));
    }
    let mut plan = Vec::new();
    for vm in &vms {
        plan.push(doomed(ctx, vm)?);
    }
    // xe sends these straight to the terminal, so they show even with --minimal.
    let mut lines = vec!["The following items are about to be destroyed".to_string()];
    for d in &plan {
        let rec = records::fetch_ref(&ctx.api, "VM", &d.vm)?;
        lines.push(format!("VM : {} ({})", records::uuid_of(&rec.record), records::name_of(&rec.record)));
        for vdi in d.vdis.iter().chain(d.suspend_vdi.iter()) {
            let rec = records::fetch_ref(&ctx.api, "VDI", vdi)?;
            let shared = rec.record.get("VBDs").and_then(Json::as_array).map(|a| a.len() > 1).unwrap_or(false);
            let warning = if shared { " ** WARNING: disk is shared by other VMs" } else { "" };
            lines.push(format!("VDI: {} ({}) {warning}", records::uuid_of(&rec.record), records::name_of(&rec.record)));
        }
    }
    print_now(&lines);
    if !params.flag("force")? {
        print_now(&["Type 'yes' to continue".to_string()]);
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        let answer = answer.trim_end_matches(['\n', '\r']);
        if !answer.trim().eq_ignore_ascii_case("yes") {
            print_now(&[format!("Aborted (you typed: '{answer}')")]);
            return Ok(());
        }
    }
    for d in &plan {
        if ctx.api.call_str("VM.get_power_state", vec![s(&d.vm)])? != "Halted" {
            ctx.api.call("VM.hard_shutdown", vec![s(&d.vm)])?;
        }
        ctx.api.call("VM.destroy", vec![s(&d.vm)])?;
        for vdi in &d.vdis {
            ctx.api.call("VDI.destroy", vec![s(vdi)])?;
        }
        if let Some(vdi) = &d.suspend_vdi {
            let _ = ctx.api.call("VDI.destroy", vec![s(vdi)]);
        }
    }
    print_now(&["All objects destroyed".to_string()]);
    Ok(())
}

fn print_now(lines: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = out.flush();
}

/// Fields of `class` named by `wanted` (`all`: every one), or `defaults`, in record order.
fn pick<'a>(class: &str, wanted: Option<&str>, defaults: &[&str]) -> Vec<&'a records::FieldFacts> {
    let facts = records::class_facts(class).expect("an xe class");
    let names: Vec<String> = match wanted {
        Some("all") => Vec::new(),
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => defaults.iter().map(|s| s.to_string()).collect(),
    };
    facts.fields.iter().filter(|f| !f.hidden && (names.is_empty() || names.contains(&f.name))).collect()
}

fn disk_list(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let vbd_fields = pick("VBD", params.get("vbd-params"), &["uuid", "vm-name-label", "userdevice"]);
    let vdi_fields = pick("VDI", params.get("vdi-params"), &["uuid", "name-label", "virtual-size", "sr-name-label"]);
    let vms = do_vm_op(ctx, params, Include::default(), &["vbd-params", "vdi-params"], true, |_, vm| {
        Ok(vm.record.get("VBDs").and_then(Json::as_array).cloned().unwrap_or_default())
    })?;
    for vbds in vms {
        let mut n = 0;
        for vbd in vbds.iter().filter_map(Json::as_str) {
            let obj = records::fetch_ref(&ctx.api, "VBD", vbd)?;
            if obj.record.get("type").and_then(Json::as_str) != Some("Disk") {
                continue;
            }
            ctx.out.msg(&format!("Disk {n} VBD:"));
            let rec = generic::print_fields(ctx, &obj, &vbd_fields)?;
            ctx.out.table(&[rec]);
            if obj.record.get("empty") != Some(&Json::Bool(true)) {
                let vdi = obj.record.get("VDI").and_then(Json::as_str).unwrap_or(NULL_REF).to_string();
                let vdi = records::fetch_ref(&ctx.api, "VDI", &vdi)?;
                ctx.out.msg(&format!("Disk {n} VDI:"));
                let rec = generic::print_fields(ctx, &vdi, &vdi_fields)?;
                ctx.out.table(&[rec]);
            }
            n += 1;
        }
    }
    Ok(())
}

fn vif_list(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let fields = pick(
        "VIF",
        params.get("params"),
        &["uuid", "device", "MAC", "network-uuid", "network-name-label", "vm-name-label"],
    );
    let mut forced = params.clone();
    forced.0.insert(0, ("multiple".into(), "true".into()));
    let vms = do_vm_op(ctx, &forced, Include::default(), &["params"], true, |_, vm| {
        Ok(vm.record.get("VIFs").and_then(Json::as_array).cloned().unwrap_or_default())
    })?;
    for vifs in vms {
        for vif in vifs.iter().filter_map(Json::as_str) {
            let obj = records::fetch_ref(&ctx.api, "VIF", vif)?;
            let rec = generic::print_fields(ctx, &obj, &fields)?;
            ctx.out.table(&[rec]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisioning_xml_gets_the_sr() {
        let xml = r#"<provision><disk device="0" size="10" sr="" bootable="true" type="system"/></provision>"#;
        assert_eq!(
            set_disk_srs(xml, "U"),
            r#"<provision><disk device="0" size="10" bootable="true" type="system" sr="U"/></provision>"#
        );
    }
}
