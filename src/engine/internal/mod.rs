//! Internal operations: the writes that no API message names — task and session bookkeeping,
//! garbage collection, the first start, user administration, key management. Each is a variant
//! of [`InternalOp`], a value the writer can log, count and test; [`run`] is the one controller
//! that executes them against a transaction, as pure as the explicit handlers.
//!
//! To add one: a variant here (with its logged method name and parameters), its pure function in
//! the module of its topic, and one arm in [`run`].

mod first_start;
mod inventory;
mod sessions;
mod tasks;

pub use first_start::{FirstBoot, Machine, PRODUCT_VERSION, XAPI_VERSION};
pub use inventory::{is_missing as inventory_is_missing, templates, Inventory};
pub use sessions::{expired_sessions, group_key, Login, SESSIONS_PER_ORIGINATOR_MAX, SESSION_IDLE_TIMEOUT_SECS};
pub use tasks::{finish as finish_task, is_pending as task_is_pending, NewTask, TaskEdit, Turn};

use super::implicit::destroy;
use super::tx::Tx;
use crate::entry::Change;
use crate::error::ApiError;
use crate::schema::generated::field as f;
use crate::schema::{schema, Class};
use crate::value::Value;

/// One internal write, as data.
#[derive(Clone, Debug, PartialEq)]
pub enum InternalOp {
    /// A fresh data dir: root, the pool, this host and what it holds.
    FirstStart(Box<FirstBoot>),
    /// A new session (and the evictions its group's limit requires); answers the session's ref.
    Login(Box<Login>),
    /// Ends a session (`session.logout` or, with `local`, `session.local_logout`).
    Logout {
        session: String,
        local: bool,
    },
    /// Destroys idle or surplus sessions that still exist.
    SessionGc(Vec<String>),
    /// Creates or replaces a local user (`why` names the command in the log).
    UserPut {
        name: String,
        role: String,
        password_hash: String,
        why: UserChange,
    },
    UserDelete {
        name: String,
    },
    /// Ends every session and seals secret values still in the clear: `(secret ref, sealed value)`.
    UpgradeCredentials {
        sessions: Vec<String>,
        sealed: Vec<(String, String)>,
    },
    /// Replaces live secret values by the same values sealed under the new key `key_id`.
    Reseal {
        key_id: u32,
        values: Vec<(String, String)>,
    },
    /// `event.inject(class, ref)`.
    EventInject {
        class: String,
        reference: String,
    },
    /// A pending task; answers its ref.
    TaskCreate(Box<NewTask>),
    /// Registers `op` of `task` in the object's `current_operations` if no other operation holds it;
    /// answers a [`Turn`] code.
    RegisterOperation {
        class: &'static str,
        object: String,
        op: String,
        task: String,
    },
    /// Records a task's outcome and clears the operation it registered, if any.
    TaskComplete {
        task: String,
        outcome: Box<Result<Value, ApiError>>,
        registered: Option<(&'static str, String)>,
    },
    /// The end of a disk transfer over HTTP (`/import_raw_vdi`, `/export_raw_vdi`): the bytes a
    /// written VDI now holds on disk, and the task's outcome (a task the transfer made itself
    /// is destroyed, as xapi's is).
    TransferDone {
        task: String,
        owned: bool,
        outcome: Box<Result<Value, ApiError>>,
        written: Option<(String, i64)>,
    },
    /// `task.cancel`, `task.destroy`, `task.set_*`, after the node's owner check.
    TaskEdit {
        task: String,
        edit: TaskEdit,
    },
    /// Fails the tasks a previous run left pending.
    TaskFailOrphans(Vec<String>),
    /// Destroys expired tasks that still exist.
    TaskGc(Vec<String>),
    /// The host's inventory: SMs, the local SR and its PBD, networks and PIF, default templates.
    Inventory(Box<Inventory>),
    /// After a start: `(VM, power state the host reports)` for each VM whose logged state differs
    /// or whose `current_operations` name tasks that no longer run; and the hosts (see
    /// [`hosts_need_reconcile`]).
    Reconcile(Vec<(String, String)>),
    /// Exactly these changes (tools and tests that compute changes themselves).
    Changes(Vec<Change>),
}

/// Which command put a user, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserChange {
    Add,
    Passwd,
    ChangePassword,
}

