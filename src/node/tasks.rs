//! Tasks: `Async.` calls and the `task.*` messages (docs/xenapi-semantics.md §f).
//!
//! An `Async.` call logs a pending task and answers its ref at once; the call then runs like a
//! synchronous one, and its outcome is logged on the task: `success` with `result` as an XML-RPC
//! fragment (`<value>…</value>`, also for JSON-RPC callers, as xapi does), or `failure` with
//! `error_info`. Tasks still pending when the server stopped are failed on the next start.

use std::sync::Arc;
use std::time::Duration;

use super::{Caller, Node};
use crate::auth;
use crate::clock;
use crate::engine::implicit::create_internal;
use crate::engine::{State, Tx};
use crate::entry::Actor;
use crate::error::ApiError;
use crate::ledger::{Job, Ledger};
use crate::schema::{schema, Class, Message, Ty};
use crate::value::Value;

/// Whether `task` exists and is still pending.
fn is_pending(state: &State, task: &str) -> bool {
    let class = schema().class("task").expect("task class");
    let status = class.field("status").expect("status");
    state.get(class.id, task).is_some_and(|o| o.fields[status] == Value::Enum("pending".into()))
}

fn new_task(tx: &mut Tx, host: &str, label: &str, description: &str) -> String {
    let now = Value::DateTime(tx.ctx.now_secs());
    create_internal(
        tx,
        "task",
        vec![
            ("name_label", Value::String(label.to_string())),
            ("name_description", Value::String(description.to_string())),
            ("created", now),
            ("status", Value::Enum("pending".into())),
            ("resident_on", Value::Ref(host.to_string())),
            ("progress", Value::Float(0.0)),
            ("type", Value::String("<none/>".into())),
            ("backtrace", Value::String("()".into())),
        ],
    )
}

/// Completes a task with the outcome of its call.
fn finish(tx: &mut Tx, task: &str, outcome: &Result<Value, ApiError>) {
    if !is_pending(&tx.state, task) {
        return; // destroyed or cancelled meanwhile: the first outcome stands
    }
    let now = Value::DateTime(tx.ctx.now_secs());
    tx.set("task", task, "progress", Value::Float(1.0));
    tx.set("task", task, "finished", now);
    match outcome {
        Ok(v) => {
            let mut fragment = String::new();
            crate::wire::xmlrpc::encode_value(v, &mut fragment);
            tx.set("task", task, "result", Value::String(fragment));
            tx.set("task", task, "status", Value::Enum("success".into()));
        }
        Err(e) => {
            let cancelled = e.code == "TASK_CANCELLED";
            tx.set("task", task, "error_info", Value::Set(e.to_wire().into_iter().map(Value::String).collect()));
            tx.set("task", task, "status", Value::Enum(if cancelled { "cancelled" } else { "failure" }.into()));
        }
    }
    tx.set("task", task, "allowed_operations", Value::Set(Vec::new()));
}

/// Longest an operation waits for a conflicting one on the same object (xapi's
/// `Repeat_with_uniform_backoff.standard`: 2 hours). The wait is cancellable.
pub const OPERATION_WAIT_MAX: Duration = Duration::from_secs(2 * 3600);

/// The object and operation an `Async.` call registers in `current_operations`, when its class
/// tracks operations and the message is one of them (docs/xenapi-semantics.md §f.6).
fn operation_of(class: &Class, msg: &Message, args: &[Value]) -> Option<(String, String)> {
    let field = class.field("current_operations")?;
    let Ty::Map(_, op_ty) = &class.fields[field].ty else { return None };
    let Ty::Enum(ops) = op_ty.as_ref() else { return None };
    if !schema().enums.get(ops)?.contains(&msg.name) {
        return None;
    }
    let first = msg.args().first()?;
    if first.ty != Ty::Ref(class.name.clone()) {
        return None;
    }
    Some((args.first()?.as_str()?.to_string(), msg.name.clone()))
}

const TURN_REGISTERED: i64 = 0;
const TURN_BUSY: i64 = 1;
const TURN_CANCELLED: i64 = 2;
const TURN_NO_OBJECT: i64 = 3;

/// What waiting for the object's other operations ended with.
enum Turn {
    /// Our operation is registered on the object.
    Registered,
    /// The object is gone; the call itself will say so.
    NoObject,
    /// The task was cancelled (or finished) while waiting.
    Cancelled,
}

