//! Session bookkeeping (docs/xenapi-semantics.md §c): a login with the evictions its group's
//! limit requires, decided on the writer's state so that racing logins cannot all see room.

use std::collections::HashMap;

use super::super::implicit::{create_internal_at, destroy};
use super::super::state::State;
use super::super::tx::Tx;
use crate::auth;
use crate::schema::schema;
use crate::value::{Value, NULL_REF};

/// Sessions kept per originator (or per user name for non-root users) before the least
/// recently used are evicted (xapi_globs.ml `max_sessions_per_originator`).
pub const SESSIONS_PER_ORIGINATOR_MAX: usize = 500;
/// Idle sessions expire after this long (xapi_globs.ml `inactive_session_timeout`: 24 hours).
pub const SESSION_IDLE_TIMEOUT_SECS: i64 = 24 * 3600;

/// A login that passed its password check.
#[derive(Clone, Debug, PartialEq)]
pub struct Login {
    pub user: String,
    pub originator: String,
    pub superuser: bool,
    /// This host (the session's `this_host`).
    pub host: String,
    /// The node's runtime record of when each session was last used (session key → seconds),
    /// fresher than the logged `last_active`; it decides which sessions are least recently used.
    pub last_active: HashMap<String, i64>,
}

/// Creates the session under the digest of a ref drawn from the call's seed, after evicting what
/// the group's limit requires; answers the ref, which the log never holds.
pub(super) fn login(tx: &mut Tx, login: Login) -> Value {
    let class = schema().class("session").expect("session class");
    let now_secs = tx.ctx.now_secs();
    let group = group_key(&login.user, &login.originator);
    for r in expired_sessions(&tx.state, &login.last_active, now_secs, Some(&group)) {
        destroy(tx, class, &r);
    }
    let presented = tx.new_ref();
    let now = Value::DateTime(now_secs);
    create_internal_at(
        tx,
        "session",
        auth::session_key(&presented),
        vec![
            ("this_host", Value::Ref(login.host)),
            ("this_user", Value::Ref(NULL_REF.into())),
            ("last_active", now.clone()),
            ("validation_time", now),
            ("is_local_superuser", Value::Bool(login.superuser)),
            ("auth_user_name", Value::String(login.user)),
            ("originator", Value::String(login.originator)),
        ],
    );
    Value::Ref(presented)
}

/// Sessions to destroy: idle past the timeout, and the least recently used beyond the limit of
/// each group (xapi db_gc_util.ml `timeout_sessions_common`). `extra_in_group` names the group of a
/// login about to be added, which counts against that group's limit.
pub fn expired_sessions(
    state: &State,
    last_active: &HashMap<String, i64>,
    now: i64,
    extra_in_group: Option<&str>,
) -> Vec<String> {
    let class = schema().class("session").expect("session class");
    let (f_user, f_orig, f_last) = (
        class.field("auth_user_name").expect("field"),
        class.field("originator").expect("field"),
        class.field("last_active").expect("field"),
    );
    let mut groups: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    let mut out = Vec::new();
    for (r, o) in state.table(class.id).objects.iter() {
        let stored = match o.fields[f_last] {
            Value::DateTime(t) => t,
            _ => 0,
        };
        let last = last_active.get(&**r).copied().unwrap_or(stored);
        if now - last > SESSION_IDLE_TIMEOUT_SECS {
            out.push(r.to_string());
            continue;
        }
        groups
            .entry(group_key(o.fields[f_user].as_str().unwrap_or(""), o.fields[f_orig].as_str().unwrap_or("")))
            .or_default()
            .push((last, r.to_string()));
    }
    for (key, mut members) in groups {
        let limit = SESSIONS_PER_ORIGINATOR_MAX - usize::from(extra_in_group == Some(key.as_str()));
        if members.len() > limit {
            members.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            out.extend(members.into_iter().skip(limit).map(|(_, r)| r));
        }
    }
    out
}

/// The group a session counts in: root logins by originator, other users by name.
pub fn group_key(user: &str, originator: &str) -> String {
    if user.is_empty() || user == auth::ROOT {
        format!("originator:{originator}")
    } else {
        format!("user:{user}")
    }
}
