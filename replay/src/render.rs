//! Human-readable text and JSON for values, changes and entries. Display only: nothing here
//! interprets a change beyond naming what it touches.

use std::fmt::Write as _;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use xenledger::entry::{Actor, Change, Entry};
use xenledger::schema::{default_value, schema};
use xenledger::value::{format_datetime, Value};

/// A value in a compact JSON-like form: strings quoted, refs, enums and datetimes bare, sets as
/// `[a, b]`, maps and records as `{k: v}`.
pub fn value_text(value: &Value) -> String {
    let mut out = String::new();
    push_value(&mut out, value);
    out
}

fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => out.push_str(&quoted(s)),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(x) => {
            let _ = write!(out, "{x}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::DateTime(t) => out.push_str(&format_datetime(*t)),
        Value::Enum(s) | Value::Ref(s) => out.push_str(s),
        Value::Set(items) => {
            out.push('[');
            push_joined(out, items, push_value);
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            push_joined(out, entries, |out, (k, v)| {
                push_value(out, k);
                out.push_str(": ");
                push_value(out, v);
            });
            out.push('}');
        }
        Value::Record(members) => {
            out.push('{');
            push_joined(out, members, |out, (k, v)| {
                out.push_str(k);
                out.push_str(": ");
                push_value(out, v);
            });
            out.push('}');
        }
        Value::Null => out.push_str("null"),
        Value::Int32(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Lazy(_) => push_value(out, &value.materialized()),
    }
}

fn push_joined<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        each(out, item);
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}

/// `user/originator/session`, with `-` for an empty part.
pub fn actor_text(actor: &Actor) -> String {
    let part = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    format!("{}/{}/{}", part(&actor.user), part(&actor.originator), part(&actor.session))
}

/// RFC 3339 UTC with microseconds: `2025-03-19T04:16:24.123456Z`.
pub fn time_text(timestamp_us: i64) -> String {
    let secs = timestamp_us.div_euclid(1_000_000);
    let micros = timestamp_us.rem_euclid(1_000_000);
    // The library's xapi form is `YYYYMMDDTHH:MM:SSZ`; RFC 3339 wants dashes in the date.
    let basic = format_datetime(secs);
    match (basic.get(0..4), basic.get(4..6), basic.get(6..8), basic.get(9..17)) {
        (Some(y), Some(m), Some(d), Some(clock)) if basic.len() == 18 => format!("{y}-{m}-{d}T{clock}.{micros:06}Z"),
        _ => format!("{basic}+{micros}us"),
    }
}

/// The fields of a created object that differ from their schema default; `brief` keeps only `uuid`
/// and `name_label`.
fn created_fields(class: &str, fields: &[(String, Value)], brief: bool) -> Vec<(String, Value)> {
    let class = schema().class(class);
    let is_default = |name: &str, value: &Value| {
        class.and_then(|c| c.field(name).map(|fid| default_value(&c.fields[fid]) == *value)).unwrap_or(false)
    };
    fields
        .iter()
        .filter(|(name, value)| if brief { name == "uuid" || name == "name_label" } else { !is_default(name, value) })
        .cloned()
        .collect()
}

/// One change: `+ VBD OpaqueRef:… {…}`, `VM OpaqueRef:… name_label := "x"`, `- VM OpaqueRef:…`,
/// `~ VM OpaqueRef:…` (touched), `+ user root (pool-admin)`, `- user root`. A created object lists
/// its `uuid` and `name_label` when `brief`, else every field not at its default.
pub fn change_text(change: &Change, brief: bool) -> String {
    match change {
        Change::Create { class, reference, fields } => {
            let shown = created_fields(class, fields, brief);
            if shown.is_empty() {
                format!("+ {class} {reference}")
            } else {
                format!("+ {class} {reference} {}", value_text(&Value::Record(shown)))
            }
        }
        Change::Set { class, reference, field, value } => {
            format!("{class} {reference} {field} := {}", value_text(value))
        }
        Change::Destroy { class, reference } => format!("- {class} {reference}"),
        Change::Touch { class, reference } => format!("~ {class} {reference}"),
        // The password hash is never shown.
        Change::UserPut { name, role, .. } => format!("+ user {name} ({role})"),
        Change::UserDelete { name } => format!("- user {name}"),
        Change::MapPut { class, reference, field, key, value } => {
            format!("{class} {reference} {field}[{}] := {}", value_text(key), value_text(value))
        }
        Change::MapRemove { class, reference, field, key } => {
            format!("{class} {reference} {field}[{}] removed", value_text(key))
        }
        Change::SetAdd { class, reference, field, value } => {
            format!("{class} {reference} {field} += {}", value_text(value))
        }
        Change::SetRemove { class, reference, field, value } => {
            format!("{class} {reference} {field} -= {}", value_text(value))
        }
    }
}

/// An entry on one line: `seq time actor method(params) | change; change`. With `long`, the changes
/// follow on their own indented lines instead, created objects with all their non-default fields.
pub fn entry_text(entry: &Entry, long: bool) -> String {
    let params: Vec<String> = entry.params.iter().map(value_text).collect();
    let mut out = format!(
        "{} {} {} {}({})",
        entry.seq,
        time_text(entry.timestamp_us),
        actor_text(&entry.actor),
        entry.method,
        params.join(", ")
    );
    if long {
        for change in &entry.changes {
            out.push_str("\n    ");
            out.push_str(&change_text(change, false));
        }
    } else if !entry.changes.is_empty() {
        let changes: Vec<String> = entry.changes.iter().map(|c| change_text(c, true)).collect();
        out.push_str(" | ");
        out.push_str(&changes.join("; "));
    }
    out
}

/// A [`Value`] as JSON the way the JSON-RPC wire shows it: sets as arrays, maps and records as
/// objects (keys in their stored order), datetimes as `YYYYMMDDTHH:MM:SSZ` strings, enums and refs as
/// strings.
pub struct Json<'a>(pub &'a Value);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::String(s) | Value::Enum(s) | Value::Ref(s) => serializer.serialize_str(s),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(x) => serializer.serialize_f64(*x),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::DateTime(t) => serializer.serialize_str(&format_datetime(*t)),
            Value::Set(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Json(item))?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&key_text(k), &Json(v))?;
                }
                map.end()
            }
            Value::Record(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, &Json(v))?;
                }
                map.end()
            }
            Value::Null => serializer.serialize_unit(),
            Value::Int32(i) => serializer.serialize_i32(*i),
            Value::Lazy(_) => Json(&self.0.materialized()).serialize(serializer),
        }
    }
}

/// A map key as JSON object keys must be: text.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) | Value::Enum(s) | Value::Ref(s) => s.clone(),
        other => value_text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_rfc3339_utc() {
        assert_eq!(time_text(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(time_text(1_742_357_784_000_123), "2025-03-19T04:16:24.000123Z");
    }

    #[test]
    fn values_read_like_json() {
        let value = Value::Record(vec![
            ("name".into(), Value::str("a \"b\"")),
            ("tags".into(), Value::Set(vec![Value::str("x")])),
            ("cfg".into(), Value::string_map([("k", "v")])),
            ("vm".into(), Value::null_ref()),
        ]);
        assert_eq!(value_text(&value), r#"{name: "a \"b\"", tags: ["x"], cfg: {"k": "v"}, vm: OpaqueRef:NULL}"#);
        let json = serde_json::to_string(&Json(&value)).unwrap();
        assert_eq!(json, r#"{"name":"a \"b\"","tags":["x"],"cfg":{"k":"v"},"vm":"OpaqueRef:NULL"}"#);
    }
}
