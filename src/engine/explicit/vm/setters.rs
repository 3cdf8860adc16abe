//! The VM's explicit setters and their constraints (docs/xenapi-semantics.md §g.9; xapi
//! `xapi_vm.ml`, `xapi_vm_helpers.ml`, `xapi_vm_memory_constraints.ml`, the operation each one
//! marks in `message_forwarding.ml`): memory ranges, VCPUs, boot policy and domain type, delays,
//! HA priority, NVRAM, BIOS strings and the vendor device.

use super::super::super::tx::Tx;
use super::super::{args, Call};
use super::get;
use super::ops::Vm;
use super::{assert_memory_order, check_op, int};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::schema;
use crate::value::{Value, NULL_REF};

type Reply = Result<Value, ApiError>;

fn void() -> Reply {
    Ok(Value::String(String::new()))
}

fn power(tx: &Tx, vm: &str) -> String {
    get(&tx.state, f::vm::POWER_STATE, vm).as_str().unwrap_or("").to_string()
}

fn control_domain(tx: &Tx, vm: &str) -> bool {
    get(&tx.state, f::vm::IS_CONTROL_DOMAIN, vm).as_bool() == Some(true)
}

/// `VM_BAD_POWER_STATE [vm, expected, actual]` unless the VM is in `expected`.
fn need_power(tx: &Tx, vm: &str, expected: &str) -> Result<(), ApiError> {
    let actual = power(tx, vm);
    if actual == expected {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::VmBadPowerState,
            [vm, &expected.to_ascii_lowercase(), &actual.to_ascii_lowercase()],
        ))
    }
}

/// xapi's `assert_valid_for_current_context`: a control domain's memory stays pinned
/// (`MEMORY_CONSTRAINT_VIOLATION_MAXPIN ["control domain"]`), any VM's keeps its order. Dynamic
/// memory control is on, as on a pool without licence restrictions.
fn assert_memory(tx: &Tx, vm: &str, [smin, dmin, dmax, smax]: [i64; 4]) -> Result<(), ApiError> {
    let pinned = smin <= dmin && dmin == dmax && dmax == smax;
    if control_domain(tx, vm) && !pinned {
        return Err(ApiError::new(ErrorCode::MemoryConstraintViolationMaxpin, ["control domain"]));
    }
    assert_memory_order(smin, dmin, dmax, smax)
}

fn memory(tx: &Tx, vm: &str) -> [i64; 4] {
    let m = |n| int(&tx.state, vm, n);
    [
        m(f::vm::MEMORY_STATIC_MIN),
        m(f::vm::MEMORY_DYNAMIC_MIN),
        m(f::vm::MEMORY_DYNAMIC_MAX),
        m(f::vm::MEMORY_STATIC_MAX),
    ]
}

fn set_ints(tx: &mut Tx, vm: &str, values: &[(&str, i64)]) {
    for (name, v) in values {
        tx.set("VM", vm, name, Value::Int(*v));
    }
}

fn refresh(tx: &mut Tx, vm: &str) -> Reply {
    super::ops::refresh(tx, vm);
    void()
}

/// `set_memory_static_range(self, min, max)`: operation `changing_static_range` (halted); a
/// running control domain needs a reboot to take it.
fn static_range(tx: &mut Tx, call: &Call, smin: i64, smax: i64) -> Reply {
    let vm = call.str(0).to_string();
    check_op(&tx.state, call, "changing_static_range")?;
    let [_, dmin, dmax, _] = memory(tx, &vm);
    assert_memory(tx, &vm, [smin, dmin, dmax, smax])?;
    set_ints(tx, &vm, &[("memory_static_min", smin), ("memory_static_max", smax)]);
    if control_domain(tx, &vm) && power(tx, &vm) == "Running" {
        tx.put(f::vm::REQUIRES_REBOOT, &vm, Value::Bool(true));
    }
    refresh(tx, &vm)
}

pub fn set_memory_static_range(tx: &mut Tx, call: &Call) -> Reply {
    static_range(tx, call, args::int(call, 1), args::int(call, 2))
}

