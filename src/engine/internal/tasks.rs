//! Task bookkeeping (docs/xenapi-semantics.md §f): creating a task, registering an operation in an
//! object's `current_operations`, recording an outcome, the `task.*` edits.

use super::super::implicit::{create_internal, destroy};
use super::super::state::State;
use super::super::tx::Tx;
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::field as f;
use crate::schema::{schema, Class};
use crate::value::Value;

/// A task to create: what `task.create` or an `Async.` call names it, and where it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTask {
    pub label: String,
    pub description: String,
    /// This host (the task's `resident_on`).
    pub host: String,
    /// `http:<k>` entries of its other_config (an `Async.` call's `X-Http-Other-Config-*` headers).
    pub other_config: Vec<(String, String)>,
    /// The parent task (`subtask-of` header); ignored if it does not exist.
    pub subtask_of: Option<String>,
    /// Logged with the description (`task.create`) or without (an `Async.` call's task).
    pub explicit: bool,
}

impl NewTask {
    pub(super) fn logged_params(&self) -> Vec<Value> {
        let mut params = vec![Value::String(self.label.clone())];
        if self.explicit {
            params.push(Value::String(self.description.clone()));
        }
        params
    }
}

/// The outcome of [`register_operation`], as its job answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Turn {
    /// The operation is registered on the object.
    Registered = 0,
    /// Another operation holds the object: wait for it and try again.
    Busy = 1,
    /// The task was cancelled (or finished) while waiting.
    Cancelled = 2,
    /// The object is gone; the call itself will say so.
    NoObject = 3,
}

impl Turn {
    pub fn from_code(code: i64) -> Turn {
        match code {
            0 => Turn::Registered,
            2 => Turn::Cancelled,
            3 => Turn::NoObject,
            _ => Turn::Busy,
        }
    }
}

/// One of the `task.*` edits.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskEdit {
    /// Cancels a pending task; `cancellable` is false for an `Async.` call already running, which
    /// simply finishes, as xapi's uncancellable operations do.
    Cancel {
        cancellable: bool,
    },
    Destroy,
    Set {
        field: &'static str,
        value: Value,
    },
}

impl TaskEdit {
    pub(super) fn method(&self) -> &'static str {
        match self {
            TaskEdit::Cancel { .. } => "task.cancel",
            TaskEdit::Destroy => "task.destroy",
            TaskEdit::Set { field: "status", .. } => "task.set_status",
            TaskEdit::Set { field: "progress", .. } => "task.set_progress",
            TaskEdit::Set { field: "result", .. } => "task.set_result",
            TaskEdit::Set { field: "error_info", .. } => "task.set_error_info",
            TaskEdit::Set { .. } => "task.set",
        }
    }

    pub(super) fn logged_params(&self, task: &str) -> Vec<Value> {
        let mut params = vec![Value::Ref(task.to_string())];
        if let TaskEdit::Set { value, .. } = self {
            params.push(value.clone());
        }
        params
    }
}

/// Whether `task` exists and is still pending.
pub fn is_pending(state: &State, task: &str) -> bool {
    let class = schema().class("task").expect("task class");
    let status = class.field("status").expect("status");
    state.get(class.id, task).is_some_and(|o| o.fields[status] == Value::Enum("pending".into()))
}

pub(super) fn create(tx: &mut Tx, t: NewTask) -> String {
    let now = Value::DateTime(tx.ctx.now_secs());
    let task = create_internal(
        tx,
        "task",
        vec![
            ("name_label", Value::String(t.label)),
            ("name_description", Value::String(t.description)),
            ("created", now),
            ("status", Value::Enum("pending".into())),
            ("resident_on", Value::Ref(t.host)),
            ("progress", Value::Float(0.0)),
            ("type", Value::String("<none/>".into())),
            ("backtrace", Value::String("()".into())),
        ],
    );
    if !t.other_config.is_empty() {
        let entries =
            t.other_config.into_iter().map(|(k, v)| (Value::String(format!("http:{k}")), Value::String(v))).collect();
        tx.put(f::task::OTHER_CONFIG, &task, Value::Map(entries));
    }
    if let Some(parent) = t.subtask_of {
        let tasks = schema().class("task").expect("task class");
        if tx.state.exists(tasks.id, &parent) {
            tx.put(f::task::SUBTASK_OF, &task, Value::Ref(parent));
        }
    }
    task
}

/// Completes a task with the outcome of its call. A task destroyed or cancelled meanwhile keeps
/// its first outcome.
pub fn finish(tx: &mut Tx, task: &str, outcome: &Result<Value, ApiError>) {
    if !is_pending(&tx.state, task) {
        return;
    }
    let now = Value::DateTime(tx.ctx.now_secs());
    tx.put(f::task::PROGRESS, task, Value::Float(1.0));
    tx.put(f::task::FINISHED, task, now);
    match outcome {
        Ok(v) => {
            let mut fragment = String::new();
            crate::wire::xmlrpc::encode_value(v, &mut fragment);
            tx.put(f::task::RESULT, task, Value::String(fragment));
            tx.put(f::task::STATUS, task, Value::Enum("success".into()));
        }
        Err(e) => {
            let cancelled = e.code == "TASK_CANCELLED";
            tx.put(f::task::ERROR_INFO, task, Value::Set(e.to_wire().into_iter().map(Value::String).collect()));
            tx.put(f::task::STATUS, task, Value::Enum(if cancelled { "cancelled" } else { "failure" }.into()));
        }
    }
    tx.put(f::task::ALLOWED_OPERATIONS, task, Value::Set(Vec::new()));
}

pub(super) fn register_operation(tx: &mut Tx, class: &Class, object: &str, op: &str, task: &str) -> Turn {
    if !is_pending(&tx.state, task) {
        return Turn::Cancelled;
    }
    let current = class.field("current_operations").expect("a class with operations");
    let Some(o) = tx.state.get(class.id, object) else { return Turn::NoObject };
    if !o.fields[current].as_map().is_some_and(<[_]>::is_empty) {
        return Turn::Busy;
    }
    let entry = (Value::String(task.to_string()), Value::Enum(op.to_string()));
    tx.set(&class.name, object, "current_operations", Value::Map(vec![entry]));
    Turn::Registered
}

/// Removes a task's entry from an object's `current_operations`, if both still exist.
pub(super) fn unregister(tx: &mut Tx, class: &Class, object: &str, task: &str) {
    let Some(field) = class.field("current_operations") else { return };
    let Some(o) = tx.state.get(class.id, object) else { return };
    let ops = o.fields[field].as_map().map(<[_]>::to_vec).unwrap_or_default();
    if ops.iter().any(|(k, _)| k.as_str() == Some(task)) {
        let kept = ops.into_iter().filter(|(k, _)| k.as_str() != Some(task)).collect();
        tx.set(&class.name, object, "current_operations", Value::Map(kept));
    }
}

pub(super) fn edit(tx: &mut Tx, task: &str, edit: TaskEdit) -> Result<(), ApiError> {
    let class = schema().class("task").expect("task class");
    if !tx.state.exists(class.id, task) {
        return Err(ApiError::handle_invalid("task", task));
    }
    match edit {
        TaskEdit::Cancel { cancellable } => {
            if cancellable && is_pending(&tx.state, task) {
                finish(tx, task, &Err(ApiError::new(ErrorCode::TaskCancelled, [task])));
            }
        }
        TaskEdit::Destroy => destroy(tx, class, task),
        TaskEdit::Set { field, value } => tx.set("task", task, field, value),
    }
    Ok(())
}
