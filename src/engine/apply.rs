//! The fold: applies one recorded `Change` to a `State`. Deterministic and total for valid logs;
//! an impossible change (a dangling ref, an unknown class) is a programmer error and panics,
//! because the log and the projections would otherwise disagree silently.
//!
//! Derived relation sets (`VM.VBDs`, `SR.VDIs`, …) are never recorded in the log: the fold keeps
//! them in step with the single-ref side, as xapi's database does.

use std::sync::Arc;

use imbl::OrdSet;

use super::state::{Deletion, Object, Ref, State, User};
use crate::entry::Change;
use crate::schema::{schema, ClassId, FieldId, Relation};
use crate::value::{Value, NULL_REF};

/// Applies every change of an entry and stamps `seq` on what they touch.
pub fn apply_changes(state: &mut State, seq: u64, changes: &[Change]) {
    assert!(seq > state.seq, "entry {seq} applied after {}", state.seq);
    for change in changes {
        apply(state, seq, change);
    }
    state.seq = seq;
}

/// Applies one change at log position `seq`.
pub fn apply(state: &mut State, seq: u64, change: &Change) {
    let s = schema();
    match change {
        Change::Create { class, reference, fields } => {
            let class = s.class_id(class).unwrap_or_else(|| panic!("entry {seq}: unknown class {class}"));
            create(state, seq, class, reference, fields);
        }
        Change::Set { class, reference, field, value } => {
            let cid = s.class_id(class).unwrap_or_else(|| panic!("entry {seq}: unknown class {class}"));
            let fid =
                s.classes[cid].field(field).unwrap_or_else(|| panic!("entry {seq}: unknown field {class}.{field}"));
            set_field(state, seq, cid, reference, fid, value.clone());
        }
        Change::Destroy { class, reference } => {
            let class = s.class_id(class).unwrap_or_else(|| panic!("entry {seq}: unknown class {class}"));
            destroy(state, seq, class, reference);
        }
        Change::Touch { class, reference } => {
            let class = s.class_id(class).unwrap_or_else(|| panic!("entry {seq}: unknown class {class}"));
            touch(state, seq, class, reference);
        }
        Change::UserPut { name, role, password_hash } => {
            state.users.insert(name.clone(), User { role: role.clone(), password_hash: password_hash.clone() });
        }
        Change::UserDelete { name } => {
            state.users.remove(name);
        }
        Change::MapPut { class, reference, field, key, value } => {
            edit_collection(state, seq, class, reference, field, |current| {
                let Value::Map(entries) = current else {
                    *current = Value::Map(vec![(key.clone(), value.clone())]);
                    return;
                };
                if let Some(at) = entries.iter().position(|(k, _)| k == key) {
                    entries.remove(at);
                }
                entries.push((key.clone(), value.clone()));
            });
        }
        Change::MapRemove { class, reference, field, key } => {
            edit_collection(state, seq, class, reference, field, |current| {
                if let Value::Map(entries) = current {
                    entries.retain(|(k, _)| k != key);
                }
            });
        }
        Change::SetAdd { class, reference, field, value } => {
            edit_collection(state, seq, class, reference, field, |current| {
                let Value::Set(items) = current else {
                    *current = Value::Set(vec![value.clone()]);
                    return;
                };
                if !items.contains(value) {
                    items.push(value.clone());
                }
            });
        }
        Change::SetRemove { class, reference, field, value } => {
            edit_collection(state, seq, class, reference, field, |current| {
                if let Value::Set(items) = current {
                    items.retain(|v| v != value);
                }
            });
        }
    }
}

/// Edits a map or set field where it is (the delta changes), so that the cost of an entry does
/// not grow with the collection: a field with no relation and no index is changed in place (the
/// object is copied only if a published state still shares it); the others go through
/// [`set_field`], which keeps their relations and indexes in step.
fn edit_collection(
    state: &mut State,
    seq: u64,
    class: &str,
    reference: &str,
    field: &str,
    edit: impl FnOnce(&mut Value),
) {
    let s = schema();
    let cid = s.class_id(class).unwrap_or_else(|| panic!("entry {seq}: unknown class {class}"));
    let c = &s.classes[cid];
    let fid = c.field(field).unwrap_or_else(|| panic!("entry {seq}: unknown field {class}.{field}"));
    let indexed = Some(fid) == c.uuid_field || Some(fid) == c.name_label_field;
    if c.fields[fid].relation == Relation::None && !indexed {
        update(state, seq, cid, reference, |o| edit(&mut o.fields[fid]));
        return;
    }
    let mut value =
        state.get(cid, reference).unwrap_or_else(|| panic!("entry {seq}: {class} {reference} does not exist")).fields
            [fid]
            .materialized();
    edit(&mut value);
    set_field(state, seq, cid, reference, fid, value);
}