pub fn set_memory_static_max(tx: &mut Tx, call: &Call) -> Reply {
    let [smin, ..] = memory(tx, call.str(0));
    static_range(tx, call, smin, args::int(call, 1))
}

pub fn set_memory_static_min(tx: &mut Tx, call: &Call) -> Reply {
    let [.., smax] = memory(tx, call.str(0));
    static_range(tx, call, args::int(call, 1), smax)
}

/// `set_memory_dynamic_range(self, min, max)`: operation `changing_dynamic_range` (halted or
/// running); a running VM's balloon target becomes `min`, and raising it needs free memory
/// (`HOST_NOT_ENOUGH_FREE_MEMORY [needed KiB, free KiB]`).
fn dynamic_range(tx: &mut Tx, call: &Call, dmin: i64, dmax: i64) -> Reply {
    let vm = call.str(0).to_string();
    check_op(&tx.state, call, "changing_dynamic_range")?;
    let [smin, old_dmin, _, smax] = memory(tx, &vm);
    assert_memory(tx, &vm, [smin, dmin, dmax, smax])?;
    if power(tx, &vm) == "Running" {
        let free = super::power::free_memory(&tx.state);
        if free + (old_dmin - dmin) < 0 {
            let needed = ((dmin - old_dmin) / 1024).to_string();
            return Err(ApiError::new(ErrorCode::HostNotEnoughFreeMemory, [needed, (free / 1024).to_string()]));
        }
    }
    set_ints(tx, &vm, &[("memory_target", dmin), ("memory_dynamic_min", dmin), ("memory_dynamic_max", dmax)]);
    refresh(tx, &vm)
}

pub fn set_memory_dynamic_range(tx: &mut Tx, call: &Call) -> Reply {
    dynamic_range(tx, call, args::int(call, 1), args::int(call, 2))
}

pub fn set_memory_dynamic_max(tx: &mut Tx, call: &Call) -> Reply {
    let [_, dmin, ..] = memory(tx, call.str(0));
    dynamic_range(tx, call, dmin, args::int(call, 1))
}

pub fn set_memory_dynamic_min(tx: &mut Tx, call: &Call) -> Reply {
    let [_, _, dmax, _] = memory(tx, call.str(0));
    dynamic_range(tx, call, args::int(call, 1), dmax)
}

/// `set_memory(self, value)`: operation `changing_memory_limits`; static_max, both dynamic
/// bounds and the target become `value` (static_min stays).
pub fn set_memory(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    check_op(&tx.state, call, "changing_memory_limits")?;
    let value = args::int(call, 1);
    let [smin, ..] = memory(tx, &vm);
    assert_memory(tx, &vm, [smin, value, value, value])?;
    let names = ["memory_static_max", "memory_dynamic_max", "memory_dynamic_min", "memory_target"];
    set_ints(tx, &vm, &names.map(|n| (n, value)));
    refresh(tx, &vm)
}

/// `set_memory_target_live`: deprecated; xapi checks `changing_memory_live` and does nothing.
pub fn set_memory_target_live(tx: &mut Tx, call: &Call) -> Reply {
    check_op(&tx.state, call, "changing_memory_live")?;
    void()
}

const VCPUS_RULE: &str = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max";

/// `set_VCPUs_max`: operation `changing_VCPUs` (halted; dom0 refused).
pub fn set_vcpus_max(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    check_op(&tx.state, call, "changing_VCPUs")?;
    let value = args::int(call, 1);
    if value < 1 || value < int(&tx.state, &vm, f::vm::VCPUS_AT_STARTUP) {
        return Err(ApiError::new(ErrorCode::InvalidValue, [VCPUS_RULE.to_string(), value.to_string()]));
    }
    set_ints(tx, &vm, &[("VCPUs_max", value)]);
    refresh(tx, &vm)
}

