//! The VM's questions (docs/xenapi-semantics.md §g.9; xapi `xapi_vm.ml`, `memory_check.ml`,
//! `agility.ml`, `xapi_vm_helpers.ml`): operations allowed, memory overhead and the most memory
//! a host could give, free device numbers, hosts it could run on, whether it is agile, its boot
//! record.

use super::super::super::state::State;
use super::super::Call;
use super::boot::{assert_can_boot_here, Memory};
use super::get;
use super::ops::{self, Vm};
use super::{int, this_host};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::schema;
use crate::value::{Value, NULL_REF};

type Reply = Result<Value, ApiError>;

const MIB: i64 = 1 << 20;

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn refs(v: Value) -> Vec<String> {
    v.as_set().unwrap_or(&[]).iter().filter_map(|r| r.as_str().map(String::from)).collect()
}

/// `assert_operation_valid(self, op)`: the check an operation would pass now.
pub fn assert_operation_valid(state: &State, call: &Call) -> Reply {
    ops::check(&Vm::get(state, call.str(0))?, call.str(1))?;
    Ok(Value::String(String::new()))
}

/// `get_cooperative`: deprecated; always true.
pub fn get_cooperative(state: &State, call: &Call) -> Reply {
    Vm::get(state, call.str(0))?;
    Ok(Value::Bool(true))
}

/// `get_boot_record`: operation `get_boot_record` (a domain exists); the VM's current record.
pub fn get_boot_record(state: &State, call: &Call) -> Reply {
    ops::check(&Vm::get(state, call.str(0))?, "get_boot_record")?;
    let class = ops::vm_class();
    let o = state.get(class.id, call.str(0)).ok_or_else(|| ApiError::handle_invalid("VM", call.str(0)))?;
    Ok(state.record(class, o))
}

/// `send_sysrq`, `send_trigger`: a running VM's operation, which xapi's backend then refuses
/// with `NOT_IMPLEMENTED [name]`.
pub fn send_to_domain(state: &State, call: &Call) -> Reply {
    ops::check(&Vm::get(state, call.str(0))?, &call.msg.name)?;
    Err(ApiError::new(ErrorCode::NotImplemented, [call.msg.name.as_str()]))
}

fn domain_type(state: &State, vm: &str) -> String {
    match text(get(state, f::vm::DOMAIN_TYPE, vm)).as_str() {
        "" | "unspecified" if text(get(state, f::vm::HVM_BOOT_POLICY, vm)).is_empty() => "pv".into(),
        "" | "unspecified" => "hvm".into(),
        other => other.to_string(),
    }
}

fn multiplier(state: &State, vm: &str) -> f64 {
    match get(state, f::vm::HVM_SHADOW_MULTIPLIER, vm) {
        Value::Float(f) => f,
        _ => 1.0,
    }
}

/// The memory a domain needs besides its own, in MiB (xapi `memory_check.ml`
/// `vm_compute_memory_overhead`, xapi-idl `memory.ml`).
fn overhead_mib(domain_type: &str, static_max: i64, vcpus: i64, multiplier: f64) -> i64 {
    let smax = (static_max + MIB - 1) / MIB;
    let shadow = (((256 * vcpus + 2 * smax + 255) / 256) as f64 * multiplier).trunc().max(1.0) as i64;
    let (ei, ee, shim) = match domain_type {
        "pv" => (0, 1, 0),
        "pv_in_pvh" => (1, 1, 23 + smax / 90),
        _ => (1, 1, 0),
    };
    ei + ee + shadow + (38 * vcpus + 255) / 256 + shim
}

/// `compute_memory_overhead(vm)`: bytes.
pub fn compute_memory_overhead(state: &State, call: &Call) -> Reply {
    let vm = call.str(0);
    Vm::get(state, vm)?;
    let mib = overhead_mib(
        &domain_type(state, vm),
        int(state, vm, f::vm::MEMORY_STATIC_MAX),
        int(state, vm, f::vm::VCPUS_MAX),
        multiplier(state, vm),
    );
    Ok(Value::Int(mib * MIB))
}

/// `maximise_memory(self, total, approximate)`: the largest static_max (whole MiB) whose
/// footprint (memory plus overhead) fits in `total`; `approximate` assumes 64 VCPUs.
pub fn maximise_memory(state: &State, call: &Call) -> Reply {
    let vm = call.str(0);
    Vm::get(state, vm)?;
    let total = match call.args.get(1) {
        Some(Value::Int(t)) => *t,
        _ => 0,
    };
    let approximate = call.args.get(2).and_then(Value::as_bool).unwrap_or(false);
    let vcpus = if approximate { 64 } else { int(state, vm, f::vm::VCPUS_MAX) };
    let kind = domain_type(state, vm);
    let m = if kind == "pv" { 1.0 } else { multiplier(state, vm) };
    let fits = |mib: i64| (mib + overhead_mib(&kind, mib * MIB, vcpus, m)) * MIB <= total;
    let (mut lo, mut hi) = (0i64, (total / MIB).max(0));
    while lo < hi {
        let mid = lo + (hi - lo + 1) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Value::Int(lo * MIB))
}

