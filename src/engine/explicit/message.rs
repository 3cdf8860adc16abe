//! `message` (alerts). Its lookups are explicit in the datamodel but behave like the implicit
//! ones, except that `get_all_records_where` skips rows naming unknown fields, as xapi_message.ml
//! does; `get_since` and `get` filter by time (and class and object).

use super::super::implicit::{create_internal, destroy as destroy_object, read_kind};
use super::super::state::{Object, State};
use super::super::tx::Tx;
use super::super::{db_string, where_expr};
use super::Call;
use crate::error::ApiError;
use crate::schema::{Class, Kind};
use crate::value::Value;

pub fn get_all(state: &State, call: &Call) -> Result<Value, ApiError> {
    read_kind(state, call.class, Kind::GetAll, &call.msg.wire_name, call.args)
}

pub fn get_all_records(state: &State, call: &Call) -> Result<Value, ApiError> {
    read_kind(state, call.class, Kind::GetAllRecords, &call.msg.wire_name, call.args)
}

pub fn get_record(state: &State, call: &Call) -> Result<Value, ApiError> {
    read_kind(state, call.class, Kind::GetRecord, &call.msg.wire_name, call.args)
}

pub fn get_by_uuid(state: &State, call: &Call) -> Result<Value, ApiError> {
    read_kind(state, call.class, Kind::GetByUuid, &call.msg.wire_name, call.args)
}

/// `message.get_since(since)`: messages newer than `since`.
pub fn get_since(state: &State, call: &Call) -> Result<Value, ApiError> {
    let t = since(&call.args[0]);
    filtered(state, call.class, |o| timestamp(call.class, o) > t)
}

/// `message.get(cls, obj_uuid, since)`: the messages about one object newer than `since`.
pub fn get(state: &State, call: &Call) -> Result<Value, ApiError> {
    let (cls, obj_uuid, t) = (call.str(0), call.str(1), since(&call.args[2]));
    let class = call.class;
    filtered(state, class, |o| {
        field(class, o, "cls").as_str() == Some(cls)
            && field(class, o, "obj_uuid").as_str() == Some(obj_uuid)
            && timestamp(class, o) > t
    })
}

/// `message.get_all_records_where`: an unknown field excludes the row instead of failing.
pub fn get_all_records_where(state: &State, call: &Call) -> Result<Value, ApiError> {
    let text = call.str(0);
    let expr = where_expr::parse(text).map_err(|e| ApiError::invalid_value(text, &e))?;
    let class = call.class;
    filtered(state, class, |o| {
        let mut lookup = |column: &str| {
            class.field(&where_expr::column_to_field(column)).map(|f| db_string::db_string(&o.fields[f]))
        };
        expr.eval(&mut lookup).unwrap_or(false)
    })
}

/// `message.create(name, priority, cls, obj_uuid, body)`.
pub fn create(tx: &mut Tx, call: &Call) -> Result<Value, ApiError> {
    let a = call.args;
    Ok(Value::Ref(record(tx, [a[0].clone(), a[1].clone(), a[2].clone(), a[3].clone(), a[4].clone()])))
}

/// A message the server itself leaves about an object (xapi `Xapi_message.create`).
pub fn alert(tx: &mut Tx, name: &str, priority: i64, cls: &str, obj_uuid: &str, body: String) -> String {
    let given =
        [Value::str(name), Value::Int(priority), Value::Enum(cls.into()), Value::str(obj_uuid), Value::String(body)];
    record(tx, given)
}

/// `[name, priority, cls, obj_uuid, body]`, stamped now.
fn record(tx: &mut Tx, [name, priority, cls, obj_uuid, body]: [Value; 5]) -> String {
    let now = Value::DateTime(tx.ctx.now_secs());
    create_internal(
        tx,
        "message",
        vec![
            ("name", name),
            ("priority", priority),
            ("cls", cls),
            ("obj_uuid", obj_uuid),
            ("body", body),
            ("timestamp", now),
        ],
    )
}

/// `message.destroy_many(messages)`: all or nothing.
pub fn destroy_many(tx: &mut Tx, call: &Call) -> Result<Value, ApiError> {
    let refs: Vec<String> =
        call.args[0].as_set().unwrap_or(&[]).iter().filter_map(|v| v.as_str().map(String::from)).collect();
    if let Some(r) = refs.iter().find(|r| !tx.state.exists(call.class.id, r)) {
        return Err(ApiError::handle_invalid(&call.class.name, r));
    }
    for r in &refs {
        destroy_object(tx, call.class, r);
    }
    Ok(Value::String(String::new()))
}

fn field<'o>(class: &Class, o: &'o Object, name: &str) -> &'o Value {
    &o.fields[class.field(name).expect("message field")]
}

fn timestamp(class: &Class, o: &Object) -> i64 {
    match field(class, o, "timestamp") {
        Value::DateTime(t) => *t,
        _ => 0,
    }
}

fn since(v: &Value) -> i64 {
    match v {
        Value::DateTime(t) => *t,
        _ => 0,
    }
}

fn filtered(state: &State, class: &Class, keep: impl Fn(&Object) -> bool) -> Result<Value, ApiError> {
    Ok(Value::Map(
        state
            .table(class.id)
            .objects
            .iter()
            .filter(|(_, o)| keep(o))
            .map(|(r, o)| (Value::Ref(r.to_string()), state.record(class, o)))
            .collect(),
    ))
}