/// `set_VCPUs_at_startup`: no operation mark and any power state; dom0 refused.
pub fn set_vcpus_at_startup(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    Vm::get(&tx.state, &vm)?;
    if control_domain(tx, &vm) {
        return Err(ApiError::new(ErrorCode::OperationNotAllowed, ["set_VCPUs_at_startup is not allowed on dom0"]));
    }
    let value = args::int(call, 1);
    if value < 1 || value > int(&tx.state, &vm, f::vm::VCPUS_MAX) {
        return Err(ApiError::new(ErrorCode::InvalidValue, [VCPUS_RULE.to_string(), value.to_string()]));
    }
    set_ints(tx, &vm, &[("VCPUs_at_startup", value)]);
    void()
}

/// `set_VCPUs_number_live`: operation `changing_VCPUs_live` (running, guest hotplug); the
/// second error parameter is the VM's `VCPUs_max`, as xenopsd sends it.
pub fn set_vcpus_number_live(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    check_op(&tx.state, call, "changing_VCPUs_live")?;
    let (n, max) = (args::int(call, 1), int(&tx.state, &vm, f::vm::VCPUS_MAX));
    if n <= 0 || n > max {
        let rule = "VCPU values must satisfy: 0 < VCPUs ≤ VCPUs_max";
        return Err(ApiError::new(ErrorCode::InvalidValue, [rule.to_string(), max.to_string()]));
    }
    set_ints(tx, &vm, &[("VCPUs_at_startup", n)]);
    let metrics = get(&tx.state, f::vm::METRICS, &vm).as_str().unwrap_or("").to_string();
    if tx.state.exists(schema().class("VM_metrics").expect("VM_metrics").id, &metrics) {
        tx.put(f::vm_metrics::VCPUS_NUMBER, &metrics, Value::Int(n));
    }
    void()
}

/// `set_HVM_boot_policy`: the domain type follows (`""` is PV, anything else HVM).
pub fn set_hvm_boot_policy(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    Vm::get(&tx.state, &vm)?;
    let policy = call.str(1).to_string();
    let domain_type = if policy.is_empty() { "pv" } else { "hvm" };
    tx.put(f::vm::DOMAIN_TYPE, &vm, Value::Enum(domain_type.into()));
    tx.put(f::vm::HVM_BOOT_POLICY, &vm, Value::String(policy));
    void()
}

/// `set_domain_type`: `unspecified` is refused; the boot policy follows.
pub fn set_domain_type(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    Vm::get(&tx.state, &vm)?;
    let value = call.str(1).to_string();
    if value == "unspecified" {
        return Err(ApiError::new(ErrorCode::InvalidValue, ["domain_type", "unspecified"]));
    }
    let policy = if value == "hvm" { "BIOS order" } else { "" };
    tx.put(f::vm::HVM_BOOT_POLICY, &vm, Value::str(policy));
    tx.put(f::vm::DOMAIN_TYPE, &vm, Value::Enum(value));
    void()
}

/// `set_actions_after_crash`: stored as given (a start checks it).
pub fn set_actions_after_crash(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    Vm::get(&tx.state, &vm)?;
    tx.put(f::vm::ACTIONS_AFTER_CRASH, &vm, call.args[1].clone());
    void()
}

/// OCaml's `string_of_float` (`%.12g`, with a trailing `.` for a whole number).
fn ocaml_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e12 {
        format!("{}.", f as i64)
    } else {
        let text = format!("{f:.12}");
        text.trim_end_matches('0').to_string()
    }
}

fn shadow_multiplier(tx: &mut Tx, call: &Call, op: &str) -> Reply {
    let vm = call.str(0).to_string();
    check_op(&tx.state, call, op)?;
    let value = args::float(call, 1);
    if value < 1.0 {
        return Err(ApiError::new(ErrorCode::InvalidValue, ["multiplier".to_string(), ocaml_float(value)]));
    }
    tx.put(f::vm::HVM_SHADOW_MULTIPLIER, &vm, Value::Float(value));
    void()
}

/// `set_HVM_shadow_multiplier`: operation `changing_shadow_memory` (halted); at least 1.0.
pub fn set_hvm_shadow_multiplier(tx: &mut Tx, call: &Call) -> Reply {
    shadow_multiplier(tx, call, "changing_shadow_memory")
}

