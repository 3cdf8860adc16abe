//! Projections: the per-class object tables the log folds into, with uuid and name_label indexes.
//!
//! `State` is a persistent (structurally shared) value: cloning it is O(number of classes), so the
//! writer works on a clone and publishes it whole while readers keep the snapshot they loaded.

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use super::fields::Fields;
use crate::schema::{schema, Class, ClassId, FieldId};
use crate::value::{EncodingCache, Value};

/// A stored object seen as a record (see [`State::record`]).
#[derive(Debug)]
pub struct ObjectRecord {
    pub class: ClassId,
    pub object: Arc<Object>,
}

impl crate::value::Members for ObjectRecord {
    fn for_each_member(&self, f: &mut dyn FnMut(&str, &Value)) {
        let class = &schema().classes[self.class];
        for (field, value) in class.fields.iter().zip(&self.object.fields) {
            // An absent option is left out, as xapi does (docs/xenapi-semantics.md §a.4).
            if matches!(field.ty, crate::schema::Ty::Option(_)) && *value == Value::Null {
                continue;
            }
            f(&field.name, value);
        }
    }

    fn encoding_cache(&self) -> Option<&EncodingCache> {
        Some(&self.object.encodings)
    }
}

/// One stored object: its field values in schema order, and the log positions that made and last
/// changed it (what `event.from` compares tokens against).
///
/// An object in a published snapshot never changes (the writer changes a copy, see
/// [`Object::edit`]), so its record's wire encodings are made once, by the first read that sends
/// it, and shared by every later one.
#[derive(Debug)]
pub struct Object {
    pub fields: Fields,
    pub created: u64,
    pub modified: u64,
    /// The record's XML-RPC and JSON encodings; emptied by every change.
    encodings: EncodingCache,
}

impl Object {
    pub fn new(fields: impl Into<Fields>, created: u64, modified: u64) -> Object {
        Object { fields: fields.into(), created, modified, encodings: EncodingCache::default() }
    }

    pub fn get(&self, field: FieldId) -> &Value {
        &self.fields[field]
    }

    /// The object in `slot`, ready to change: copied if a snapshot shares it, and with its
    /// encodings forgotten either way.
    pub fn edit(slot: &mut Arc<Object>) -> &mut Object {
        let object = Arc::make_mut(slot);
        object.encodings = EncodingCache::default();
        object
    }
}

impl Clone for Object {
    /// A copy starts without encodings: it is about to be changed. It shares the field chunks
    /// until a set copies the one it changes.
    fn clone(&self) -> Object {
        Object::new(self.fields.clone(), self.created, self.modified)
    }
}

impl PartialEq for Object {
    fn eq(&self, other: &Object) -> bool {
        (&self.fields, self.created, self.modified) == (&other.fields, other.created, other.modified)
    }
}

/// An object reference (or an index key) as the tables hold it: one allocation, shared by the
/// object map and every index, and copied by a count when a persistent map copies a node on the
/// path of a change (a `String` key was a fresh allocation per key per copied node).
pub type Ref = Arc<str>;

/// The objects of one class and its indexes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub objects: OrdMap<Ref, Arc<Object>>,
    pub by_uuid: OrdMap<Arc<str>, Ref>,
    pub by_name_label: OrdMap<Arc<str>, OrdSet<Ref>>,
    /// (last modified position, ref) of every object: `event.from` reads the objects changed after a
    /// token as a range, instead of scanning the table.
    pub by_modified: OrdSet<(u64, Ref)>,
}

impl Table {
    /// The table's own (shared) copy of `reference`, if it holds that object.
    pub fn shared_ref(&self, reference: &str) -> Option<Ref> {
        self.objects.get_key_value(reference).map(|(r, _)| r.clone())
    }
}

/// A local user account (the password is an argon2id PHC string, never clear text).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub role: String,
    pub password_hash: String,
}

/// A deleted object, remembered so that `event.from` can report `del`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deletion {
    pub seq: u64,
    pub class: ClassId,
    pub reference: String,
    pub created: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// The last log entry folded in (0 for the empty state).
    pub seq: u64,
    /// Indexed by `ClassId`. Each table behind its own `Arc`, so that the writer's copy of the state
    /// for a job (see [`crate::engine::Tx`]) copies 67 pointers and a change copies the one table
    /// it touches ([`State::table_mut`]), not the four persistent maps of every class.
    pub tables: Vec<Arc<Table>>,
    pub users: OrdMap<String, User>,
    pub deletions: imbl::Vector<Deletion>,
    /// Deletions at or before this position have been forgotten; a token older than it cannot be
    /// served without a gap (`EVENTS_LOST`).
    pub events_horizon: u64,
}

/// Deletions remembered for `event.from`; older ones move the horizon forward.
pub const DELETIONS_RETAINED_MAX: usize = 100_000;

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    pub fn new() -> State {
        State {
            seq: 0,
            tables: (0..schema().classes.len()).map(|_| Arc::new(Table::default())).collect(),
            users: OrdMap::new(),
            deletions: imbl::Vector::new(),
            events_horizon: 0,
        }
    }

    pub fn table(&self, class: ClassId) -> &Table {
        &self.tables[class]
    }

    /// The table of `class`, ready to change: copied first if another state shares it.
    pub fn table_mut(&mut self, class: ClassId) -> &mut Table {
        Arc::make_mut(&mut self.tables[class])
    }

    pub fn get(&self, class: ClassId, reference: &str) -> Option<&Arc<Object>> {
        self.tables[class].objects.get(reference)
    }

    pub fn exists(&self, class: ClassId, reference: &str) -> bool {
        self.tables[class].objects.contains_key(reference)
    }

    /// Total objects across all classes.
    pub fn object_count(&self) -> usize {
        self.tables.iter().map(|t| t.objects.len()).sum()
    }

    /// The record of an object as `get_record` returns it: every field by wire name, read lazily
    /// from the (immutable, shared) object, so a read copies nothing.
    pub fn record(&self, class: &Class, object: &Arc<Object>) -> Value {
        Value::Lazy(Arc::new(ObjectRecord { class: class.id, object: object.clone() }))
    }

    /// Finds the class of a ref by probing every table (used where the wire gives a bare ref).
    pub fn class_of(&self, reference: &str) -> Option<ClassId> {
        self.tables.iter().position(|t| t.objects.contains_key(reference))
    }
}
