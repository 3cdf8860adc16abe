//! Which operations a VM allows, as pure tables (xapi `xapi_vm_lifecycle.ml`: `allowed_power_states`,
//! `is_allowed_concurrently`, `check_template`, `check_snapshot`; docs/xenapi-semantics.md §g.1, §g.2).
//! `check` is the test an operation passes when it starts; `refresh` recomputes the advisory
//! `allowed_operations` list, after every change of power state or of `current_operations`.

use super::super::super::state::{Object, State};
use super::super::super::tx::Tx;
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::{schema, Class};
use crate::value::Value;

const HALTED: &str = "Halted";
const PAUSED: &str = "Paused";
const SUSPENDED: &str = "Suspended";
const RUNNING: &str = "Running";

/// The power states an operation may start from, in xapi's order (the order `VM_BAD_POWER_STATE`
/// lists them in).
pub fn allowed_power_states(op: &str, vm: &Vm) -> Vec<&'static str> {
    match op {
        "import" => vec![],
        "changing_VCPUs" | "changing_static_range" | "changing_memory_limits" => {
            if vm.is_control_domain {
                vec![HALTED, RUNNING]
            } else {
                vec![HALTED]
            }
        }
        "changing_shadow_memory"
        | "changing_NVRAM"
        | "make_into_template"
        | "provision"
        | "start"
        | "start_on"
        | "create_vtpm" => vec![HALTED],
        "unpause" => vec![PAUSED],
        "csvm" | "resume" | "resume_on" => vec![SUSPENDED],
        "awaiting_memory_live"
        | "call_plugin"
        | "clean_reboot"
        | "clean_shutdown"
        | "changing_memory_live"
        | "changing_shadow_memory_live"
        | "changing_VCPUs_live"
        | "data_source_op"
        | "pause"
        | "pool_migrate"
        | "send_sysrq"
        | "send_trigger"
        | "snapshot_with_quiesce"
        | "suspend" => vec![RUNNING],
        "changing_dynamic_range" => vec![HALTED, RUNNING],
        "clone" | "copy" => {
            if vm.is_a_snapshot {
                vec![HALTED, SUSPENDED]
            } else {
                vec![HALTED]
            }
        }
        "create_template" | "destroy" | "export" => vec![HALTED, SUSPENDED],
        "hard_reboot" => vec![PAUSED, RUNNING],
        "checkpoint" | "get_boot_record" | "shutdown" | "hard_shutdown" => vec![PAUSED, SUSPENDED, RUNNING],
        "migrate_send" => vec![HALTED, SUSPENDED, RUNNING],
        _ => vec![HALTED, PAUSED, SUSPENDED, RUNNING],
    }
}

/// Whether `op` may run while `current` (the operations in progress) run.
fn allowed_concurrently(op: &str, current: &[String]) -> bool {
    let group = |ops: &[&str]| ops.contains(&op) && current.iter().all(|o| ops.contains(&o.as_str()));
    match op {
        "hard_shutdown" => !current.iter().any(|o| o == "hard_shutdown"),
        "hard_reboot" => !current.iter().any(|o| o == "hard_shutdown" || o == "hard_reboot"),
        _ => group(&["clone", "copy", "export"]) || group(&["snapshot", "checkpoint"]),
    }
}

/// Operations a template allows (`check_template`); `destroy` only for a non-default template.
const TEMPLATE_OPS: &[&str] = &[
    "changing_dynamic_range",
    "changing_static_range",
    "changing_memory_limits",
    "changing_shadow_memory",
    "changing_VCPUs",
    "changing_NVRAM",
    "clone",
    "copy",
    "export",
    "metadata_export",
    "provision",
];

/// Operations a snapshot allows (`check_snapshot`).
const SNAPSHOT_OPS: &[&str] =
    &["revert", "clone", "copy", "export", "destroy", "hard_shutdown", "metadata_export", "reverting"];

/// Operations a control domain allows (xapi `check_operation_error`); dom0 refuses
/// `changing_VCPUs` and `destroy` as well.
const CONTROL_DOMAIN_ALLOWS: &[&str] = &[
    "data_source_op",
    "changing_memory_live",
    "awaiting_memory_live",
    "metadata_export",
    "changing_dynamic_range",
    "changing_memory_limits",
    "changing_static_range",
    "start",
    "start_on",
    "changing_VCPUs",
    "destroy",
];

/// Operations left out of `allowed_operations` (xapi `ignored_ops`).
const IGNORED: &[&str] = &[
    "create_template",
    "power_state_reset",
    "csvm",
    "get_boot_record",
    "send_sysrq",
    "send_trigger",
    "query_services",
    "shutdown",
    "call_plugin",
    "changing_memory_live",
    "awaiting_memory_live",
    "changing_memory_limits",
    "changing_shadow_memory_live",
    "changing_VCPUs",
    "assert_operation_valid",
    "data_source_op",
    "update_allowed_operations",
    "import",
    "reverting",
];