impl InternalOp {
    /// The method name its entry is logged under.
    pub fn method(&self) -> &'static str {
        match self {
            InternalOp::FirstStart(_) => "xenledger.first_start",
            InternalOp::Login(_) => "session.login_with_password",
            InternalOp::Logout { local: false, .. } => "session.logout",
            InternalOp::Logout { local: true, .. } => "session.local_logout",
            InternalOp::SessionGc(_) => "session.gc",
            InternalOp::UserPut { why: UserChange::Add, .. } => "user.add",
            InternalOp::UserPut { why: UserChange::Passwd, .. } => "user.passwd",
            InternalOp::UserPut { why: UserChange::ChangePassword, .. } => "session.change_password",
            InternalOp::UserDelete { .. } => "user.del",
            InternalOp::UpgradeCredentials { .. } => "xenledger.upgrade_credentials",
            InternalOp::Reseal { .. } => "xenledger.secret_rekey",
            InternalOp::EventInject { .. } => "event.inject",
            InternalOp::TaskCreate(_) => "task.create",
            InternalOp::RegisterOperation { .. } => "task.register_operation",
            InternalOp::TaskComplete { .. } => "task.complete",
            InternalOp::TransferDone { .. } => "xenledger.transfer_done",
            InternalOp::TaskEdit { edit, .. } => edit.method(),
            InternalOp::TaskFailOrphans(_) => "task.fail_orphans",
            InternalOp::TaskGc(_) => "task.gc",
            InternalOp::Reconcile(_) => "xenledger.reconcile",
            InternalOp::Inventory(_) => "xenledger.inventory",
            InternalOp::Changes(_) => "xenledger.changes",
        }
    }

    /// The parameters its entry is logged with: never a password, a session ref or a secret value.
    pub fn logged_params(&self) -> Vec<Value> {
        let refs = |rs: &[String]| rs.iter().map(|r| Value::Ref(r.to_string())).collect();
        let secret = || Value::String("(secret)".into());
        match self {
            InternalOp::FirstStart(_)
            | InternalOp::Logout { .. }
            | InternalOp::UpgradeCredentials { .. }
            | InternalOp::Inventory(_)
            | InternalOp::Changes(_) => vec![],
            InternalOp::Login(l) => vec![Value::String(l.user.clone()), secret()],
            InternalOp::SessionGc(rs) | InternalOp::TaskFailOrphans(rs) | InternalOp::TaskGc(rs) => refs(rs),
            InternalOp::Reconcile(vms) => {
                vms.iter().flat_map(|(r, p)| [Value::Ref(r.to_string()), Value::String(p.clone())]).collect()
            }
            InternalOp::UserPut { why: UserChange::ChangePassword, .. } => vec![secret(), secret()],
            InternalOp::UserPut { name, .. } | InternalOp::UserDelete { name } => vec![Value::String(name.clone())],
            InternalOp::Reseal { key_id, .. } => vec![Value::Int(i64::from(*key_id))],
            InternalOp::EventInject { class, reference } => {
                vec![Value::String(class.clone()), Value::Ref(reference.clone())]
            }
            InternalOp::TaskCreate(t) => t.logged_params(),
            InternalOp::RegisterOperation { object, op, task, .. } => {
                vec![Value::Ref(object.clone()), Value::String(op.clone()), Value::Ref(task.clone())]
            }
            InternalOp::TaskComplete { task, .. } => vec![Value::Ref(task.clone())],
            InternalOp::TransferDone { task, written, .. } => {
                let mut params = vec![Value::Ref(task.clone())];
                params.extend(written.iter().map(|(vdi, _)| Value::Ref(vdi.clone())));
                params
            }
            InternalOp::TaskEdit { task, edit } => edit.logged_params(task),
        }
    }
}

