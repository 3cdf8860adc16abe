//! Sessions: login, validation, logout, the per-originator limit and idle expiry
//! (docs/xenapi-semantics.md §c). Logins and logouts are logged entries; `last_active` is runtime
//! state kept here in memory, never a durable write per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Caller, Node, Origin};
use crate::auth;
use crate::clock::Clock;
use crate::engine::internal::{expired_sessions, InternalOp, Login, UserChange};
use crate::engine::State;
use crate::entry::Actor;
use crate::error::{ApiError, ErrorCode};
use crate::ledger::Job;
use crate::schema::generated::{class, field as f};
use crate::schema::{schema, Message};
use crate::value::Value;

/// Pause before answering a failed login (xapi sleeps 5 s), without holding a thread.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(5);

/// Runtime state of the sessions: when each was last used. Keyed, like the sessions themselves,
/// by [`auth::session_key`]: the refs clients hold are never kept here.
pub struct Sessions {
    /// Session key → last time it was used (seconds since the epoch). A login's job carries a copy,
    /// which decides the least recently used sessions of its group.
    last_active: Mutex<HashMap<String, i64>>,
    clock: Arc<dyn Clock>,
}

impl Sessions {
    pub fn new(clock: Arc<dyn Clock>) -> Sessions {
        Sessions { last_active: Mutex::default(), clock }
    }

    /// Validates a session ref as a client presents it and touches its `last_active`.
    pub fn check(&self, state: &State, presented: &str) -> Result<Caller, ApiError> {
        self.check_key(state, &auth::session_key(presented), presented)
    }

    /// [`Sessions::check`] for a session known by its key (a caller's own, checked again while it
    /// waits). `presented` is what an error names: the ref as the caller gave it.
    pub fn check_key(&self, state: &State, key: &str, presented: &str) -> Result<Caller, ApiError> {
        // By the generated keys: every call (and every wake of an `event.from`) passes here.
        let object = state.get(class::SESSION.get().id, key).ok_or_else(|| ApiError::session_invalid(presented))?;
        let field = |key: crate::schema::FieldKey| &object.fields[key.index];
        let user = field(f::session::AUTH_USER_NAME).as_str().unwrap_or("").to_string();
        let superuser = field(f::session::IS_LOCAL_SUPERUSER).as_bool().unwrap_or(false);
        let role = if superuser {
            "pool-admin".to_string()
        } else {
            state.users.get(&user).map(|u| u.role.clone()).unwrap_or_else(|| "read-only".to_string())
        };
        self.touch(key, self.clock.now_secs());
        Ok(Caller {
            session: key.to_string(),
            presented: presented.to_string(),
            user,
            originator: field(f::session::ORIGINATOR).as_str().unwrap_or("").to_string(),
            superuser,
            role,
        })
    }

    /// Records a use of the session `key` at `secs`; allocates only for a session not seen before.
    fn touch(&self, key: &str, secs: i64) {
        let mut last_active = self.last_active.lock().expect("sessions lock");
        match last_active.get_mut(key) {
            Some(at) => *at = secs,
            None => {
                last_active.insert(key.to_string(), secs);
            }
        }
    }

    pub fn last_active(&self, key: &str) -> Option<i64> {
        self.last_active.lock().expect("sessions lock").get(key).copied()
    }

    fn forget(&self, key: &str) {
        self.last_active.lock().expect("sessions lock").remove(key);
    }

    /// Forgets the sessions `state` no longer has (a login's evictions).
    fn forget_ended(&self, state: &State) {
        let class = schema().class("session").expect("session class");
        self.last_active.lock().expect("sessions lock").retain(|key, _| state.exists(class.id, key));
    }

    /// Sessions to destroy now; see [`expired_sessions`].
    pub fn expired(&self, state: &State, now: i64, extra_in_group: Option<&str>) -> Vec<String> {
        expired_sessions(state, &self.last_active.lock().expect("sessions lock"), now, extra_in_group)
    }
}

/// `session.login_with_password`: checks the password off the async threads, then logs the new
/// session (and any evictions) as one entry.
///
/// The evictions are chosen inside the job, on the writer's state, so that logins racing each
/// other cannot all see room in their group: the per-originator limit holds under any burst. The
/// session is stored under the digest of its ref ([`auth::session_key`]); the ref itself is drawn
/// from the job's seed, never logged, and returned only to this caller.
pub async fn login(
    node: &Arc<Node>,
    uname: &str,
    pwd: &str,
    originator: &str,
    origin: &Origin,
) -> Result<Value, ApiError> {
    let snapshot = node.ledger.snapshot();
    let superuser = origin.unix || uname == auth::ROOT;
    let ok = if origin.unix {
        true
    } else {
        match snapshot.users.get(uname) {
            Some(user) => {
                let (pwd, phc) = (pwd.to_string(), user.password_hash.clone());
                tokio::task::spawn_blocking(move || auth::verify_password(&pwd, &phc)).await.unwrap_or(false)
            }
            None => false,
        }
    };
    if !ok {
        node.ledger.clock().sleep(AUTH_FAILURE_DELAY).await;
        // xapi sends [uname, message] although the datamodel documents no parameters.
        return Err(ApiError::new(ErrorCode::SessionAuthenticationFailed, [uname, "Authentication failure"]));
    }
    let user = if origin.unix && uname.is_empty() { auth::ROOT.to_string() } else { uname.to_string() };
    let last_active = node.sessions.last_active.lock().expect("sessions lock").clone();
    let actor = Actor { session: String::new(), user: user.clone(), originator: originator.to_string() };
    let op = Login { user, originator: originator.to_string(), superuser, host: node.host.clone(), last_active };
    let (value, _) = node.ledger.call(Job::internal(actor, InternalOp::Login(Box::new(op)))).await?;
    node.sessions.forget_ended(&node.ledger.snapshot());
    if let Value::Ref(presented) = &value {
        node.sessions.touch(&auth::session_key(presented), node.ledger.clock().now_secs());
    }
    Ok(value)
}