/// `set_shadow_multiplier_live`: operation `changing_shadow_memory_live` (running).
pub fn set_shadow_multiplier_live(tx: &mut Tx, call: &Call) -> Reply {
    shadow_multiplier(tx, call, "changing_shadow_memory_live")
}

/// `set_start_delay`, `set_shutdown_delay`, `set_order`: not negative.
pub fn set_non_negative(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    Vm::get(&tx.state, &vm)?;
    let name = call.msg.name.trim_start_matches("set_");
    let value = args::int(call, 1);
    if value < 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            [format!("{name} must be non-negative"), value.to_string()],
        ));
    }
    set_ints(tx, &vm, &[(name, value)]);
    void()
}

fn ha_restart_priority(tx: &mut Tx, vm: &str, value: &str) -> Reply {
    if !matches!(value, "restart" | "best-effort" | "") {
        return Err(ApiError::new(ErrorCode::InvalidValue, ["ha_restart_priority", value]));
    }
    if get(&tx.state, f::vm::HA_RESTART_PRIORITY, vm).as_str() != Some(value) {
        tx.put(f::vm::HA_RESTART_PRIORITY, vm, Value::str(value));
        if power(tx, vm) == "Running" {
            tx.put(f::vm::HA_ALWAYS_RUN, vm, Value::Bool(value == "restart"));
        }
    }
    refresh(tx, vm)
}

/// `set_ha_restart_priority`: `restart`, `best-effort` or `""`; a running VM's `ha_always_run`
/// follows.
pub fn set_ha_restart_priority(tx: &mut Tx, call: &Call) -> Reply {
    Vm::get(&tx.state, call.str(0))?;
    ha_restart_priority(tx, call.str(0), call.str(1))
}

/// `set_ha_always_run` (deprecated): the restart priority `restart` or `""`.
pub fn set_ha_always_run(tx: &mut Tx, call: &Call) -> Reply {
    Vm::get(&tx.state, call.str(0))?;
    let on = call.args.get(1).and_then(Value::as_bool).unwrap_or(false);
    ha_restart_priority(tx, call.str(0), if on { "restart" } else { "" })
}

/// `set_NVRAM`, `add_to_NVRAM`, `remove_from_NVRAM`: operation `changing_NVRAM` (halted), then
/// the plain map change (`MAP_DUPLICATE_KEY` for a key already there, as the database says).
pub fn nvram(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    check_op(&tx.state, call, "changing_NVRAM")?;
    let mut entries = get(&tx.state, f::vm::NVRAM, &vm).as_map().unwrap_or(&[]).to_vec();
    let key = call.args.get(1).cloned().unwrap_or(Value::Null);
    match call.msg.name.as_str() {
        "set_NVRAM" => entries = call.args[1].as_map().unwrap_or(&[]).to_vec(),
        "add_to_NVRAM" => {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(ApiError::map_duplicate_key("VM", "NVRAM", &vm, key.as_str().unwrap_or("")));
            }
            entries.push((key, call.args.get(2).cloned().unwrap_or(Value::Null)));
        }
        _ => entries.retain(|(k, _)| *k != key),
    }
    tx.put(f::vm::NVRAM, &vm, Value::Map(entries));
    void()
}

const BIOS_KEYS: &[&str] = &[
    "bios-vendor",
    "bios-version",
    "system-manufacturer",
    "system-product-name",
    "system-version",
    "system-serial-number",
    "baseboard-manufacturer",
    "baseboard-product-name",
    "baseboard-version",
    "baseboard-serial-number",
    "baseboard-asset-tag",
    "baseboard-location-in-chassis",
    "enclosure-asset-tag",
];

/// xapi `Constants.generic_bios_strings`, type-11 strings included.
const GENERIC_BIOS: &[(&str, &str)] = &[
    ("bios-vendor", "Xen"),
    ("bios-version", ""),
    ("system-manufacturer", "Xen"),
    ("system-product-name", "HVM domU"),
    ("system-version", ""),
    ("system-serial-number", ""),
    ("baseboard-manufacturer", ""),
    ("baseboard-product-name", ""),
    ("baseboard-version", ""),
    ("baseboard-serial-number", ""),
    ("baseboard-asset-tag", ""),
    ("baseboard-location-in-chassis", ""),
    ("enclosure-asset-tag", ""),
    ("hp-rombios", ""),
    ("oem-1", "Xen"),
    ("oem-2", "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d"),
];