/// A device name's disk number: `"3"`, or the letter of `xvdd`, `hdd`, `sdd` (partitions aside).
pub(in crate::engine::explicit) fn disk_number(device: &str) -> Option<i64> {
    if let Ok(n) = device.parse::<i64>() {
        return Some(n);
    }
    let rest = ["xvd", "hd", "sd"].iter().find_map(|p| device.strip_prefix(p))?;
    let letter = rest.chars().next()?;
    letter.is_ascii_lowercase().then(|| i64::from(letter as u8 - b'a'))
}

/// `get_allowed_VBD_devices(vm)`: disk numbers 0–254 (0–255 for a control domain) no VBD uses.
pub fn get_allowed_vbd_devices(state: &State, call: &Call) -> Reply {
    let vm = call.str(0);
    let v = Vm::get(state, vm)?;
    let used: Vec<i64> = refs(get(state, f::vm::VBDS, vm))
        .iter()
        .flat_map(|vbd| [text(get(state, f::vbd::USERDEVICE, vbd)), text(get(state, f::vbd::DEVICE, vbd))])
        .filter_map(|d| disk_number(&d))
        .collect();
    let last = if v.is_control_domain { 255 } else { 254 };
    Ok(Value::Set((0..=last).filter(|n| !used.contains(n)).map(|n| Value::String(n.to_string())).collect()))
}

/// `get_allowed_VIF_devices(vm)`: "0"–"15" less the devices its VIFs use.
pub fn get_allowed_vif_devices(state: &State, call: &Call) -> Reply {
    let vm = call.str(0);
    Vm::get(state, vm)?;
    let used: Vec<String> =
        refs(get(state, f::vm::VIFS, vm)).iter().map(|v| text(get(state, f::vif::DEVICE, v))).collect();
    Ok(Value::Set((0..16).map(|n| n.to_string()).filter(|d| !used.contains(d)).map(Value::String).collect()))
}

/// `get_possible_hosts(vm)`: the host it is scheduled on, else every live host it could boot on.
pub fn get_possible_hosts(state: &State, call: &Call) -> Reply {
    let vm = call.str(0);
    Vm::get(state, vm)?;
    let scheduled = text(get(state, f::vm::SCHEDULED_TO_BE_RESIDENT_ON, vm));
    if !scheduled.is_empty() && scheduled != NULL_REF {
        return Ok(Value::Set(vec![Value::Ref(scheduled)]));
    }
    let host = this_host(state);
    let resident = text(get(state, f::vm::RESIDENT_ON, vm)) == host;
    let memory = if resident { Memory::Skip } else { Memory::Check };
    let possible = assert_can_boot_here(state, vm, &host, memory).is_ok();
    Ok(Value::Set(if possible { vec![Value::Ref(host)] } else { vec![] }))
}

/// `assert_agile(self)` (xapi `agility.ml`): no vGPU or USB, every disk on a shared SR, every
/// VIF on a network each enabled host has a PIF on.
pub fn assert_agile(state: &State, call: &Call) -> Reply {
    let vm = call.str(0);
    Vm::get(state, vm)?;
    if !refs(get(state, f::vm::VGPUS, vm)).is_empty() {
        return Err(ApiError::new(ErrorCode::VmHasVgpu, [vm]));
    }
    if !refs(get(state, f::vm::VUSBS, vm)).is_empty() {
        return Err(ApiError::new(ErrorCode::VmHasVusbs, [vm]));
    }
    for vbd in refs(get(state, f::vm::VBDS, vm)) {
        if get(state, f::vbd::EMPTY, &vbd).as_bool() == Some(true) {
            continue;
        }
        let sr = text(get(state, f::vdi::SR, &text(get(state, f::vbd::VDI, &vbd))));
        if !sr.is_empty() && sr != NULL_REF && get(state, f::sr::SHARED, &sr).as_bool() != Some(true) {
            return Err(ApiError::new(ErrorCode::HaConstraintViolationSrNotShared, [sr]));
        }
    }
    let hosts = schema().class("host").expect("host");
    let enabled: Vec<String> = state
        .table(hosts.id)
        .objects
        .keys()
        .filter(|h| get(state, f::host::ENABLED, h).as_bool() != Some(false))
        .map(|r| r.to_string())
        .collect();
    for vif in refs(get(state, f::vm::VIFS, vm)) {
        let network = text(get(state, f::vif::NETWORK, &vif));
        let pif_hosts: Vec<String> =
            refs(get(state, f::network::PIFS, &network)).iter().map(|p| text(get(state, f::pif::HOST, p))).collect();
        if enabled.iter().any(|h| !pif_hosts.contains(h)) {
            return Err(ApiError::new(ErrorCode::HaConstraintViolationNetworkNotShared, [network]));
        }
    }
    Ok(Value::String(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_matches_xapis_worked_example() {
        // HVM, 1 GiB, 1 VCPU, multiplier 1.0: 12 MiB (memory_check.ml).
        assert_eq!(overhead_mib("hvm", 1 << 30, 1, 1.0), 12);
        assert_eq!(overhead_mib("pv", 1 << 30, 1, 1.0), 11);
    }

    #[test]
    fn device_names_give_disk_numbers() {
        assert_eq!(disk_number("3"), Some(3));
        assert_eq!(disk_number("xvdb"), Some(1));
        assert_eq!(disk_number("hda"), Some(0));
        assert_eq!(disk_number("eth0"), None);
    }
}
