//! `state` and `diff`: the objects as of an entry, and what changed between two entries.

use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};
use serde::ser::{Serialize, SerializeMap, Serializer};
use xenledger::engine::{Object, State};
use xenledger::schema::{schema, Class, ClassId};
use xenledger::value::Value;

use crate::redact::Redactor;
use crate::render::{value_text, Json};
use crate::{class_name, fold, last_seq, open_store, state_at, walk};

/// The objects after entry `at` as pretty JSON, `{"VM": {"OpaqueRef:…": {"uuid": …, …}}}`: classes
/// in schema order (only those with objects, unless `class` names one), objects in ref order, fields
/// in schema order. Local users are not objects and are not shown.
pub fn state_json(dir: &Path, at: u64, class: Option<&str>, use_checkpoints: bool) -> Result<String> {
    let class = class.map(class_id).transpose()?;
    let store = open_store(dir)?;
    let (state, _) = state_at(&store, at, use_checkpoints)?;
    let redactor = Redactor::of_state(&state);
    Ok(serde_json::to_string_pretty(&StateJson { state: &state, class, redactor: &redactor })?)
}

/// What changed from entry `a` to entry `b` (`a <= b`; 0 is the empty state): one line per object
/// added (`+`) or removed (`-`) and one per field changed (`~`), under a count header.
pub fn diff(dir: &Path, a: u64, b: u64, class: Option<&str>) -> Result<String> {
    if a > b {
        bail!("diff {a} {b}: the first position must not be after the second");
    }
    let class = class.map(class_id).transpose()?;
    let store = open_store(dir)?;
    let last = last_seq(&store)?;
    if b > last {
        bail!("the log ends at entry {last}; there is no entry {b}");
    }
    let (before, hash) = state_at(&store, a, true)?;
    let mut after = before.clone();
    walk(&store, a + 1, Some(b), hash, |entry| fold(&mut after, &entry))?;
    let lines = state_changes(&before, &after, class);
    let count = |mark: char| lines.iter().filter(|line| line.starts_with(mark)).count();
    let mut out = format!(
        "entries {}..={b}: {} added, {} removed, {} fields changed\n",
        a + 1,
        count('+'),
        count('-'),
        count('~')
    );
    for line in &lines {
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// The differences from `before` to `after`, classes in schema order and refs in order:
/// `+ class ref {uuid, name_label}`, `- class ref {…}`, `~ class ref field: old -> new`; then local
/// users (`+ user name (role)`, `- user name`, `~ user name …`) unless `class` restricts the output.
pub fn state_changes(before: &State, after: &State, class: Option<ClassId>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut redactor = Redactor::of_state(before);
    redactor.learn_state(after);
    for c in schema().classes.iter().filter(|c| class.is_none_or(|id| id == c.id)) {
        let mut old = before.table(c.id).objects.iter().peekable();
        let mut new = after.table(c.id).objects.iter().peekable();
        loop {
            let order = match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((r1, _)), Some((r2, _))) => r1.cmp(r2),
            };
            match order {
                Ordering::Less => {
                    let (r, o) = old.next().expect("peeked");
                    lines.push(format!("- {} {}{}", c.name, redactor.object(&c.name, r), summary(c, o)));
                }
                Ordering::Greater => {
                    let (r, o) = new.next().expect("peeked");
                    lines.push(format!("+ {} {}{}", c.name, redactor.object(&c.name, r), summary(c, o)));
                }
                Ordering::Equal => {
                    let (r, o1) = old.next().expect("peeked");
                    let (_, o2) = new.next().expect("peeked");
                    if !Arc::ptr_eq(o1, o2) {
                        field_changes(&mut lines, &redactor, c, r, o1, o2);
                    }
                }
            }
        }
    }
    if class.is_none() {
        user_changes(&mut lines, before, after);
    }
    lines
}

fn field_changes(
    lines: &mut Vec<String>,
    redactor: &Redactor,
    class: &Class,
    reference: &str,
    old: &Object,
    new: &Object,
) {
    for (field, (v1, v2)) in class.fields.iter().zip(old.fields.iter().zip(&new.fields)) {
        if v1 != v2 {
            lines.push(format!(
                "~ {} {} {}: {} -> {}",
                class.name,
                redactor.object(&class.name, reference),
                field.name,
                value_text(&redactor.field(&class.name, &field.name, v1)),
                value_text(&redactor.field(&class.name, &field.name, v2))
            ));
        }
    }
}

fn user_changes(lines: &mut Vec<String>, before: &State, after: &State) {
    for (name, user) in before.users.iter() {
        match after.users.get(name) {
            None => lines.push(format!("- user {name}")),
            Some(now) if now.role != user.role => {
                lines.push(format!("~ user {name} role: {} -> {}", user.role, now.role))
            }
            Some(now) if now.password_hash != user.password_hash => lines.push(format!("~ user {name} password")),
            Some(_) => {}
        }
    }
    for (name, user) in after.users.iter().filter(|(name, _)| !before.users.contains_key(*name)) {
        lines.push(format!("+ user {name} ({})", user.role));
    }
}

/// ` {uuid: …, name_label: …}` for the classes that have those fields.
fn summary(class: &Class, object: &Object) -> String {
    let members: Vec<(String, Value)> = [class.uuid_field, class.name_label_field]
        .into_iter()
        .flatten()
        .map(|fid| (class.fields[fid].name.clone(), object.fields[fid].clone()))
        .collect();
    if members.is_empty() {
        String::new()
    } else {
        format!(" {}", value_text(&Value::Record(members)))
    }
}

fn class_id(name: &str) -> Result<ClassId> {
    let name = class_name(name)?;
    Ok(schema().class_id(&name).expect("class_name returns schema names"))
}

/// The objects of a state as JSON; see [`state_json`].
struct StateJson<'a> {
    state: &'a State,
    class: Option<ClassId>,
    redactor: &'a Redactor,
}

impl Serialize for StateJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shown = |c: &&Class| match self.class {
            Some(id) => id == c.id,
            None => !self.state.table(c.id).objects.is_empty(),
        };
        let mut map = serializer.serialize_map(None)?;
        for class in schema().classes.iter().filter(shown) {
            map.serialize_entry(&class.name, &ObjectsJson { state: self.state, class, redactor: self.redactor })?;
        }
        map.end()
    }
}

struct ObjectsJson<'a> {
    state: &'a State,
    class: &'a Class,
    redactor: &'a Redactor,
}

impl Serialize for ObjectsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let objects = &self.state.table(self.class.id).objects;
        let mut map = serializer.serialize_map(Some(objects.len()))?;
        for (reference, object) in objects.iter() {
            let shown = self.redactor.object(&self.class.name, reference);
            map.serialize_entry(&shown, &RecordJson { class: self.class, object, redactor: self.redactor })?;
        }
        map.end()
    }
}

struct RecordJson<'a> {
    class: &'a Class,
    object: &'a Object,
    redactor: &'a Redactor,
}

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.class.fields.len()))?;
        for (field, value) in self.class.fields.iter().zip(&self.object.fields) {
            map.serialize_entry(&field.name, &Json(&self.redactor.field(&self.class.name, &field.name, value)))?;
        }
        map.end()
    }
}
