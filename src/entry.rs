//! `Entry` and `Change`: what one side-effecting call appends to the log.
//!
//! An entry records who called what (with secrets redacted) and the exact changes the engine
//! computed, including the refs, uuids and timestamps it chose. Replay folds the changes; it never
//! re-executes the call, so it is bit-exact by construction.

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// One state change. Class and field names (not indexes) keep the log readable across schema versions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// A new object with every stored field (derived relation sets excluded; the fold maintains them).
    Create { class: String, reference: String, fields: Vec<(String, Value)> },
    /// One field replaced by a new value.
    Set { class: String, reference: String, field: String, value: Value },
    /// The object is removed; relations pointing at it are cleared by the fold.
    Destroy { class: String, reference: String },
    /// A no-op modification that watchers see as `mod` (`event.inject`).
    Touch { class: String, reference: String },
    /// A local user account is created or replaced. The password is an argon2id PHC string.
    UserPut { name: String, role: String, password_hash: String },
    /// A local user account is removed.
    UserDelete { name: String },
    /// One key of a map field added (`add_to_<map>`): the entry stays small however large the
    /// map grows. (New variants go last: the log's codec numbers them in order.)
    MapPut { class: String, reference: String, field: String, key: Value, value: Value },
    /// One key of a map field removed (`remove_from_<map>`).
    MapRemove { class: String, reference: String, field: String, key: Value },
    /// One member added to a set field (`add_<set>`), if absent.
    SetAdd { class: String, reference: String, field: String, value: Value },
    /// One member removed from a set field (`remove_<set>`).
    SetRemove { class: String, reference: String, field: String, value: Value },
}

impl Change {
    /// The object this change is about, if any.
    pub fn object(&self) -> Option<(&str, &str)> {
        match self {
            Change::Create { class, reference, .. }
            | Change::Set { class, reference, .. }
            | Change::Destroy { class, reference }
            | Change::Touch { class, reference }
            | Change::MapPut { class, reference, .. }
            | Change::MapRemove { class, reference, .. }
            | Change::SetAdd { class, reference, .. }
            | Change::SetRemove { class, reference, .. } => Some((class, reference)),
            Change::UserPut { .. } | Change::UserDelete { .. } => None,
        }
    }
}

/// Who made a call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// The session ref, or empty for calls made without one (login, local CLI).
    pub session: String,
    /// The authenticated user name.
    pub user: String,
    /// The originator given at login.
    pub originator: String,
}

impl Actor {
    /// The server itself, doing `what` (first start, a garbage collection, an upgrade).
    pub fn server(what: &str) -> Actor {
        Actor { session: String::new(), user: "xenledger".into(), originator: what.into() }
    }
}

/// One log entry. `seq` starts at 1; the chain hash lives in the store's framing, not here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// Microseconds since the Unix epoch, from the writer's clock.
    pub timestamp_us: i64,
    pub actor: Actor,
    /// The wire method name as called (`VM.set_name_label`, `Async.VM.clone`, or an internal name).
    pub method: String,
    /// The call's parameters, with secrets replaced by `"(secret)"` and the session omitted.
    pub params: Vec<Value>,
    pub changes: Vec<Change>,
}
