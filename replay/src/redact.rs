//! What the tool never prints: a session is shown by its uuid (`session:<uuid>`), never by the ref
//! the log keys it under, and a secret's value is shown as `(secret)`.
//!
//! Logs written since sessions were keyed by digest hold no usable ref, but older logs (and their
//! checkpoints) hold the refs clients were given; the tool treats both alike. A secret's value is
//! sealed in new logs and in the clear in old ones; either way it is not shown.

use std::collections::HashMap;

use xenledger::engine::State;
use xenledger::entry::{Actor, Change, Entry};
use xenledger::schema::{schema, Ty};
use xenledger::value::Value;

/// What every redacted secret value reads.
pub const SECRET: &str = "(secret)";

/// Session refs (or keys) to their uuids, learnt from states and from the entries that create
/// sessions.
#[derive(Debug, Default)]
pub struct Redactor {
    sessions: HashMap<String, String>,
}

impl Redactor {
    /// A redactor that knows the sessions of `state`.
    pub fn of_state(state: &State) -> Redactor {
        let mut redactor = Redactor::default();
        redactor.learn_state(state);
        redactor
    }

    pub fn learn_state(&mut self, state: &State) {
        let class = schema().class("session").expect("session class");
        let uuid = class.uuid_field.expect("session uuid");
        for (r, o) in state.table(class.id).objects.iter() {
            self.sessions.insert(r.to_string(), o.fields[uuid].as_str().unwrap_or("").to_string());
        }
    }

    /// Learns the sessions an entry creates (call before [`Redactor::entry`]).
    pub fn learn_entry(&mut self, entry: &Entry) {
        for change in &entry.changes {
            if let Change::Create { class, reference, fields } = change {
                if class == "session" {
                    let uuid = fields.iter().find(|(n, _)| n == "uuid").and_then(|(_, v)| v.as_str()).unwrap_or("");
                    self.sessions.insert(reference.clone(), uuid.to_string());
                }
            }
        }
    }

    /// How a session ref or key is shown: `session:<uuid>`, or `session:?` for one the log never
    /// created (it is not shown either way).
    pub fn session(&self, reference: &str) -> String {
        match self.sessions.get(reference) {
            Some(uuid) if !uuid.is_empty() => format!("session:{uuid}"),
            _ => "session:?".to_string(),
        }
    }

    /// A copy of `entry` fit to print.
    pub fn entry(&self, entry: &Entry) -> Entry {
        let actor = Actor {
            session: if entry.actor.session.is_empty() { String::new() } else { self.session(&entry.actor.session) },
            ..entry.actor.clone()
        };
        let secret_call = entry.method.strip_prefix("Async.").unwrap_or(&entry.method).starts_with("secret.");
        let params = entry
            .params
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if secret_call && entry.method.ends_with("set_value") && i == 1 {
                    Value::String(SECRET.into())
                } else {
                    self.value(v, secret_call)
                }
            })
            .collect();
        let changes = entry.changes.iter().map(|c| self.change(c)).collect();
        Entry { actor, params, changes, ..entry.clone() }
    }

    fn change(&self, change: &Change) -> Change {
        match change {
            Change::Create { class, reference, fields } => Change::Create {
                class: class.clone(),
                reference: self.object(class, reference),
                fields: fields.iter().map(|(f, v)| (f.clone(), self.field(class, f, v))).collect(),
            },
            Change::Set { class, reference, field, value } => Change::Set {
                class: class.clone(),
                reference: self.object(class, reference),
                field: field.clone(),
                value: self.field(class, field, value),
            },
            Change::Destroy { class, reference } => {
                Change::Destroy { class: class.clone(), reference: self.object(class, reference) }
            }
            Change::Touch { class, reference } => {
                Change::Touch { class: class.clone(), reference: self.object(class, reference) }
            }
            Change::MapPut { class, reference, field, key, value } => Change::MapPut {
                class: class.clone(),
                reference: self.object(class, reference),
                field: field.clone(),
                key: self.field(class, field, key),
                value: self.field(class, field, value),
            },
            Change::MapRemove { class, reference, field, key } => Change::MapRemove {
                class: class.clone(),
                reference: self.object(class, reference),
                field: field.clone(),
                key: self.field(class, field, key),
            },
            Change::SetAdd { class, reference, field, value } => Change::SetAdd {
                class: class.clone(),
                reference: self.object(class, reference),
                field: field.clone(),
                value: self.field(class, field, value),
            },
            Change::SetRemove { class, reference, field, value } => Change::SetRemove {
                class: class.clone(),
                reference: self.object(class, reference),
                field: field.clone(),
                value: self.field(class, field, value),
            },
            other => other.clone(),
        }
    }

    /// An object's name as shown: sessions by uuid, everything else as it is.
    pub fn object(&self, class: &str, reference: &str) -> String {
        if class == "session" {
            self.session(reference)
        } else {
            reference.to_string()
        }
    }

    /// A field's value as shown: a secret's value hidden, refs to sessions by uuid.
    pub fn field(&self, class: &str, field: &str, value: &Value) -> Value {
        if class == "secret" && field == "value" {
            return Value::String(SECRET.into());
        }
        let is_session_ref = schema()
            .class(class)
            .and_then(|c| c.field(field).map(|f| matches!(&c.fields[f].ty, Ty::Ref(t) if t == "session")))
            .unwrap_or(false);
        match value {
            Value::Ref(r) if is_session_ref && r != xenledger::value::NULL_REF => Value::Ref(self.session(r)),
            other => other.clone(),
        }
    }

    /// A parameter as shown: any known session ref by uuid; in a `secret.*` call, every `value`
    /// member of a record hidden.
    fn value(&self, value: &Value, secret_call: bool) -> Value {
        match value {
            Value::Ref(r) | Value::String(r) if self.sessions.contains_key(r) => Value::Ref(self.session(r)),
            Value::Record(members) => Value::Record(
                members
                    .iter()
                    .map(|(k, v)| {
                        let shown = if secret_call && k == "value" {
                            Value::String(SECRET.into())
                        } else {
                            self.value(v, secret_call)
                        };
                        (k.clone(), shown)
                    })
                    .collect(),
            ),
            Value::Set(items) => Value::Set(items.iter().map(|v| self.value(v, secret_call)).collect()),
            Value::Map(entries) => Value::Map(
                entries.iter().map(|(k, v)| (self.value(k, secret_call), self.value(v, secret_call))).collect(),
            ),
            other => other.clone(),
        }
    }
}
