//! The registry of explicit messages: every hand-written message, one row each, in one table.
//!
//! A row names the message and says how it runs ([`Mode`]):
//!
//! - `Read`: a pure function of a snapshot, served on the caller's task;
//! - `Write`: a pure function of a transaction, run by the ledger's writer, its changes logged;
//! - `Runtime`: served by the node itself, because it needs state that is not in the log
//!   (sessions' last use, parked `event.from` waiters, running tasks). The [`Runtime`] value says
//!   which; the node has one `match` over it.
//!
//! A datamodel message that is neither implicit nor in this table answers `NOT_IMPLEMENTED`
//! (after xapi's usual checks); `tests/explicit_coverage.rs` keeps the list of those and fails if
//! it grows. To add a message: write its handler in the module of its class (or topic) and add
//! one row here.

#[rustfmt::skip] // generated: tests/schema_generated.rs writes it
pub mod args;
mod blob;
mod bond;
mod devices;
mod host;
mod mac;
mod network;
mod pbd;
mod pif;
mod role;
pub mod sr;
pub mod subject;
pub(super) mod message;
pub mod vdi;
mod vdi_records;
mod vif_locking;
mod vlan;
pub mod vm;

use std::collections::HashMap;
use std::sync::OnceLock;

use super::effect::{Done, Effect};
use super::state::State;
use super::tx::Tx;
use crate::error::ApiError;
use crate::schema::{Class, Message};
use crate::value::Value;

/// One call of an explicit message, as its handler sees it: arguments checked and coerced to the
/// parameter types, the session removed.
pub struct Call<'a> {
    pub class: &'a Class,
    pub msg: &'a Message,
    pub args: &'a [Value],
}

impl Call<'_> {
    /// Argument `i` as text (`""` if it is not text).
    pub fn str(&self, i: usize) -> &str {
        self.args.get(i).and_then(Value::as_str).unwrap_or("")
    }

    /// A member of the constructor record a `create` takes as its argument (`Null` if absent),
    /// coerced to its field's type (an SDK sends an `int` field as a string).
    pub fn member(&self, name: &str) -> Value {
        let value = match self.args.first().map(Value::materialized) {
            Some(Value::Record(members)) => {
                members.into_iter().find(|(k, _)| k == name).map_or(Value::Null, |(_, v)| v)
            }
            _ => Value::Null,
        };
        match self.class.field(name) {
            Some(i) if value != Value::Null => {
                crate::schema::coerce(value.clone(), &self.class.fields[i].ty, name).unwrap_or(value)
            }
            _ => value,
        }
    }
}

