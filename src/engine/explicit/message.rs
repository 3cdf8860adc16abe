//! Hand-written explicit messages, looked up by class and name. Messages not listed here answer
//! `NOT_IMPLEMENTED` rather than pretending to succeed.
//!
//! So far: the `message` class (alerts; its lookups are explicit in the datamodel but behave like
//! the implicit ones, except that `get_all_records_where` skips rows naming unknown fields, as
//! xapi_message.ml does) and `blob` create/destroy.

use super::generic::{create_internal, destroy, read_kind};
use super::state::State;
use super::tx::{Ctx, Tx};
use super::where_expr;
use crate::error::ApiError;
use crate::schema::{Class, Kind, Message};
use crate::value::Value;

/// Whether an explicit message only reads.
pub fn is_read(class: &str, message: &str) -> bool {
    matches!(
        (class, message),
        (
            "message",
            "get_all"
                | "get_all_records"
                | "get_record"
                | "get_by_uuid"
                | "get_all_records_where"
                | "get_since"
                | "get"
        )
    )
}

/// Whether an explicit message has a hand-written side-effecting implementation here.
pub fn is_write(class: &str, message: &str) -> bool {
    matches!((class, message), ("message", "create" | "destroy" | "destroy_many") | ("blob", "create" | "destroy"))
}

pub fn read(state: &State, ctx: &Ctx, class: &Class, msg: &Message, args: &[Value]) -> Result<Value, ApiError> {
    let _ = ctx;
    let kind = match (class.name.as_str(), msg.name.as_str()) {
        ("message", "get_all") => Kind::GetAll,
        ("message", "get_all_records") => Kind::GetAllRecords,
        ("message", "get_record") => Kind::GetRecord,
        ("message", "get_by_uuid") => Kind::GetByUuid,
        ("message", "get_all_records_where") => return messages_where(state, class, args),
        ("message", "get_since") => return messages_filtered(state, class, |o| timestamp(class, o) > since(&args[0])),
        ("message", "get") => {
            let (cls, obj_uuid, t) = (args[0].as_str().unwrap_or(""), args[1].as_str().unwrap_or(""), since(&args[2]));
            return messages_filtered(state, class, |o| {
                field(class, o, "cls").as_str() == Some(cls)
                    && field(class, o, "obj_uuid").as_str() == Some(obj_uuid)
                    && timestamp(class, o) > t
            });
        }
        _ => return Err(ApiError::not_implemented(&msg.wire_name)),
    };
    read_kind(state, class, kind, &msg.wire_name, args)
}

pub fn write(tx: &mut Tx, class: &Class, msg: &Message, args: &[Value]) -> Result<Value, ApiError> {
    let void = Ok(Value::String(String::new()));
    match (class.name.as_str(), msg.name.as_str()) {
        ("message", "create") => {
            let now = Value::DateTime(tx.ctx.now_secs());
            let r = create_internal(
                tx,
                "message",
                vec![
                    ("name", args[0].clone()),
                    ("priority", args[1].clone()),
                    ("cls", args[2].clone()),
                    ("obj_uuid", args[3].clone()),
                    ("body", args[4].clone()),
                    ("timestamp", now),
                ],
            );
            Ok(Value::Ref(r))
        }
        ("blob", "create") => {
            let now = Value::DateTime(tx.ctx.now_secs());
            let r = create_internal(
                tx,
                "blob",
                vec![("mime_type", args[0].clone()), ("public", args[1].clone()), ("last_updated", now)],
            );
            Ok(Value::Ref(r))
        }
        ("message" | "blob", "destroy") => {
            let r = args[0].as_str().unwrap_or("");
            if !tx.state.exists(class.id, r) {
                return Err(ApiError::handle_invalid(&class.name, r));
            }
            destroy(tx, class, r);
            void
        }
        ("message", "destroy_many") => {
            let refs: Vec<String> =
                args[0].as_set().unwrap_or(&[]).iter().filter_map(|v| v.as_str().map(String::from)).collect();
            for r in &refs {
                if !tx.state.exists(class.id, r) {
                    return Err(ApiError::handle_invalid(&class.name, r));
                }
            }
            for r in &refs {
                destroy(tx, class, r);
            }
            void
        }
        _ => Err(ApiError::not_implemented(&msg.wire_name)),
    }
}

fn field<'o>(class: &Class, o: &'o super::Object, name: &str) -> &'o Value {
    &o.fields[class.field(name).expect("message field")]
}

fn timestamp(class: &Class, o: &super::Object) -> i64 {
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

fn messages_filtered(state: &State, class: &Class, keep: impl Fn(&super::Object) -> bool) -> Result<Value, ApiError> {
    Ok(Value::Map(
        state
            .table(class.id)
            .objects
            .iter()
            .filter(|(_, o)| keep(o))
            .map(|(r, o)| (Value::Ref(r.clone()), state.record(class, o)))
            .collect(),
    ))
}

/// `message.get_all_records_where`: an unknown field excludes the row instead of failing.
fn messages_where(state: &State, class: &Class, args: &[Value]) -> Result<Value, ApiError> {
    let text = args[0].as_str().unwrap_or("");
    let expr = where_expr::parse(text).map_err(|e| ApiError::invalid_value(text, &e))?;
    messages_filtered(state, class, |o| {
        let mut lookup = |column: &str| {
            class.field(&where_expr::column_to_field(column)).map(|f| super::db_string::db_string(&o.fields[f]))
        };
        expr.eval(&mut lookup).unwrap_or(false)
    })
}