/// Waits until no other operation runs on the object, then registers ours, atomically in the
/// writer. Parks on the committed-position watch; a `task.cancel` ends the wait.
async fn take_turn(
    node: &Arc<Node>,
    caller: &Caller,
    class: &'static Class,
    object: &str,
    op: &str,
    task: &str,
) -> Result<Turn, ApiError> {
    let clock = node.ledger.clock().clone();
    let deadline_us = clock::deadline_us(&*clock, OPERATION_WAIT_MAX);
    let current = class.field("current_operations").expect("ops");
    let mut committed = node.ledger.committed();
    loop {
        committed.borrow_and_update();
        let state = node.ledger.snapshot();
        if !is_pending(&state, task) {
            return Ok(Turn::Cancelled);
        }
        let Some(o) = state.get(class.id, object) else { return Ok(Turn::NoObject) };
        if o.fields[current].as_map().is_some_and(<[_]>::is_empty) {
            let (object, op, task) = (object.to_string(), op.to_string(), task.to_string());
            let job = Job {
                actor: caller.actor(),
                method: "task.register_operation".into(),
                params: vec![Value::Ref(object.clone()), Value::String(op.clone()), Value::Ref(task.clone())],
                work: Box::new(move |tx| {
                    if !is_pending(&tx.state, &task) {
                        return Ok(Value::Int(TURN_CANCELLED));
                    }
                    let Some(o) = tx.state.get(class.id, &object) else { return Ok(Value::Int(TURN_NO_OBJECT)) };
                    if !o.fields[current].as_map().is_some_and(<[_]>::is_empty) {
                        return Ok(Value::Int(TURN_BUSY)); // someone was quicker: wait again
                    }
                    let entry = (Value::String(task), Value::Enum(op));
                    tx.set(&class.name, &object, "current_operations", Value::Map(vec![entry]));
                    Ok(Value::Int(TURN_REGISTERED))
                }),
            };
            match node.ledger.call(job).await?.0 {
                Value::Int(TURN_REGISTERED) => return Ok(Turn::Registered),
                Value::Int(TURN_CANCELLED) => return Ok(Turn::Cancelled),
                Value::Int(TURN_NO_OBJECT) => return Ok(Turn::NoObject),
                _ => continue,
            }
        }
        if clock.now_us() >= deadline_us {
            let ops = o.fields[current]
                .as_map()
                .unwrap_or(&[])
                .iter()
                .map(|(k, v)| (db_text(k), db_text(v)))
                .collect::<Vec<_>>();
            return Err(ApiError::new(
                "OTHER_OPERATION_IN_PROGRESS",
                [
                    class.name.clone(),
                    object.to_string(),
                    ops.iter().map(|o| o.1.clone()).collect::<Vec<_>>().join(","),
                    ops.iter().map(|o| o.0.clone()).collect::<Vec<_>>().join(","),
                ],
            ));
        }
        clock::until(&*clock, deadline_us, committed.changed()).await;
    }
}

fn db_text(v: &Value) -> String {
    v.as_str().map(String::from).unwrap_or_default()
}

/// Starts an `Async.` call: logs the pending task, runs the call in the background, answers the task ref.
pub async fn spawn_async(
    node: &Arc<Node>,
    caller: Caller,
    class: &'static Class,
    msg: &'static Message,
    args: Vec<Value>,
    hints: &super::TaskHints,
) -> Result<Value, ApiError> {
    let label = format!("Async.{}", msg.wire_name);
    let host = node.host.clone();
    let hints = hints.clone();
    let job = Job {
        actor: caller.actor(),
        method: "task.create".into(),
        params: vec![Value::String(label.clone())],
        work: Box::new(move |tx| {
            let task = new_task(tx, &host, &label, "");
            if !hints.other_config.is_empty() {
                let entries = hints
                    .other_config
                    .iter()
                    .map(|(k, v)| (Value::String(format!("http:{k}")), Value::String(v.clone())))
                    .collect();
                tx.set("task", &task, "other_config", Value::Map(entries));
            }
            if let Some(parent) = hints.subtask_of {
                // A parent that does not exist is ignored, as a stale header would be.
                let tasks = schema().class("task").expect("task class");
                if tx.state.exists(tasks.id, &parent) {
                    tx.set("task", &task, "subtask_of", Value::Ref(parent));
                }
            }
            Ok(Value::Ref(task))
        }),
    };
    let (task, _) = node.ledger.call(job).await?;
    let task_ref = task.as_str().unwrap_or_default().to_string();
    node.task_owners.lock().expect("task owners lock").insert(task_ref.clone(), caller.user.clone());
    let node2 = node.clone();
    let t = task_ref.clone();
    node.running_tasks.lock().expect("running tasks lock").insert(task_ref.clone());
    tokio::spawn(async move {
        let operation = operation_of(class, msg, &args);
        let mut registered = None;
        let turn = match &operation {
            Some((object, op)) => {
                node2.waiting_tasks.lock().expect("waiting tasks lock").insert(t.clone());
                let turn = take_turn(&node2, &caller, class, object, op, &t).await;
                node2.waiting_tasks.lock().expect("waiting tasks lock").remove(&t);
                Some(turn)
            }
            None => None,
        };
        let outcome = match (&operation, turn) {
            (Some((object, _)), Some(turn)) => match turn {
                Ok(Turn::Registered) => {
                    registered = Some(object.clone());
                    Box::pin(node2.dispatch(&caller, class, msg, args)).await
                }
                Ok(Turn::NoObject) => Box::pin(node2.dispatch(&caller, class, msg, args)).await,
                Ok(Turn::Cancelled) => Err(ApiError::new("TASK_CANCELLED", [t.as_str()])),
                Err(e) => Err(e),
            },
            _ => Box::pin(node2.dispatch(&caller, class, msg, args)).await,
        };
        let done = t.clone();
        let job = Job {
            actor: caller.actor(),
            method: "task.complete".into(),
            params: vec![Value::Ref(t.clone())],
            work: Box::new(move |tx| {
                if let Some(object) = registered {
                    unregister(tx, class, &object, &done);
                }
                finish(tx, &done, &outcome);
                Ok(Value::String(String::new()))
            }),
        };
        if let Err(e) = node2.ledger.call(job).await {
            tracing::error!("recording the outcome of task failed: {e}");
        }
        node2.running_tasks.lock().expect("running tasks lock").remove(&t);
    });
    Ok(task)
}

