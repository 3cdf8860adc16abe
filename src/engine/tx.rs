//! `Tx`: one call's working copy of the state plus the changes it has made so far.
//!
//! Every change goes through [`Tx::push`], which applies it with the same fold replay uses, so a
//! hand-written message sees its own earlier changes and the recorded list is exactly what
//! produced the new state. Dropping a `Tx` discards everything: a failing call changes nothing.

use super::apply::apply;
use super::state::State;
use crate::entry::{Actor, Change};
use crate::value::Value;

/// Everything a call may depend on besides the state: injected, never read from the machine.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// Wall-clock time of the call, microseconds since the epoch.
    pub now_us: i64,
    pub actor: Actor,
    /// Seed for the refs and uuids this call creates (random per call; the results are recorded).
    pub seed: [u8; 32],
}

impl Ctx {
    pub fn now_secs(&self) -> i64 {
        self.now_us.div_euclid(1_000_000)
    }
}

/// See [`Tx::savepoint`].
pub struct Savepoint {
    state: State,
    changes: usize,
}

pub struct Tx<'c> {
    pub state: State,
    pub ctx: &'c Ctx,
    /// The position this call's entry will take in the log.
    pub seq: u64,
    changes: Vec<Change>,
    ids_issued: u64,
}

impl<'c> Tx<'c> {
    pub fn new(state: State, ctx: &'c Ctx) -> Tx<'c> {
        let seq = state.seq + 1;
        Tx { state, ctx, seq, changes: Vec::new(), ids_issued: 0 }
    }

    /// Records a change and folds it into the working state.
    pub fn push(&mut self, change: Change) {
        apply(&mut self.state, self.seq, &change);
        self.changes.push(change);
    }

    /// A point to [`Tx::rollback`] to: undoes every change made after it.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint { state: self.state.clone(), changes: self.changes.len() }
    }

    pub fn rollback(&mut self, savepoint: Savepoint) {
        self.state = savepoint.state;
        self.changes.truncate(savepoint.changes);
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Ends the call: the new state and the changes that made it.
    pub fn finish(mut self) -> (State, Vec<Change>) {
        if !self.changes.is_empty() {
            self.state.seq = self.seq;
        }
        (self.state, self.changes)
    }

    /// A fresh version-4 UUID derived from the call's seed.
    pub fn new_uuid(&mut self) -> String {
        self.ids_issued += 1;
        crate::value::uuid_v4(blake3::keyed_hash(&self.ctx.seed, &self.ids_issued.to_le_bytes()).as_bytes())
    }

    /// A fresh object reference, `OpaqueRef:<uuid>`.
    pub fn new_ref(&mut self) -> String {
        format!("OpaqueRef:{}", self.new_uuid())
    }

    /// [`Tx::set`] of a field named at compile time (`schema::generated::field`).
    pub fn put(&mut self, key: crate::schema::FieldKey, reference: &str, value: Value) {
        self.set(&key.class().name, reference, key.name(), value);
    }

    /// Adds one key to a map field (the entry records the key, not the map).
    pub fn map_put(&mut self, class: &str, reference: &str, field: &str, key: Value, value: Value) {
        let (class, reference, field) = (class.to_string(), reference.to_string(), field.to_string());
        self.push(Change::MapPut { class, reference, field, key, value });
    }

    /// Removes one key from a map field.
    pub fn map_remove(&mut self, class: &str, reference: &str, field: &str, key: Value) {
        let (class, reference, field) = (class.to_string(), reference.to_string(), field.to_string());
        self.push(Change::MapRemove { class, reference, field, key });
    }

    /// Adds one member to a set field.
    pub fn set_add(&mut self, class: &str, reference: &str, field: &str, value: Value) {
        let (class, reference, field) = (class.to_string(), reference.to_string(), field.to_string());
        self.push(Change::SetAdd { class, reference, field, value });
    }

    /// Removes one member from a set field.
    pub fn set_remove(&mut self, class: &str, reference: &str, field: &str, value: Value) {
        let (class, reference, field) = (class.to_string(), reference.to_string(), field.to_string());
        self.push(Change::SetRemove { class, reference, field, value });
    }

    pub fn set(&mut self, class: &str, reference: &str, field: &str, value: Value) {
        self.push(Change::Set {
            class: class.to_string(),
            reference: reference.to_string(),
            field: field.to_string(),
            value,
        });
    }
}