/// The controller: executes one internal operation.
pub fn run(tx: &mut Tx, op: InternalOp) -> Result<Value, ApiError> {
    let void = Ok(Value::String(String::new()));
    match op {
        InternalOp::FirstStart(first) => first_start::run(tx, *first),
        InternalOp::Login(login) => Ok(sessions::login(tx, *login)),
        InternalOp::Logout { session, .. } => {
            destroy_existing(tx, "session", &[session]);
            void
        }
        InternalOp::SessionGc(rs) => {
            destroy_existing(tx, "session", &rs);
            void
        }
        InternalOp::UserPut { name, role, password_hash, .. } => {
            let local = name != crate::auth::ROOT;
            tx.push(Change::UserPut { name: name.clone(), role: role.clone(), password_hash });
            if local {
                super::explicit::subject::sync_user(tx, &name, &role);
            }
            void
        }
        InternalOp::UserDelete { name } => {
            tx.push(Change::UserDelete { name: name.clone() });
            super::explicit::subject::forget_user(tx, &name);
            void
        }
        InternalOp::UpgradeCredentials { sessions, sealed } => {
            destroy_existing(tx, "session", &sessions);
            set_secret_values(tx, sealed);
            void
        }
        InternalOp::Reseal { values, .. } => {
            set_secret_values(tx, values);
            void
        }
        InternalOp::EventInject { class, reference } => {
            let c = class_named(&class)?;
            if !tx.state.exists(c.id, &reference) {
                return Err(ApiError::handle_invalid(&class, &reference));
            }
            tx.push(Change::Touch { class, reference });
            void
        }
        InternalOp::TaskCreate(task) => Ok(Value::Ref(tasks::create(tx, *task))),
        InternalOp::RegisterOperation { class, object, op, task } => {
            Ok(Value::Int(tasks::register_operation(tx, class_named(class)?, &object, &op, &task) as i64))
        }
        InternalOp::TaskComplete { task, outcome, registered } => {
            if let Some((class, object)) = registered {
                tasks::unregister(tx, class_named(class)?, &object, &task);
            }
            tasks::finish(tx, &task, &outcome);
            void
        }
        InternalOp::TransferDone { task, owned, outcome, written } => {
            if let Some((vdi, allocated)) = written {
                if tx.state.exists(class_named("VDI")?.id, &vdi) {
                    tx.put(f::vdi::PHYSICAL_UTILISATION, &vdi, Value::Int(allocated));
                }
            }
            if owned {
                destroy_task(tx, &task);
            } else {
                tasks::finish(tx, &task, &outcome);
            }
            void
        }
        InternalOp::TaskEdit { task, edit } => {
            tasks::edit(tx, &task, edit)?;
            void
        }
        InternalOp::TaskFailOrphans(rs) => {
            for t in &rs {
                tasks::finish(tx, t, &Err(ApiError::internal("the server stopped while this task was pending")));
            }
            void
        }
        InternalOp::TaskGc(rs) => {
            destroy_existing(tx, "task", &rs);
            void
        }
        InternalOp::Inventory(inventory) => {
            inventory::run(tx, *inventory);
            void
        }
        InternalOp::Reconcile(vms) => {
            for (vm, reported) in vms {
                reconcile_vm(tx, &vm, &reported);
            }
            reconcile_hosts(tx);
            clear_stale_marks(tx);
            void
        }
        InternalOp::Changes(changes) => {
            for change in changes {
                tx.push(change);
            }
            void
        }
    }
}

fn class_named(name: &str) -> Result<&'static Class, ApiError> {
    schema().class(name).ok_or_else(|| ApiError::internal(format!("no class {name}")))
}

/// Destroys each of `refs` of `class` that still exists.
fn destroy_existing(tx: &mut Tx, class: &str, refs: &[String]) {
    let class = schema().class(class).expect("a datamodel class");
    for r in refs {
        if tx.state.exists(class.id, r) {
            destroy(tx, class, r);
        }
    }
}

fn set_secret_values(tx: &mut Tx, values: Vec<(String, String)>) {
    for (r, value) in values {
        tx.push(Change::Set {
            class: "secret".into(),
            reference: r,
            field: "value".into(),
            value: Value::String(value),
        });
    }
}

/// Creates a pending task (a synchronous long operation's own task).
pub fn create_task(tx: &mut Tx, task: NewTask) -> String {
    tasks::create(tx, task)
}

/// Destroys a task if it still exists.
pub fn destroy_task(tx: &mut Tx, task: &str) {
    destroy_existing(tx, "task", &[task.to_string()]);
}

/// Clears operations whose task no longer runs and takes the host's word for the power state.
/// Hosts whose `current_operations` name tasks that no longer run, or that are not live (shut
/// down by `host.shutdown`: the server running again is the host powered on).
pub fn hosts_need_reconcile(state: &crate::engine::State) -> bool {
    !stale_hosts(state).is_empty()
}