fn create(state: &mut State, seq: u64, class: ClassId, reference: &str, given: &[(String, Value)]) {
    let c = &schema().classes[class];
    assert!(!state.exists(class, reference), "entry {seq}: {} {reference} created twice", c.name);
    let mut fields: Vec<Value> = c.fields.iter().map(crate::schema::default_value).collect();
    for (name, value) in given {
        let fid = c.field(name).unwrap_or_else(|| panic!("entry {seq}: unknown field {}.{name}", c.name));
        fields[fid] = value.clone();
    }
    // Derived sets start from what already points here (normally nothing).
    for (fid, f) in c.fields.iter().enumerate() {
        if let Relation::Many { .. } = f.relation {
            fields[fid] = Value::Set(Vec::new());
        }
    }
    let object = Arc::new(Object::new(fields, seq, seq));
    let shared: Ref = Arc::from(reference);
    let table = state.table_mut(class);
    table.by_modified.insert((seq, shared.clone()));
    table.objects.insert(shared, object.clone());
    index_insert(state, class, reference, &object);
    // Link the other ends of this object's relations.
    for (fid, f) in c.fields.iter().enumerate() {
        let value = state.tables[class].objects[reference].fields[fid].clone();
        link(state, seq, reference, f.relation, None, Some(&value));
    }
}

fn set_field(state: &mut State, seq: u64, class: ClassId, reference: &str, fid: FieldId, value: Value) {
    let c = &schema().classes[class];
    let relation = c.fields[fid].relation;
    assert!(
        !matches!(relation, Relation::Many { .. }),
        "entry {seq}: derived field {}.{} set",
        c.name,
        c.fields[fid].name
    );
    let mut old = Value::Null;
    update(state, seq, class, reference, |o| old = std::mem::replace(&mut o.fields[fid], value));
    let indexed = Some(fid) == c.uuid_field || Some(fid) == c.name_label_field;
    if !indexed && relation == Relation::None {
        return;
    }
    let new = state.tables[class].objects[reference].fields[fid].clone();
    if indexed && old != new {
        index_field(state, class, fid, reference, &old, Index::Remove);
        index_field(state, class, fid, reference, &new, Index::Insert);
    }
    link(state, seq, reference, relation, Some(&old), Some(&new));
}

fn destroy(state: &mut State, seq: u64, class: ClassId, reference: &str) {
    let c = &schema().classes[class];
    let (shared, object) = state
        .table_mut(class)
        .objects
        .remove_with_key(reference)
        .unwrap_or_else(|| panic!("entry {seq}: destroy of missing {} {reference}", c.name));
    index_remove(state, class, reference, &object);
    state.table_mut(class).by_modified.remove(&(object.modified, shared));
    for (fid, f) in c.fields.iter().enumerate() {
        match f.relation {
            Relation::One { .. } | Relation::ManyToMany { .. } => {
                link(state, seq, reference, f.relation, Some(&object.fields[fid]), None);
            }
            Relation::Many { class: oc, field: of } => {
                // Objects still pointing here lose their ref, so no ref dangles.
                for r in refs(&object.fields[fid]) {
                    if state.exists(oc, &r) {
                        update(state, seq, oc, &r, |o| o.fields[of] = Value::Ref(NULL_REF.to_string()));
                    }
                }
            }
            Relation::None => {}
        }
    }
    state.deletions.push_back(Deletion { seq, class, reference: reference.to_string(), created: object.created });
    if state.deletions.len() > super::state::DELETIONS_RETAINED_MAX {
        if let Some(oldest) = state.deletions.pop_front() {
            state.events_horizon = oldest.seq;
        }
    }
}

fn touch(state: &mut State, seq: u64, class: ClassId, reference: &str) {
    update(state, seq, class, reference, |_| {});
}