/// Removes a task's entry from an object's `current_operations`, if both still exist.
fn unregister(tx: &mut Tx, class: &Class, object: &str, task: &str) {
    let Some(field) = class.field("current_operations") else { return };
    let Some(o) = tx.state.get(class.id, object) else { return };
    let ops = o.fields[field].as_map().map(<[_]>::to_vec).unwrap_or_default();
    if ops.iter().any(|(k, _)| k.as_str() == Some(task)) {
        let kept = ops.into_iter().filter(|(k, _)| k.as_str() != Some(task)).collect();
        tx.set(&class.name, object, "current_operations", Value::Map(kept));
    }
}

/// `task.create(label, description)`: a task owned by its creator.
pub async fn create(node: &Arc<Node>, caller: &Caller, args: &[Value]) -> Result<Value, ApiError> {
    let host = node.host.clone();
    let label = args[0].as_str().unwrap_or("").to_string();
    let description = args[1].as_str().unwrap_or("").to_string();
    let work: crate::ledger::Work = Box::new(move |tx| Ok(Value::Ref(new_task(tx, &host, &label, &description))));
    let job = Job { actor: caller.actor(), method: "task.create".into(), params: args.to_vec(), work };
    let result = node.ledger.call(job).await.map(|(v, _)| v);
    if let Ok(Value::Ref(task)) = &result {
        node.task_owners.lock().expect("task owners lock").insert(task.clone(), caller.user.clone());
    }
    result
}

/// `task.cancel`, `task.destroy` and `task.set_*`: the owner (or pool-operator and above) changes
/// one task.
pub async fn change(node: &Arc<Node>, caller: &Caller, message: &str, args: &[Value]) -> Result<Value, ApiError> {
    let class = schema().class("task").expect("task class");
    let task = args[0].as_str().unwrap_or("").to_string();
    if !node.ledger.snapshot().exists(class.id, &task) {
        return Err(ApiError::handle_invalid("task", &task));
    }
    check_owner(node, caller, &task)?;
    let value = args.get(1).cloned().unwrap_or(Value::Null);
    // A running Async operation cannot be cancelled (it simply finishes, as xapi's uncancellable
    // operations do); one waiting for its turn, or a client's task, can.
    let cancellable = !node.running_tasks.lock().expect("running tasks lock").contains(&task)
        || node.waiting_tasks.lock().expect("waiting tasks lock").contains(&task);
    let method = format!("task.{message}");
    let message = message.to_string();
    let work: crate::ledger::Work = Box::new(move |tx| {
        let class = schema().class("task").expect("task class");
        if !tx.state.exists(class.id, &task) {
            return Err(ApiError::handle_invalid("task", &task));
        }
        match message.as_str() {
            "cancel" => {
                if is_pending(&tx.state, &task) && cancellable {
                    finish(tx, &task, &Err(ApiError::new("TASK_CANCELLED", [task.as_str()])));
                }
            }
            "destroy" => crate::engine::implicit::destroy(tx, class, &task),
            "set_status" => tx.set("task", &task, "status", value),
            "set_progress" => tx.set("task", &task, "progress", value),
            "set_result" => tx.set("task", &task, "result", value),
            "set_error_info" => tx.set("task", &task, "error_info", value),
            other => return Err(ApiError::internal(format!("task.{other} is not a task change"))),
        }
        Ok(Value::String(String::new()))
    });
    let job = Job { actor: caller.actor(), method, params: args.to_vec(), work };
    node.ledger.call(job).await.map(|(v, _)| v)
}