pub type ReadFn = fn(&State, &Call) -> Result<Value, ApiError>;
pub type WriteFn = fn(&mut Tx, &Call) -> Result<Value, ApiError>;
/// Whether the operation may start (run in the entry that marks it): `(state, call, op)`.
pub type CheckFn = fn(&State, &Call, &str) -> Result<(), ApiError>;
/// The host effect, planned from the state once the mark is committed: `(state, call, task)`.
pub type PlanFn = fn(&State, &Call, &str) -> Result<Effect, ApiError>;
/// The object an operation marks when it is not the call's first argument (`VDI.create` marks its
/// SR): its class and ref, from the call's arguments.
pub type MarksFn = fn(&Call) -> (&'static Class, String);
/// Records what the host did, in the entry that ends the operation: `(tx, call, task, effect, done)`.
pub type FinishFn = fn(&mut Tx, &Call, &str, &Effect, &Done) -> Result<Value, ApiError>;

#[derive(Clone, Copy)]
pub enum Mode {
    Read(ReadFn),
    Write(WriteFn),
    Runtime(Runtime),
    /// A long operation with a host effect: three entries (mark, effect off the writer, outcome).
    Long(&'static Long),
}

/// A long operation (xapi's `current_operations` and tasks): the node logs an entry that checks
/// and marks `op` in the object's `current_operations`, runs the planned effect through the host
/// off the writer (with task progress), then logs an entry with the outcome that clears the mark.
pub struct Long {
    /// The object's operation name (`vm_operations` value) in `current_operations`.
    pub op: &'static str,
    pub check: CheckFn,
    pub plan: PlanFn,
    pub finish: FinishFn,
    /// The object marked, if not the first argument.
    pub marks: Option<MarksFn>,
}

/// The explicit messages the node serves itself (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// `session.login_with_password`, `session.slave_local_login_with_password`.
    Login,
    /// `session.logout`, `session.local_logout`.
    Logout,
    SessionRecord,
    SessionLastActive,
    SessionRbacPermissions,
    SessionChangePassword,
    /// `session.get_all_subject_identifiers`: no external directory, so always empty.
    SessionSubjectIdentifiers,
    /// `session.logout_subject_identifier`: no external directory, so nothing to end.
    SessionLogoutSubject,
    EventFrom,
    EventInject,
    EventRegister,
    EventUnregister,
    EventNext,
    EventCurrentId,
    TaskCreate,
    /// `host.get_servertime`, `host.get_server_localtime`: the node's clock.
    HostTime,
    /// `task.cancel`, `task.destroy` and `task.set_*`: owner checks, then one logged change.
    TaskChange,
}

/// One registered message.
pub struct Row {
    pub class: &'static str,
    pub message: &'static str,
    pub mode: Mode,
}

const fn row(class: &'static str, message: &'static str, mode: Mode) -> Row {
    Row { class, message, mode }
}

use Mode::{Long as L, Read, Runtime as Rt, Write};

/// Every explicit message with an implementation, by class.
pub const REGISTRY: &[Row] = &[
    // console: xapi implements its constructor and destructor as refusals
    row("console", "create", Read(refused)),
    row("console", "destroy", Read(refused)),
    // blob
    row("blob", "create", Write(blob::create)),
    row("blob", "destroy", Write(destroy_one)),
    // host
    row("host", "disable", Write(host::disable)),
    row("host", "enable", Write(host::enable)),
    row("host", "reboot", L(&host::REBOOT)),
    row("host", "shutdown", L(&host::SHUTDOWN)),
    row("host", "evacuate", Write(host::evacuate)),
    row("host", "assert_can_evacuate", Read(host::assert_can_evacuate)),
    row("host", "call_plugin", Read(host::call_plugin)),
    row("host", "get_servertime", Rt(Runtime::HostTime)),
    row("host", "get_server_localtime", Rt(Runtime::HostTime)),
    // VM
    row("VM", "create", Write(vm::create::create)),
    row("VM", "start", L(&vm::power::START)),
    row("VM", "start_on", L(&vm::power::START_ON)),
    row("VM", "clean_shutdown", L(&vm::power::CLEAN_SHUTDOWN)),
    row("VM", "hard_shutdown", L(&vm::power::HARD_SHUTDOWN)),
    row("VM", "shutdown", L(&vm::power::SHUTDOWN)),
    row("VM", "clean_reboot", L(&vm::power::CLEAN_REBOOT)),
    row("VM", "hard_reboot", L(&vm::power::HARD_REBOOT)),
    row("VM", "pause", L(&vm::power::PAUSE)),
    row("VM", "unpause", L(&vm::power::UNPAUSE)),
    row("VM", "suspend", L(&vm::power::SUSPEND)),
    row("VM", "resume", L(&vm::power::RESUME)),
    row("VM", "resume_on", L(&vm::power::RESUME_ON)),
    row("VM", "clone", L(&vm::clone::CLONE)),
    row("VM", "copy", L(&vm::clone::COPY)),
    row("VM", "provision", L(&vm::clone::PROVISION)),
    row("VM", "snapshot", L(&vm::snapshot::SNAPSHOT)),
    row("VM", "checkpoint", L(&vm::snapshot::CHECKPOINT)),
    row("VM", "revert", L(&vm::snapshot::REVERT)),
    row("VM", "destroy", L(&vm::destroy::DESTROY)),
    row("VM", "power_state_reset", L(&vm::reset::POWER_STATE_RESET)),
    row("VM", "pool_migrate", L(&vm::boot::POOL_MIGRATE)),
    row("VM", "assert_can_boot_here", Read(vm::boot::assert_can_boot_here_call)),
    row("VM", "set_memory_limits", Write(vm::set_memory_limits)),
    row("VM", "set_is_a_template", Write(vm::set_is_a_template)),
    row("VM", "set_memory", Write(vm::setters::set_memory)),
    row("VM", "set_memory_static_range", Write(vm::setters::set_memory_static_range)),
    row("VM", "set_memory_static_max", Write(vm::setters::set_memory_static_max)),
    row("VM", "set_memory_static_min", Write(vm::setters::set_memory_static_min)),
    row("VM", "set_memory_dynamic_range", Write(vm::setters::set_memory_dynamic_range)),
    row("VM", "set_memory_dynamic_max", Write(vm::setters::set_memory_dynamic_max)),
    row("VM", "set_memory_dynamic_min", Write(vm::setters::set_memory_dynamic_min)),
    row("VM", "set_memory_target_live", Write(vm::setters::set_memory_target_live)),
    row("VM", "set_VCPUs_max", Write(vm::setters::set_vcpus_max)),
    row("VM", "set_VCPUs_at_startup", Write(vm::setters::set_vcpus_at_startup)),
    row("VM", "set_VCPUs_number_live", Write(vm::setters::set_vcpus_number_live)),
    row("VM", "set_HVM_boot_policy", Write(vm::setters::set_hvm_boot_policy)),
    row("VM", "set_domain_type", Write(vm::setters::set_domain_type)),
    row("VM", "set_actions_after_crash", Write(vm::setters::set_actions_after_crash)),
    row("VM", "set_HVM_shadow_multiplier", Write(vm::setters::set_hvm_shadow_multiplier)),
    row("VM", "set_shadow_multiplier_live", Write(vm::setters::set_shadow_multiplier_live)),
    row("VM", "set_start_delay", Write(vm::setters::set_non_negative)),
    row("VM", "set_shutdown_delay", Write(vm::setters::set_non_negative)),
    row("VM", "set_order", Write(vm::setters::set_non_negative)),
    row("VM", "set_ha_restart_priority", Write(vm::setters::set_ha_restart_priority)),
    row("VM", "set_ha_always_run", Write(vm::setters::set_ha_always_run)),
    row("VM", "set_NVRAM", Write(vm::setters::nvram)),
    row("VM", "add_to_NVRAM", Write(vm::setters::nvram)),
    row("VM", "remove_from_NVRAM", Write(vm::setters::nvram)),
    row("VM", "set_bios_strings", Write(vm::setters::set_bios_strings)),
    row("VM", "set_has_vendor_device", Write(vm::setters::set_has_vendor_device)),
    row("VM", "set_appliance", Write(vm::setters::set_appliance)),
    row("VM", "update_allowed_operations", Write(vm::setters::update_allowed_operations)),
    row("VM", "assert_operation_valid", Read(vm::queries::assert_operation_valid)),
    row("VM", "get_cooperative", Read(vm::queries::get_cooperative)),
    row("VM", "get_boot_record", Read(vm::queries::get_boot_record)),
    row("VM", "send_sysrq", Read(vm::queries::send_to_domain)),
    row("VM", "send_trigger", Read(vm::queries::send_to_domain)),
    row("VM", "compute_memory_overhead", Read(vm::queries::compute_memory_overhead)),
    row("VM", "maximise_memory", Read(vm::queries::maximise_memory)),
    row("VM", "get_allowed_VBD_devices", Read(vm::queries::get_allowed_vbd_devices)),
    row("VM", "get_allowed_VIF_devices", Read(vm::queries::get_allowed_vif_devices)),
    row("VM", "get_possible_hosts", Read(vm::queries::get_possible_hosts)),
    row("VM", "assert_agile", Read(vm::queries::assert_agile)),
    // VBD, VIF
    row("VBD", "create", Write(devices::vbd_create)),
    row("VBD", "plug", Write(devices::vbd_plug)),
    row("VBD", "unplug", Write(devices::vbd_unplug)),
    row("VBD", "unplug_force", Write(devices::vbd_unplug)),
    row("VBD", "insert", Write(devices::vbd_insert)),
    row("VBD", "eject", Write(devices::vbd_eject)),
    row("VBD", "destroy", Write(devices::vbd_destroy)),
    row("VIF", "create", Write(devices::vif_create)),
    row("VIF", "plug", Write(devices::vif_plug)),
    row("VIF", "unplug", Write(devices::vif_unplug)),
    row("VIF", "unplug_force", Write(devices::vif_unplug)),
    row("VIF", "destroy", Write(devices::vif_destroy)),
    row("VIF", "set_locking_mode", Write(vif_locking::set_locking_mode)),
    row("VIF", "set_ipv4_allowed", Write(vif_locking::allowed)),
    row("VIF", "add_ipv4_allowed", Write(vif_locking::allowed)),
    row("VIF", "remove_ipv4_allowed", Write(vif_locking::allowed)),
    row("VIF", "set_ipv6_allowed", Write(vif_locking::allowed)),
    row("VIF", "add_ipv6_allowed", Write(vif_locking::allowed)),
    row("VIF", "remove_ipv6_allowed", Write(vif_locking::allowed)),
    // SR, PBD
    row("SR", "create", L(&sr::CREATE)),
    row("SR", "introduce", Write(sr::introduce)),
    row("SR", "forget", Write(sr::forget)),
    row("SR", "destroy", L(&sr::DESTROY)),
    row("SR", "scan", L(&sr::SCAN)),
    row("SR", "update", L(&sr::UPDATE)),
    row("SR", "probe", Read(sr::probe)),
    row("SR", "set_name_label", Write(sr::set_name)),
    row("SR", "set_name_description", Write(sr::set_name)),
    row("SR", "set_shared", Write(sr::set_shared)),
    row("SR", "set_physical_size", Read(sr::sm_only)),
    row("PBD", "create", Write(pbd::create)),
    row("PBD", "set_device_config", Read(sr::sm_only)),
    row("PBD", "plug", Write(pbd::plug)),
    row("PBD", "unplug", Write(pbd::unplug)),
    row("PBD", "destroy", Write(pbd::destroy)),
    // network, PIF, VLAN, Bond
    row("network", "create", Write(network::create)),
    row("network", "destroy", Write(network::destroy_network)),
    row("network", "set_default_locking_mode", Write(network::set_default_locking_mode)),
    row("network", "add_purpose", Write(network::add_purpose)),
    row("network", "remove_purpose", Write(network::remove_purpose)),
    row("PIF", "reconfigure_ip", Write(pif::reconfigure_ip)),
    row("PIF", "reconfigure_ipv6", Write(pif::reconfigure_ipv6)),
    row("PIF", "set_primary_address_type", Write(pif::set_primary_address_type)),
    row("PIF", "plug", Write(pif::plug)),
    row("PIF", "unplug", Write(pif::unplug)),
    row("PIF", "forget", Write(pif::forget)),
    row("PIF", "destroy", Write(pif::destroy_pif)),
    row("PIF", "create_VLAN", Write(pif::create_vlan)),
    row("VLAN", "create", Write(vlan::create)),
    row("VLAN", "destroy", Write(vlan::destroy_vlan)),
    row("Bond", "create", Write(bond::create)),
    row("Bond", "destroy", Write(bond::destroy_bond)),
    row("Bond", "set_mode", Write(bond::set_mode)),
    row("Bond", "set_property", Write(bond::set_property)),
    // VDI
    row("VDI", "create", L(&vdi::CREATE)),
    row("VDI", "destroy", L(&vdi::DESTROY)),
    row("VDI", "resize", L(&vdi::RESIZE)),
    row("VDI", "clone", L(&vdi::CLONE)),
    row("VDI", "snapshot", L(&vdi::SNAPSHOT)),
    row("VDI", "copy", L(&vdi::COPY)),
    row("VDI", "introduce", L(&vdi_records::INTRODUCE)),
    row("VDI", "forget", Write(vdi_records::forget)),
    row("VDI", "set_name_label", Write(vdi_records::set_name)),
    row("VDI", "set_name_description", Write(vdi_records::set_name)),
    row("VDI", "set_on_boot", Write(vdi_records::set_on_boot)),
    row("VDI", "set_allow_caching", Write(vdi_records::set_allow_caching)),
    row("VDI", "set_read_only", Read(sr::sm_only)),
    row("VDI", "set_sharable", Read(sr::sm_only)),
    // event
    row("event", "from", Rt(Runtime::EventFrom)),
    row("event", "inject", Rt(Runtime::EventInject)),
    row("event", "register", Rt(Runtime::EventRegister)),
    row("event", "unregister", Rt(Runtime::EventUnregister)),
    row("event", "next", Rt(Runtime::EventNext)),
    row("event", "get_current_id", Rt(Runtime::EventCurrentId)),
    // message
    row("message", "create", Write(message::create)),
    row("message", "destroy", Write(destroy_one)),
    row("message", "destroy_many", Write(message::destroy_many)),
    row("message", "get_all", Read(message::get_all)),
    row("message", "get_all_records", Read(message::get_all_records)),
    row("message", "get_record", Read(message::get_record)),
    row("message", "get_by_uuid", Read(message::get_by_uuid)),
    row("message", "get_all_records_where", Read(message::get_all_records_where)),
    row("message", "get_since", Read(message::get_since)),
    row("message", "get", Read(message::get)),
    // role
    row("role", "get_all", Read(role::read)),
    row("role", "get_all_records", Read(role::read)),
    row("role", "get_record", Read(role::read)),
    row("role", "get_by_uuid", Read(role::read)),
    row("role", "get_by_name_label", Read(role::read)),
    row("role", "get_uuid", Read(role::read)),
    row("role", "get_name_label", Read(role::read)),
    row("role", "get_name_description", Read(role::read)),
    row("role", "get_subroles", Read(role::read)),
    row("role", "get_is_internal", Read(role::read)),
    row("role", "get_permissions", Read(role::read)),
    row("role", "get_permissions_name_label", Read(role::read)),
    row("role", "get_by_permission", Read(role::read)),
    row("role", "get_by_permission_name_label", Read(role::read)),
    // subject
    row("subject", "create", Write(subject::create)),
    row("subject", "destroy", Write(subject::destroy_subject)),
    row("subject", "add_to_roles", Write(subject::add_to_roles)),
    row("subject", "remove_from_roles", Write(subject::remove_from_roles)),
    row("subject", "get_permissions_name_label", Read(subject::get_permissions_name_label)),
    // session
    row("session", "login_with_password", Rt(Runtime::Login)),
    row("session", "slave_local_login_with_password", Rt(Runtime::Login)),
    row("session", "logout", Rt(Runtime::Logout)),
    row("session", "local_logout", Rt(Runtime::Logout)),
    row("session", "get_record", Rt(Runtime::SessionRecord)),
    row("session", "get_last_active", Rt(Runtime::SessionLastActive)),
    row("session", "get_rbac_permissions", Rt(Runtime::SessionRbacPermissions)),
    row("session", "change_password", Rt(Runtime::SessionChangePassword)),
    row("session", "get_all_subject_identifiers", Rt(Runtime::SessionSubjectIdentifiers)),
    row("session", "logout_subject_identifier", Rt(Runtime::SessionLogoutSubject)),
    // task
    row("task", "create", Rt(Runtime::TaskCreate)),
    row("task", "cancel", Rt(Runtime::TaskChange)),
    row("task", "destroy", Rt(Runtime::TaskChange)),
    row("task", "set_status", Rt(Runtime::TaskChange)),
    row("task", "set_progress", Rt(Runtime::TaskChange)),
    row("task", "set_result", Rt(Runtime::TaskChange)),
    row("task", "set_error_info", Rt(Runtime::TaskChange)),
];

/// `OTHER_OPERATION_IN_PROGRESS [class, object, op, task]` for the first operation in an
/// object's `current_operations`, if any.
pub(super) fn busy(state: &State, current: crate::schema::FieldKey, object: &str) -> Result<(), ApiError> {
    let ops = vm::get(state, current, object);
    match ops.as_map().and_then(|m| m.first()) {
        Some((task, op)) => Err(ApiError::new(
            crate::error::ErrorCode::OtherOperationInProgress,
            [current.class().name.as_str(), object, op.as_str().unwrap_or(""), task.as_str().unwrap_or("")],
        )),
        None => Ok(()),
    }
}

/// A message xapi implements as `NOT_IMPLEMENTED [<Class>.<message>]`, the class capitalised
/// as in its OCaml module (ocaml/xapi/api_server_common.ml: `Console.create`, `Console.destroy`).
fn refused(state: &State, call: &Call) -> Result<Value, ApiError> {
    if call.msg.name == "destroy" {
        let r = call.str(0);
        if !state.exists(call.class.id, r) {
            return Err(ApiError::handle_invalid(&call.class.name, r));
        }
    }
    let mut module = call.class.name.clone();
    if let Some(first) = module.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    Err(ApiError::new(crate::error::ErrorCode::NotImplemented, [format!("{module}.{}", call.msg.name)]))
}

/// `<class>.destroy(self)` of a class whose objects need nothing else undone (`blob`, `message`).
fn destroy_one(tx: &mut Tx, call: &Call) -> Result<Value, ApiError> {
    let r = call.str(0);
    if !tx.state.exists(call.class.id, r) {
        return Err(ApiError::handle_invalid(&call.class.name, r));
    }
    super::implicit::destroy(tx, call.class, r);
    Ok(Value::String(String::new()))
}

/// The registered row of `class.message`, if any.
pub fn lookup(class: &str, message: &str) -> Option<&'static Row> {
    static INDEX: OnceLock<HashMap<(&'static str, &'static str), &'static Row>> = OnceLock::new();
    INDEX.get_or_init(|| REGISTRY.iter().map(|r| ((r.class, r.message), r)).collect()).get(&(class, message)).copied()
}

