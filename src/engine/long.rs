//! The two logged halves of a long operation (ARCHITECTURE.md, "Where new code goes"): the mark
//! (xapi's check, `current_operations[task] = op`, `allowed_operations` recomputed) and the outcome
//! (the row's `finish` on success; on failure only the mark is cleared).

use super::effect::{Done, Effect};
use super::explicit::vm::ops;
use super::internal::{finish_task, task_is_pending, NewTask};
use super::tx::Tx;
use super::LongCall;
use crate::error::{ApiError, ErrorCode};
use crate::value::Value;

pub(super) fn mark(tx: &mut Tx, call: &LongCall, task: Option<String>) -> Result<Value, ApiError> {
    let (class, object) = call.target();
    (call.long.check)(&tx.state, &call.call(), call.long.op)?;
    let task = match task {
        Some(t) => {
            if !task_is_pending(&tx.state, &t) {
                return Err(ApiError::new(ErrorCode::TaskCancelled, [t.as_str()]));
            }
            t
        }
        None => {
            let host = super::explicit::vm::this_host(&tx.state);
            let new = NewTask {
                label: call.msg.wire_name.clone(),
                description: String::new(),
                host,
                other_config: Vec::new(),
                subtask_of: None,
                explicit: false,
            };
            super::internal::create_task(tx, new)
        }
    };
    if object.is_empty() {
        // An operation that makes its object (`SR.create`) marks nothing.
        return Ok(Value::Ref(task));
    }
    let field = class.field("current_operations").expect("a class with operations");
    let mut ops_now = tx.state.get(class.id, &object).map(|o| o.fields[field].clone()).unwrap_or(Value::Null);
    if let Value::Map(entries) = &mut ops_now {
        entries.push((Value::String(task.clone()), Value::Enum(call.long.op.into())));
    } else {
        ops_now = Value::Map(vec![(Value::String(task.clone()), Value::Enum(call.long.op.into()))]);
    }
    tx.set(&class.name, &object, "current_operations", ops_now);
    refresh(tx, call);
    Ok(Value::Ref(task))
}

pub(super) fn finish(
    tx: &mut Tx,
    call: &LongCall,
    task: &str,
    owned: bool,
    effect: &Effect,
    done: Result<Done, ApiError>,
) -> Result<Value, ApiError> {
    let result = match done {
        Ok(done) => {
            let savepoint = tx.savepoint();
            let result = (call.long.finish)(tx, &call.call(), task, effect, &done);
            match &result {
                Err(_) => tx.rollback(savepoint),
                Ok(_) if call.class.name == "VM" => super::explicit::vm::alerts::after(tx, &call.call(), call.long.op),
                Ok(_) => {}
            }
            result
        }
        Err(e) => Err(e),
    };
    let (class, object) = call.target();
    let field = class.field("current_operations").expect("a class with operations");
    if let Some(o) = tx.state.get(class.id, &object) {
        let kept: Vec<(Value, Value)> =
            o.fields[field].as_map().unwrap_or(&[]).iter().filter(|(k, _)| k.as_str() != Some(task)).cloned().collect();
        tx.set(&class.name, &object, "current_operations", Value::Map(kept));
        refresh(tx, call);
    }
    if owned {
        super::internal::destroy_task(tx, task);
    } else {
        finish_task(tx, task, &result);
    }
    Ok(outcome_value(result))
}

/// Recomputes the marked object's `allowed_operations` where its class has rules here.
fn refresh(tx: &mut Tx, call: &LongCall) {
    let (class, object) = call.target();
    match class.name.as_str() {
        "VM" => ops::refresh(tx, &object),
        "VDI" => super::explicit::vdi::refresh(tx, &object),
        "SR" => super::explicit::sr::refresh(tx, &object),
        // A new VM made by the operation (clone, copy) has its own list already.
        _ => {}
    }
}

/// The outcome as the job answers it: `{"ok": value}` or `{"error": [code, params…]}`, so that
/// the entry is logged even when the operation failed.
fn outcome_value(result: Result<Value, ApiError>) -> Value {
    match result {
        Ok(v) => Value::Record(vec![("ok".into(), v)]),
        Err(e) => {
            Value::Record(vec![("error".into(), Value::Set(e.to_wire().into_iter().map(Value::String).collect()))])
        }
    }
}

/// The operation's answer, from what [`finish`] returned.
pub fn outcome_of(value: Value) -> Result<Value, ApiError> {
    let Value::Record(mut members) = value else { return Err(ApiError::internal("an operation without an outcome")) };
    match members.pop() {
        Some((k, v)) if k == "ok" => Ok(v),
        Some((_, Value::Set(wire))) => {
            let mut wire = wire.into_iter().map(|v| v.as_str().unwrap_or("").to_string());
            let code = wire.next().unwrap_or_default();
            Err(ApiError::from_wire(code, wire.collect()))
        }
        _ => Err(ApiError::internal("an operation without an outcome")),
    }
}