/// Only a task's owner, or a pool-operator and above (permission `task.destroy/any`), may cancel
/// or change it (docs/xenapi-semantics.md §f.4). Tasks of an earlier run have no known owner.
fn check_owner(node: &Node, caller: &Caller, task: &str) -> Result<(), ApiError> {
    let any_task = auth::roles_at_least("pool-operator");
    if caller.superuser || any_task.contains(&caller.role.as_str()) {
        return Ok(());
    }
    let owner = node.task_owners.lock().expect("task owners lock").get(task).cloned();
    if owner.as_deref() == Some(caller.user.as_str()) {
        return Ok(());
    }
    Err(super::permission_denied("task.destroy/any", &any_task))
}

/// On start: tasks left pending by a previous run are failed with a clear reason.
pub fn fail_orphans(ledger: &Ledger) -> Result<(), ApiError> {
    let class = schema().class("task").expect("task class");
    let snapshot = ledger.snapshot();
    let pending: Vec<String> =
        snapshot.table(class.id).objects.keys().filter(|r| is_pending(&snapshot, r)).cloned().collect();
    if pending.is_empty() {
        return Ok(());
    }
    let job = Job {
        actor: Actor { session: String::new(), user: "xenledger".into(), originator: "start-up".into() },
        method: "task.fail_orphans".into(),
        params: pending.iter().map(|r| Value::Ref(r.clone())).collect(),
        work: Box::new(move |tx| {
            for t in &pending {
                finish(tx, t, &Err(ApiError::internal("the server stopped while this task was pending")));
            }
            Ok(Value::String(String::new()))
        }),
    };
    ledger.call_blocking(job).map(|_| ())
}

/// Completed tasks are kept this long after finishing (xapi_globs.ml `completed_task_timeout`).
pub const COMPLETED_TASK_TIMEOUT_SECS: i64 = 3900;
/// Pending tasks older than this are deleted (xapi_globs.ml `pending_task_timeout`).
pub const PENDING_TASK_TIMEOUT_SECS: i64 = 86_400;
/// Beyond this many tasks the oldest completed ones go (xapi_globs.ml `max_tasks`).
pub const TASKS_MAX: usize = 200;

/// Tasks the garbage collector removes now (xapi db_gc_util.ml `timeout_tasks`).
pub fn expired_tasks(state: &crate::engine::State, now: i64) -> Vec<String> {
    let class = schema().class("task").expect("task class");
    let f = |n: &str| class.field(n).expect("task field");
    let (status, finished, created) = (f("status"), f("finished"), f("created"));
    let time = |v: &Value| if let Value::DateTime(t) = v { *t } else { 0 };
    let mut out = Vec::new();
    let mut completed = Vec::new();
    let mut kept = 0usize;
    for (r, o) in state.table(class.id).objects.iter() {
        let pending = o.fields[status] == Value::Enum("pending".into());
        if pending {
            if now - time(&o.fields[created]) > PENDING_TASK_TIMEOUT_SECS {
                out.push(r.clone());
            } else {
                kept += 1;
            }
        } else if now - time(&o.fields[finished]) > COMPLETED_TASK_TIMEOUT_SECS {
            out.push(r.clone());
        } else {
            completed.push((time(&o.fields[finished]), r.clone()));
        }
    }
    let total = kept + completed.len();
    if total > TASKS_MAX {
        completed.sort();
        out.extend(completed.into_iter().take(total - TASKS_MAX).map(|(_, r)| r));
    }
    out
}

/// Deletes expired tasks (called periodically by the server).
pub async fn collect_tasks(node: &Arc<Node>) -> Result<usize, ApiError> {
    let expired = expired_tasks(&node.ledger.snapshot(), node.ledger.clock().now_secs());
    if expired.is_empty() {
        return Ok(0);
    }
    let count = expired.len();
    let job = Job {
        actor: Actor { session: String::new(), user: "xenledger".into(), originator: "task-gc".into() },
        method: "task.gc".into(),
        params: expired.iter().map(|r| Value::Ref(r.clone())).collect(),
        work: Box::new(move |tx| {
            let class = schema().class("task").expect("task class");
            for r in &expired {
                if tx.state.exists(class.id, r) {
                    crate::engine::implicit::destroy(tx, class, r);
                }
            }
            Ok(Value::String(String::new()))
        }),
    };
    node.ledger.call(job).await.map(|_| count)
}
