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
use crate::engine::internal::{task_is_pending as is_pending, InternalOp, NewTask, TaskEdit, Turn};
use crate::entry::Actor;
use crate::error::{ApiError, ErrorCode};
use crate::ledger::{Job, Ledger};
use crate::schema::{schema, Class, Message, Ty};
use crate::value::Value;

/// Longest an operation waits for a conflicting one on the same object (xapi's
/// `Repeat_with_uniform_backoff.standard`: 2 hours). The wait is cancellable.
pub const OPERATION_WAIT_MAX: Duration = Duration::from_secs(2 * 3600);

/// The object and operation an `Async.` call registers in `current_operations`, when its class
/// tracks operations and the message is one of them (docs/xenapi-semantics.md §f.6).
fn operation_of(class: &Class, msg: &Message, args: &[Value]) -> Option<(String, String)> {
    if let crate::engine::Route::Long(_) | crate::engine::Route::Write(Some(_)) = crate::engine::route(class, msg) {
        // A long operation marks itself, refusing a conflicting one as xapi does; an explicit
        // write checks the object's operations itself.
        return None;
    }
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
            let op = InternalOp::RegisterOperation {
                class: class.name.as_str(),
                object: object.to_string(),
                op: op.to_string(),
                task: task.to_string(),
            };
            match node.ledger.call(Job::internal(caller.actor(), op)).await?.0 {
                Value::Int(code) if Turn::from_code(code) != Turn::Busy => return Ok(Turn::from_code(code)),
                _ => continue, // someone was quicker: wait again
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
                ErrorCode::OtherOperationInProgress,
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
    let new_task = NewTask {
        label: format!("Async.{}", msg.wire_name),
        description: String::new(),
        host: node.host.clone(),
        other_config: hints.other_config.clone(),
        subtask_of: hints.subtask_of.clone(),
        explicit: false,
    };
    let job = Job::internal(caller.actor(), InternalOp::TaskCreate(Box::new(new_task)));
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
                Ok(Turn::Cancelled | Turn::Busy) => Err(ApiError::new(ErrorCode::TaskCancelled, [t.as_str()])),
                Err(e) => Err(e),
            },
            _ => Box::pin(node2.dispatch_in(&caller, class, msg, args, Some(t.clone()))).await,
        };
        let registered = registered.map(|object| (class.name.as_str(), object));
        let op = InternalOp::TaskComplete { task: t.clone(), outcome: Box::new(outcome), registered };
        let job = Job::internal(caller.actor(), op);
        if let Err(e) = node2.ledger.call(job).await {
            tracing::error!("recording the outcome of task failed: {e}");
        }
        node2.running_tasks.lock().expect("running tasks lock").remove(&t);
    });
    Ok(task)
}

/// `task.create(label, description)`: a task owned by its creator.
pub async fn create(node: &Arc<Node>, caller: &Caller, args: &[Value]) -> Result<Value, ApiError> {
    let new_task = NewTask {
        label: args[0].as_str().unwrap_or("").to_string(),
        description: args[1].as_str().unwrap_or("").to_string(),
        host: node.host.clone(),
        other_config: Vec::new(),
        subtask_of: None,
        explicit: true,
    };
    let job = Job::internal(caller.actor(), InternalOp::TaskCreate(Box::new(new_task)));
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
    let edit = match message {
        "cancel" => {
            // A long operation stops before its effect and records `TASK_CANCELLED` itself.
            // Another running Async call cannot be cancelled (it simply finishes, as xapi's
            // uncancellable operations do); one waiting for its turn, or a client's task, can.
            let waiting = node.waiting_tasks.lock().expect("waiting tasks lock").contains(&task);
            if !waiting && node.long_running.lock().expect("long operations lock").contains(&task) {
                node.cancels.lock().expect("cancels lock").insert(task.clone());
            }
            let cancellable = !node.running_tasks.lock().expect("running tasks lock").contains(&task) || waiting;
            TaskEdit::Cancel { cancellable }
        }
        "destroy" => TaskEdit::Destroy,
        "set_status" => TaskEdit::Set { field: "status", value },
        "set_progress" => TaskEdit::Set { field: "progress", value },
        "set_result" => TaskEdit::Set { field: "result", value },
        "set_error_info" => TaskEdit::Set { field: "error_info", value },
        other => return Err(ApiError::internal(format!("task.{other} is not a task change"))),
    };
    let job = Job::internal(caller.actor(), InternalOp::TaskEdit { task, edit });
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
        snapshot.table(class.id).objects.keys().filter(|r| is_pending(&snapshot, r)).map(|r| r.to_string()).collect();
    if pending.is_empty() {
        return Ok(());
    }
    let job = Job::internal(Actor::server("start-up"), InternalOp::TaskFailOrphans(pending));
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
                out.push(r.to_string());
            } else {
                kept += 1;
            }
        } else if now - time(&o.fields[finished]) > COMPLETED_TASK_TIMEOUT_SECS {
            out.push(r.to_string());
        } else {
            completed.push((time(&o.fields[finished]), r.to_string()));
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
    let job = Job::internal(Actor::server("task-gc"), InternalOp::TaskGc(expired));
    node.ledger.call(job).await.map(|_| count)
}