/// `set_bios_strings(self, value)`: once only (`VM_BIOS_STRINGS_ALREADY_SET`), known keys,
/// printable ASCII values of 1 to 512 characters, over the generic strings.
pub fn set_bios_strings(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    Vm::get(&tx.state, &vm)?;
    if !get(&tx.state, f::vm::BIOS_STRINGS, &vm).as_map().unwrap_or(&[]).is_empty() {
        return Err(ApiError::new(ErrorCode::VmBiosStringsAlreadySet, Vec::<String>::new()));
    }
    let given: Vec<(String, String)> = call.args[1]
        .as_map()
        .unwrap_or(&[])
        .iter()
        .map(|(k, v)| (k.as_str().unwrap_or("").to_string(), v.as_str().unwrap_or("").to_string()))
        .collect();
    for (k, v) in &given {
        let problem = if !BIOS_KEYS.contains(&k.as_str()) {
            Some("Unknown key".to_string())
        } else if v.is_empty() {
            Some("Value provided is empty".to_string())
        } else if v.chars().count() > 512 {
            Some(format!("{v} has length more than 512 characters"))
        } else if v.chars().any(|c| (c as u32) < 32 || (c as u32) >= 127) {
            Some(format!("{v} has non-printable ASCII characters"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ApiError::new(ErrorCode::InvalidValue, [k.clone(), problem]));
        }
    }
    let strings = GENERIC_BIOS.iter().map(|(k, v)| {
        let v = given.iter().find(|(g, _)| g == k).map_or(*v, |(_, given)| given.as_str());
        (Value::str(*k), Value::str(v))
    });
    tx.put(f::vm::BIOS_STRINGS, &vm, Value::Map(strings.collect()));
    void()
}

/// `set_has_vendor_device`: halted VMs; turning it on needs virtual hardware platform 2.
pub fn set_has_vendor_device(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    Vm::get(&tx.state, &vm)?;
    need_power(tx, &vm, "Halted")?;
    let on = call.args.get(1).and_then(Value::as_bool).unwrap_or(false);
    tx.put(f::vm::HAS_VENDOR_DEVICE, &vm, Value::Bool(on));
    if on && int(&tx.state, &vm, f::vm::HARDWARE_PLATFORM_VERSION) < 2 {
        set_ints(tx, &vm, &[("hardware_platform_version", 2)]);
    }
    void()
}

/// `set_appliance`: not for control domains, templates or snapshots.
pub fn set_appliance(tx: &mut Tx, call: &Call) -> Reply {
    let vm = call.str(0).to_string();
    let v = Vm::get(&tx.state, &vm)?;
    if v.is_control_domain || v.is_a_template || v.is_a_snapshot {
        let text = "Control domains, templates and snapshots cannot be assigned to appliances.";
        return Err(ApiError::new(ErrorCode::OperationNotAllowed, [text]));
    }
    let appliance = call.str(1).to_string();
    let class = schema().class("VM_appliance").expect("VM_appliance");
    if appliance != NULL_REF && !tx.state.exists(class.id, &appliance) {
        return Err(ApiError::handle_invalid("VM_appliance", &appliance));
    }
    tx.put(f::vm::APPLIANCE, &vm, Value::Ref(appliance));
    refresh(tx, &vm)
}

/// `update_allowed_operations`: recomputes the advisory list.
pub fn update_allowed_operations(tx: &mut Tx, call: &Call) -> Reply {
    Vm::get(&tx.state, call.str(0))?;
    refresh(tx, call.str(0))
}

#[cfg(test)]
mod tests {
    use super::ocaml_float;

    #[test]
    fn floats_print_as_ocaml_prints_them() {
        assert_eq!(ocaml_float(0.0), "0.");
        assert_eq!(ocaml_float(0.5), "0.5");
        assert_eq!(ocaml_float(-2.0), "-2.");
    }
}