/// Operations marked by tasks that no longer run, on objects of every class but `VM` and `host`
/// (reconciled with the host's word above): `(class, object, task)`. A crash between the entry
/// that marks a long operation and the one that records its outcome leaves these.
pub fn stale_marks(state: &crate::engine::State) -> Vec<(&'static Class, String, String)> {
    let mut out = Vec::new();
    for class in &schema().classes {
        if class.name == "VM" || class.name == "host" {
            continue;
        }
        let Some(current) = class.field("current_operations") else { continue };
        for (r, o) in state.table(class.id).objects.iter() {
            for (t, _) in o.fields[current].as_map().unwrap_or(&[]) {
                let t = t.as_str().unwrap_or("");
                if !tasks::is_pending(state, t) {
                    out.push((class, r.to_string(), t.to_string()));
                }
            }
        }
    }
    out
}

fn clear_stale_marks(tx: &mut Tx) {
    for (class, object, task) in stale_marks(&tx.state) {
        let current = class.field("current_operations").expect("ops");
        let Some(o) = tx.state.get(class.id, &object) else { continue };
        let kept: Vec<_> = o.fields[current]
            .as_map()
            .unwrap_or(&[])
            .iter()
            .filter(|(t, _)| t.as_str() != Some(&task))
            .cloned()
            .collect();
        tx.set(&class.name, &object, "current_operations", Value::Map(kept));
        match class.name.as_str() {
            "VDI" => super::explicit::vdi::refresh(tx, &object),
            "SR" => super::explicit::sr::refresh(tx, &object),
            _ => {}
        }
    }
}

/// A host to reconcile: its ref, the operations still running, its metrics if it is not live.
struct StaleHost {
    host: String,
    /// The operations still running, when some that ended are listed.
    kept: Option<Vec<(Value, Value)>>,
    dead_metrics: Option<String>,
}

fn stale_hosts(state: &crate::engine::State) -> Vec<StaleHost> {
    let hosts = schema().class("host").expect("host");
    let metrics_class = schema().class("host_metrics").expect("host_metrics");
    let (current, metrics) =
        (hosts.field("current_operations").expect("ops"), hosts.field("metrics").expect("metrics"));
    let live = metrics_class.field("live").expect("live");
    let mut out = Vec::new();
    for (r, o) in state.table(hosts.id).objects.iter() {
        let ops = o.fields[current].as_map().unwrap_or(&[]).to_vec();
        let kept: Vec<_> =
            ops.iter().filter(|(t, _)| tasks::is_pending(state, t.as_str().unwrap_or(""))).cloned().collect();
        let m = o.fields[metrics].as_str().unwrap_or("");
        let dead = state.get(metrics_class.id, m).is_some_and(|mo| mo.fields[live].as_bool() == Some(false));
        if kept.len() != ops.len() || dead {
            let stale = kept.len() != ops.len();
            out.push(StaleHost {
                host: r.to_string(),
                kept: stale.then_some(kept),
                dead_metrics: dead.then(|| m.to_string()),
            });
        }
    }
    out
}

fn reconcile_hosts(tx: &mut Tx) {
    for StaleHost { host, kept, dead_metrics } in stale_hosts(&tx.state) {
        if let Some(kept) = kept {
            tx.put(f::host::CURRENT_OPERATIONS, &host, Value::Map(kept));
        }
        if let Some(m) = dead_metrics {
            tx.put(f::host_metrics::LIVE, &m, Value::Bool(true));
        }
    }
}

fn reconcile_vm(tx: &mut Tx, vm: &str, reported: &str) {
    let class = schema().class("VM").expect("VM");
    let Some(o) = tx.state.get(class.id, vm) else { return };
    let (current, power) =
        (class.field("current_operations").expect("ops"), class.field("power_state").expect("power"));
    let ops = o.fields[current].as_map().unwrap_or(&[]).to_vec();
    let logged = o.fields[power].as_str().unwrap_or("").to_string();
    let kept: Vec<_> =
        ops.iter().filter(|(t, _)| tasks::is_pending(&tx.state, t.as_str().unwrap_or(""))).cloned().collect();
    if kept.len() != ops.len() {
        tx.put(f::vm::CURRENT_OPERATIONS, vm, Value::Map(kept));
    }
    if logged != reported {
        if reported == "Halted" {
            super::explicit::vm::power::halt(tx, vm);
        } else {
            tx.put(f::vm::POWER_STATE, vm, Value::Enum(reported.into()));
        }
    }
    super::explicit::vm::ops::refresh(tx, vm);
}