/// Operations this server can run; the others are never listed as allowed.
const IMPLEMENTED: &[&str] = &[
    "start",
    "clean_shutdown",
    "hard_shutdown",
    "clean_reboot",
    "hard_reboot",
    "suspend",
    "resume",
    "pause",
    "unpause",
    "clone",
    "copy",
    "provision",
    "snapshot",
    "checkpoint",
    "revert",
    "pool_migrate",
    "destroy",
    "make_into_template",
    "changing_dynamic_range",
    "changing_static_range",
    "changing_VCPUs_live",
];

/// The fields of a VM (and of its metrics, guest metrics and disks) the checks read.
pub struct Vm {
    pub reference: String,
    pub power_state: String,
    pub is_a_template: bool,
    pub is_default_template: bool,
    pub is_a_snapshot: bool,
    pub is_control_domain: bool,
    pub blocked: Vec<(String, String)>,
    /// `(task, op)` of the operations in progress.
    pub current: Vec<(String, String)>,
    /// The guest needs no feature flags (xapi's "implicit support"): not live, a PV-family
    /// domain, or PV drivers whose version the guest agent reported.
    pub implicit_support: bool,
    /// `VM_guest_metrics.other`: the guest agent's feature flags.
    pub guest_other: Vec<(String, String)>,
    /// A disk has `sm_config:on_boot=reset`.
    pub on_boot_reset: bool,
}

/// A `PV_drivers_version` with numeric `major` and `minor` (xapi `xapi_pv_driver_version.ml`
/// `has_pv_drivers`): the guest's drivers are known.
pub fn has_pv_drivers(version: &Value) -> bool {
    let number = |k: &str| pairs(version).iter().any(|(key, v)| key == k && v.parse::<i64>().is_ok());
    number("major") && number("minor")
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_map().unwrap_or(&[]).iter().map(|(k, v)| (text(k), text(v))).collect()
}

/// A field of another object, `Null` if either is missing.
fn other_field(state: &State, class: &str, reference: &Value, name: &str) -> Value {
    super::field(state, class, reference.as_str().unwrap_or(""), name)
}

impl Vm {
    pub fn read(state: &State, class: &Class, reference: &str, o: &Object) -> Vm {
        let f = |n: &str| &o.fields[class.field(n).expect("a VM field")];
        let other: Vec<(String, String)> = pairs(f("other_config"));
        let power_state = text(f("power_state"));
        let live = matches!(power_state.as_str(), "Running" | "Paused");
        let domain_type = other_field(state, "VM_metrics", f("metrics"), "current_domain_type");
        let drivers = other_field(state, "VM_guest_metrics", f("guest_metrics"), "PV_drivers_version");
        let on_boot_reset = f("VBDs").as_set().unwrap_or(&[]).iter().any(|vbd| {
            let vdi = other_field(state, "VBD", vbd, "VDI");
            pairs(&other_field(state, "VDI", &vdi, "sm_config")).iter().any(|(k, v)| k == "on_boot" && v == "reset")
        });
        Vm {
            reference: reference.to_string(),
            is_a_template: f("is_a_template").as_bool().unwrap_or(false),
            is_default_template: f("is_default_template").as_bool().unwrap_or(false)
                || other.iter().any(|(k, v)| k == "default_template" && (v == "true" || v == "1")),
            is_a_snapshot: f("is_a_snapshot").as_bool().unwrap_or(false),
            is_control_domain: f("is_control_domain").as_bool().unwrap_or(false),
            blocked: pairs(f("blocked_operations")),
            current: pairs(f("current_operations")),
            implicit_support: !live
                || matches!(domain_type.as_str(), Some("pv" | "pvh" | "pv_in_pvh"))
                || has_pv_drivers(&drivers),
            guest_other: pairs(&other_field(state, "VM_guest_metrics", f("guest_metrics"), "other")),
            on_boot_reset,
            power_state,
        }
    }

    pub fn get(state: &State, reference: &str) -> Result<Vm, ApiError> {
        let class = vm_class();
        let o = state.get(class.id, reference).ok_or_else(|| ApiError::handle_invalid("VM", reference))?;
        Ok(Vm::read(state, class, reference, o))
    }

    fn has_feature(&self, key: &str) -> bool {
        self.guest_other.iter().any(|(k, v)| k == key && v == "1")
    }
}

pub fn vm_class() -> &'static Class {
    schema().class("VM").expect("VM class")
}