/// `session.logout` / `local_logout`: ends the caller's own session.
pub async fn logout(node: &Arc<Node>, caller: &Caller, msg: &Message) -> Result<Value, ApiError> {
    let op = InternalOp::Logout { session: caller.session.clone(), local: msg.name == "local_logout" };
    let job = Job::internal(caller.actor(), op);
    let result = node.ledger.call(job).await.map(|(v, _)| v);
    node.sessions.forget(&caller.session);
    result
}

/// `session.get_last_active(self)`: the runtime time of last use, else the logged one.
pub fn get_last_active(node: &Node, args: &[Value]) -> Result<Value, ApiError> {
    let class = schema().class("session").expect("session class");
    let r = args[0].as_str().unwrap_or("");
    match node.ledger.snapshot().get(class.id, r) {
        Some(_) => Ok(Value::DateTime(node.sessions.last_active(r).unwrap_or_else(|| node.ledger.clock().now_secs()))),
        None => Err(ApiError::handle_invalid("session", r)),
    }
}

/// `session.get_record(self)`, with the runtime `last_active`.
pub fn get_record(node: &Node, args: &[Value]) -> Result<Value, ApiError> {
    let class = schema().class("session").expect("session class");
    let snapshot = node.ledger.snapshot();
    let r = args[0].as_str().unwrap_or("");
    let o = snapshot.get(class.id, r).ok_or_else(|| ApiError::handle_invalid("session", r))?;
    let mut record = snapshot.record(class, o).materialized();
    if let (Value::Record(members), Some(t)) = (&mut record, node.sessions.last_active(r)) {
        if let Some(slot) = members.iter_mut().find(|(k, _)| k == "last_active") {
            slot.1 = Value::DateTime(t);
        }
    }
    Ok(record)
}

/// `session.get_rbac_permissions(self)`: every permission of the session's role (none listed for
/// a superuser, as xapi).
pub fn get_rbac_permissions(node: &Node, args: &[Value]) -> Result<Value, ApiError> {
    let class = schema().class("session").expect("session class");
    let snapshot = node.ledger.snapshot();
    let r = args[0].as_str().unwrap_or("");
    if !snapshot.exists(class.id, r) {
        return Err(ApiError::handle_invalid("session", r));
    }
    let target = node.sessions.check_key(&snapshot, r, r)?;
    if target.superuser {
        return Ok(Value::Set(Vec::new()));
    }
    Ok(Value::Set(
        schema()
            .classes
            .iter()
            .flat_map(|c| c.messages.iter())
            .filter(|m| m.allows_role(&target.role))
            .map(|m| Value::String(m.permission.clone()))
            .collect(),
    ))
}

/// `session.change_password(old, new)`: only for local superuser sessions; xapi ignores `old`.
pub async fn change_password(node: &Arc<Node>, caller: &Caller, args: &[Value]) -> Result<Value, ApiError> {
    if !caller.superuser {
        return Err(ApiError::new(ErrorCode::UserIsNotLocalSuperuser, [caller.user.as_str()]));
    }
    let new = args.get(1).and_then(Value::as_str).unwrap_or("").to_string();
    if new.is_empty() {
        return Err(ApiError::new(ErrorCode::ChangePasswordRejected, ["the new password is empty"]));
    }
    let user = caller.user.clone();
    let phc = tokio::task::spawn_blocking(move || auth::hash_password(&new))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let role = node.ledger.snapshot().users.get(&user).map(|u| u.role.clone()).unwrap_or_else(|| "pool-admin".into());
    let op = InternalOp::UserPut { name: user, role, password_hash: phc, why: UserChange::ChangePassword };
    let job = Job::internal(caller.actor(), op);
    node.ledger.call(job).await.map(|(v, _)| v)
}

/// Destroys expired sessions now (called periodically by the server).
pub async fn collect_garbage(node: &Arc<Node>) -> Result<usize, ApiError> {
    let expired = node.sessions.expired(&node.ledger.snapshot(), node.ledger.clock().now_secs(), None);
    if expired.is_empty() {
        return Ok(0);
    }
    let count = expired.len();
    for r in &expired {
        node.sessions.forget(r);
    }
    let job = Job::internal(Actor::server("session-gc"), InternalOp::SessionGc(expired));
    node.ledger.call(job).await.map(|_| count)
}
