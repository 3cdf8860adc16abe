//! Selecting the objects a command acts on (`cli_operations.ml` `select_vms`, `do_vm_op`):
//! `vm=` matches a uuid or a name label, any other parameter filters on a field as `vm-list`
//! does, control domains and templates are left out unless the command takes them, and more
//! than one match needs `--multiple`.

use super::argv::Params;
use super::failure::XeError;
use super::generic::STD_PARAMS;
use super::records::{self, Obj};
use super::{generic, Ctx};

/// Appended to a selector command's help.
pub const VM_SELECTORS_HELP: &str = "The VMs are chosen by vm= (a uuid or a name label) and by any \
    other field=value of vm-list params=all; with more than one match, --multiple is needed.";

/// Which VMs a command may act on.
#[derive(Clone, Copy, Default)]
pub struct Include {
    pub control_domains: bool,
    pub templates: bool,
}

/// The VMs the command line selects.
pub fn select_vms(ctx: &mut Ctx, params: &Params, include: Include, ignore: &[&str]) -> Result<Vec<Obj>, XeError> {
    let mut filters: Vec<(String, String)> = Vec::new();
    if !include.control_domains {
        filters.push(("is-control-domain".into(), "false".into()));
    }
    if !include.templates {
        filters.push(("is-a-template".into(), "false".into()));
    }
    let by_name = params.get("vm").map(str::to_string);
    let mut seen_vm = false;
    for (k, v) in &params.0 {
        if k == "vm" && !seen_vm {
            seen_vm = true;
            continue;
        }
        let stem = k.split(':').next().unwrap_or(k);
        if STD_PARAMS.contains(&stem) || ignore.contains(&stem) {
            continue;
        }
        filters.push((k.clone(), v.clone()));
    }
    let all = records::all(&ctx.api, &mut ctx.res, "VM")?;
    let mut objs: Vec<Obj> = match &by_name {
        Some(v) => {
            all.into_iter().filter(|o| records::uuid_of(&o.record) == v || records::name_of(&o.record) == v).collect()
        }
        None => all,
    };
    for filter in &filters {
        let selected: Vec<usize> = (0..objs.len()).collect();
        let kept = generic::filter_objects(ctx, &objs, selected, filter).map_err(|e| match e {
            XeError::Api { code, params } if code == "Missing parameter" => XeError::failure(format!(
                "Parameter '{}' is not a field of the VM class. Failed to select VM for operation.",
                params.first().cloned().unwrap_or_default()
            )),
            other => other,
        })?;
        let mut keep = vec![false; objs.len()];
        for i in kept {
            keep[i] = true;
        }
        let mut i = 0;
        objs.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
    Ok(objs)
}

/// Runs `op` on each selected VM: none is an error, more than one needs `--multiple` (when
/// `multiple` allows it at all), and failures under `--multiple` are gathered, not fatal.
pub fn do_vm_op<T>(
    ctx: &mut Ctx,
    params: &Params,
    include: Include,
    ignore: &[&str],
    multiple: bool,
    mut op: impl FnMut(&mut Ctx, &Obj) -> Result<T, XeError>,
) -> Result<Vec<T>, XeError> {
    let vms = select_vms(ctx, params, include, ignore)?;
    match vms.len() {
        0 => Err(XeError::failure("No matching VMs found")),
        1 => Ok(vec![op(ctx, &vms[0])?]),
        _ if multiple && params.flag("multiple")? => {
            let mut done = Vec::new();
            let mut failed = Vec::new();
            for vm in &vms {
                match op(ctx, vm) {
                    Ok(t) => done.push(t),
                    Err(e) => failed.push((records::uuid_of(&vm.record).to_string(), e.to_string().replace('\n', " "))),
                }
            }
            if failed.is_empty() {
                done.reverse();
                Ok(done)
            } else {
                failed.reverse();
                Err(XeError::Multiple(failed))
            }
        }
        _ if multiple => {
            Err(XeError::failure("Multiple matches VMs found. --multiple required to complete the operation"))
        }
        _ => Err(XeError::failure("Multiple matches VMs found. Operation can only be performed on one VM at a time")),
    }
}