/// Whether `op` may start on `vm` now (xapi `check_operation_error`, strict, in its order: blocked,
/// power state, concurrency, template, snapshot, provision and revert, control domain, guest
/// features, quiesce, disks reset at boot).
pub fn check(vm: &Vm, op: &str) -> Result<(), ApiError> {
    let r = vm.reference.clone();
    if let Some((_, reason)) = vm.blocked.iter().find(|(k, _)| k == op) {
        return Err(ApiError::new(ErrorCode::OperationBlocked, [r, reason.clone()]));
    }
    let allowed = allowed_power_states(op, vm);
    if !allowed.contains(&vm.power_state.as_str()) {
        let expected = allowed.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>().join(", ");
        return Err(ApiError::new(ErrorCode::VmBadPowerState, [r, expected, vm.power_state.to_ascii_lowercase()]));
    }
    let current: Vec<String> = vm.current.iter().map(|(_, o)| o.clone()).collect();
    if !current.is_empty() && !allowed_concurrently(op, &current) {
        return Err(other_operation_in_progress(vm));
    }
    let template_allows =
        TEMPLATE_OPS.contains(&op) || ((op == "destroy" || op == "migrate_send") && !vm.is_default_template);
    if vm.is_a_template && !vm.is_a_snapshot && !template_allows {
        return Err(ApiError::new(ErrorCode::VmIsTemplate, [r, op.to_string()]));
    }
    if vm.is_a_snapshot && !SNAPSHOT_OPS.contains(&op) {
        return Err(ApiError::new(ErrorCode::VmIsSnapshot, [r, op.to_string()]));
    }
    if op == "provision" && !vm.is_a_template {
        return Err(ApiError::new(ErrorCode::ProvisionOnlyAllowedOnTemplate, Vec::<String>::new()));
    }
    if op == "revert" && !vm.is_a_snapshot {
        return Err(ApiError::new(ErrorCode::RevertOnlyAllowedOnSnapshot, Vec::<String>::new()));
    }
    if vm.is_control_domain && (op == "changing_VCPUs" || op == "destroy") {
        // The only control domain here is dom0.
        return Err(ApiError::new(ErrorCode::OperationNotAllowed, ["This operation is not allowed on dom0"]));
    }
    if vm.is_control_domain && !CONTROL_DOMAIN_ALLOWS.contains(&op) {
        return Err(ApiError::new(
            ErrorCode::OperationNotAllowed,
            ["This operation is not allowed on a control domain"],
        ));
    }
    check_feature(vm, op)?;
    if op == "snapshot_with_quiesce" {
        return Err(ApiError::new(ErrorCode::VmSnapshotWithQuiesceNotSupported, [r]));
    }
    if matches!(op, "checkpoint" | "snapshot" | "suspend" | "snapshot_with_quiesce") && vm.on_boot_reset {
        return Err(ApiError::new(ErrorCode::VdiOnBootModeIncompatibleWithOperation, Vec::<String>::new()));
    }
    Ok(())
}

/// `OTHER_OPERATION_IN_PROGRESS [class, ref, op, task]`; several in progress are listed as
/// `{op1,op2}` and `{t1,t2}` (xapi `report_concurrent_operations_error`).
pub fn other_operation_in_progress(vm: &Vm) -> ApiError {
    let (ops, tasks) = match vm.current.as_slice() {
        [(task, op)] => (op.clone(), task.clone()),
        many => {
            let list = |f: fn(&(String, String)) -> &String| {
                format!("{{{}}}", many.iter().map(f).cloned().collect::<Vec<_>>().join(","))
            };
            (list(|c| &c.1), list(|c| &c.0))
        }
    };
    ApiError::new(ErrorCode::OtherOperationInProgress, ["VM".to_string(), vm.reference.clone(), ops, tasks])
}

/// The guest features an operation on a live VM needs (xapi `check_op_for_feature`).
fn check_feature(vm: &Vm, op: &str) -> Result<(), ApiError> {
    let live = matches!(vm.power_state.as_str(), "Running" | "Paused");
    let r = || vm.reference.clone();
    if live && matches!(op, "suspend" | "checkpoint" | "pool_migrate" | "migrate_send") {
        if let Some((_, reason)) = vm.guest_other.iter().find(|(k, _)| k == "data-cant-suspend-reason") {
            return Err(ApiError::new(ErrorCode::VmNonSuspendable, [r(), reason.clone()]));
        }
    }
    if vm.implicit_support {
        return Ok(());
    }
    let lacks = match op {
        "suspend" | "checkpoint" | "pool_migrate" | "migrate_send" => !vm.has_feature("feature-suspend"),
        "clean_shutdown" => !vm.has_feature("feature-shutdown") && !vm.has_feature("feature-poweroff"),
        "clean_reboot" => !vm.has_feature("feature-shutdown") && !vm.has_feature("feature-reboot"),
        "changing_VCPUs_live" => !vm.has_feature("feature-vcpu-hotplug"),
        _ => false,
    };
    if lacks {
        return Err(ApiError::new(ErrorCode::VmLacksFeature, [r()]));
    }
    Ok(())
}

/// The advisory list: every implemented operation that would pass [`check`] now.
pub fn allowed(vm: &Vm) -> Vec<&'static str> {
    IMPLEMENTED.iter().copied().filter(|op| !IGNORED.contains(op) && check(vm, op).is_ok()).collect()
}

/// Recomputes `allowed_operations` of a VM (if it still exists), logging a change only if it differs.
pub fn refresh(tx: &mut Tx, reference: &str) {
    let class = vm_class();
    let Some(o) = tx.state.get(class.id, reference) else { return };
    let field = class.field("allowed_operations").expect("allowed_operations");
    let vm = Vm::read(&tx.state, class, reference, o);
    let value = Value::Set(allowed(&vm).into_iter().map(|op| Value::Enum(op.into())).collect());
    if o.fields[field] != value {
        tx.put(f::vm::ALLOWED_OPERATIONS, reference, value);
    }
}