/// Keeps the other end of a relation in step after `(class, reference).fid` went from `old` to `new`.
fn link(state: &mut State, seq: u64, reference: &str, relation: Relation, old: Option<&Value>, new: Option<&Value>) {
    let (other_class, other_field) = match relation {
        Relation::One { class, field } | Relation::ManyToMany { class, field } => (class, field),
        Relation::Many { .. } | Relation::None => return,
    };
    let old_refs: OrdSet<String> = old.map(refs).unwrap_or_default().into_iter().collect();
    let new_refs: OrdSet<String> = new.map(refs).unwrap_or_default().into_iter().collect();
    for gone in old_refs.clone().relative_complement(new_refs.clone()) {
        if state.exists(other_class, &gone) {
            update(state, seq, other_class, &gone, |o| set_remove(&mut o.fields[other_field], reference));
        }
    }
    for added in new_refs.relative_complement(old_refs) {
        if state.exists(other_class, &added) {
            update(state, seq, other_class, &added, |o| set_add(&mut o.fields[other_field], reference));
        }
    }
}

/// The non-null refs held by a ref or a ref set.
fn refs(value: &Value) -> Vec<String> {
    match value {
        Value::Ref(r) if r != NULL_REF => vec![r.clone()],
        Value::Set(items) => {
            items.iter().filter_map(|v| v.as_str()).filter(|r| *r != NULL_REF).map(String::from).collect()
        }
        _ => Vec::new(),
    }
}

fn set_add(set: &mut Value, reference: &str) {
    if let Value::Set(items) = set {
        if !items.iter().any(|v| v.as_str() == Some(reference)) {
            items.push(Value::Ref(reference.to_string()));
        }
    }
}

fn set_remove(set: &mut Value, reference: &str) {
    if let Value::Set(items) = set {
        items.retain(|v| v.as_str() != Some(reference));
    }
}

/// Changes one object in place (copy-on-write) and stamps it modified at `seq`.
fn update(state: &mut State, seq: u64, class: ClassId, reference: &str, f: impl FnOnce(&mut Object)) {
    let table = state.table_mut(class);
    let (shared, slot) = table
        .objects
        .get_key_value_mut(reference)
        .unwrap_or_else(|| panic!("entry {seq}: no {} {reference}", schema().classes[class].name));
    let shared = shared.clone();
    let object = Object::edit(slot);
    f(object);
    if object.modified != seq {
        table.by_modified.remove(&(object.modified, shared.clone()));
        table.by_modified.insert((seq, shared));
        object.modified = seq;
    }
}

fn index_insert(state: &mut State, class: ClassId, reference: &str, object: &Object) {
    index_object(state, class, reference, object, Index::Insert);
}

fn index_remove(state: &mut State, class: ClassId, reference: &str, object: &Object) {
    index_object(state, class, reference, object, Index::Remove);
}

#[derive(Clone, Copy)]
enum Index {
    Insert,
    Remove,
}

/// Puts `reference` into (or takes it out of) the uuid and name_label indexes, by the object's
/// values of those fields.
fn index_object(state: &mut State, class: ClassId, reference: &str, object: &Object, how: Index) {
    let c = &schema().classes[class];
    for fid in [c.uuid_field, c.name_label_field].into_iter().flatten() {
        index_field(state, class, fid, reference, &object.fields[fid], how);
    }
}

/// Puts `reference` into (or takes it out of) the index of field `fid` (uuid or name_label), under
/// `value`.
fn index_field(state: &mut State, class: ClassId, fid: FieldId, reference: &str, value: &Value, how: Index) {
    let c = &schema().classes[class];
    let table = state.table_mut(class);
    let Some(key) = value.as_str() else { return };
    // The object map's copy of the ref, shared by the indexes.
    let shared = || table.shared_ref(reference).unwrap_or_else(|| Ref::from(reference));
    if Some(fid) == c.uuid_field {
        match how {
            Index::Insert => {
                let shared = shared();
                table.by_uuid.insert(Arc::from(key), shared);
            }
            Index::Remove => {
                if table.by_uuid.get(key).map(|r| &**r) == Some(reference) {
                    table.by_uuid.remove(key);
                }
            }
        }
    } else if Some(fid) == c.name_label_field {
        match how {
            Index::Insert => {
                let shared = shared();
                table.by_name_label.entry(Arc::from(key)).or_default().insert(shared);
            }
            Index::Remove => {
                if let Some(set) = table.by_name_label.get_mut(key) {
                    set.remove(reference);
                    if set.is_empty() {
                        table.by_name_label.remove(key);
                    }
                }
            }
        }
    }
}