/// How `msg` of `class` runs, if it is registered.
pub fn mode(class: &Class, msg: &Message) -> Option<Mode> {
    lookup(&class.name, &msg.name).map(|r| r.mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::schema;

    #[test]
    fn argument_structs_read_the_checked_arguments_in_order() {
        let class = schema().class("VM").unwrap();
        let msg = class.message("set_memory_limits").unwrap();
        let values = [Value::Ref("OpaqueRef:v".into()), Value::Int(1), Value::Int(4), Value::Int(2), Value::Int(3)];
        let a = args::VmSetMemoryLimits::from(&Call { class, msg, args: &values });
        assert_eq!(
            (a.this.as_str(), a.static_min, a.static_max, a.dynamic_min, a.dynamic_max),
            ("OpaqueRef:v", 1, 4, 2, 3)
        );
        let class = schema().class("host").unwrap();
        let msg = class.message("call_plugin").unwrap();
        let values = [Value::Ref("OpaqueRef:h".into()), Value::str("p"), Value::str("f"), Value::Map(vec![])];
        let a = args::HostCallPlugin::from(&Call { class, msg, args: &values });
        assert_eq!(
            (a.host.as_str(), a.plugin.as_str(), a.r#fn.as_str(), a.args),
            ("OpaqueRef:h", "p", "f", Value::Map(vec![]))
        );
    }

    #[test]
    fn every_row_names_a_datamodel_message_once() {
        let mut seen = std::collections::HashSet::new();
        for r in REGISTRY {
            assert!(seen.insert((r.class, r.message)), "{}.{} registered twice", r.class, r.message);
            let class = schema().class(r.class).unwrap_or_else(|| panic!("no class {}", r.class));
            assert!(class.message(r.message).is_some(), "no message {}.{}", r.class, r.message);
        }
    }
}
