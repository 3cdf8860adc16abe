//! Sessions: login, validation, logout, the per-originator limit and idle expiry
//! (XENAPI-SEMANTICS.md §c). Logins and logouts are logged entries; `last_active` is runtime
//! state kept here in memory, never a durable write per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Caller, Node, Origin};
use crate::auth;
use crate::engine::generic::{create_internal, destroy};
use crate::engine::State;
use crate::entry::Actor;
use crate::error::ApiError;
use crate::ledger::Job;
use crate::schema::{schema, Class, Message};
use crate::value::{Value, NULL_REF};

/// Sessions kept per originator (or per user name for non-root users) before the least
/// recently used are evicted (xapi_globs.ml `max_sessions_per_originator`).
pub const SESSIONS_PER_ORIGINATOR_MAX: usize = 500;
/// Idle sessions expire after this long (xapi_globs.ml `inactive_session_timeout`).
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Pause before answering a failed login (xapi sleeps 5 s), without holding a thread.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Sessions {
    /// Session ref → last time it was used (seconds since the epoch).
    last_active: Mutex<HashMap<String, i64>>,
}

impl Sessions {
    /// Validates a session and touches its `last_active`.
    pub fn check(&self, state: &State, session: &str) -> Result<Caller, ApiError> {
        let class = schema().class("session").expect("session class");
        let object = state.get(class.id, session).ok_or_else(|| ApiError::session_invalid(session))?;
        let field = |name: &str| &object.fields[class.field(name).expect("session field")];
        let user = field("auth_user_name").as_str().unwrap_or("").to_string();
        let superuser = field("is_local_superuser").as_bool().unwrap_or(false);
        let role = if superuser {
            "pool-admin".to_string()
        } else {
            state.users.get(&user).map(|u| u.role.clone()).unwrap_or_else(|| "read-only".to_string())
        };
        self.touch(session, now_secs());
        Ok(Caller {
            session: session.to_string(),
            user,
            originator: field("originator").as_str().unwrap_or("").to_string(),
            superuser,
            role,
        })
    }

    /// Records a use of `session` at `secs`; allocates only for a session not seen before.
    fn touch(&self, session: &str, secs: i64) {
        let mut last_active = self.last_active.lock().expect("sessions lock");
        match last_active.get_mut(session) {
            Some(at) => *at = secs,
            None => {
                last_active.insert(session.to_string(), secs);
            }
        }
    }

    pub fn last_active(&self, session: &str) -> Option<i64> {
        self.last_active.lock().expect("sessions lock").get(session).copied()
    }

    /// Sets when a session was last used (tests of expiry and eviction drive time with this).
    #[doc(hidden)]
    pub fn set_last_active(&self, session: &str, secs: i64) {
        self.last_active.lock().expect("sessions lock").insert(session.to_string(), secs);
    }

    fn forget(&self, session: &str) {
        self.last_active.lock().expect("sessions lock").remove(session);
    }

    /// Sessions to destroy: idle past the timeout, and the least recently used beyond the limit
    /// of each group (xapi db_gc_util.ml `timeout_sessions_common`).
    pub fn expired(&self, state: &State, now: i64, extra_in_group: Option<&str>) -> Vec<String> {
        let class = schema().class("session").expect("session class");
        let (f_user, f_orig, f_last) = (
            class.field("auth_user_name").expect("field"),
            class.field("originator").expect("field"),
            class.field("last_active").expect("field"),
        );
        let active = self.last_active.lock().expect("sessions lock");
        let mut groups: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        let mut out = Vec::new();
        for (r, o) in state.table(class.id).objects.iter() {
            let stored = match o.fields[f_last] {
                Value::DateTime(t) => t,
                _ => 0,
            };
            let last = active.get(r).copied().unwrap_or(stored);
            if now - last > SESSION_IDLE_TIMEOUT.as_secs() as i64 {
                out.push(r.clone());
                continue;
            }
            groups
                .entry(group_key(o.fields[f_user].as_str().unwrap_or(""), o.fields[f_orig].as_str().unwrap_or("")))
                .or_default()
                .push((last, r.clone()));
        }
        for (key, mut members) in groups {
            // A login about to be added to this group counts against its limit.
            let limit = SESSIONS_PER_ORIGINATOR_MAX - usize::from(extra_in_group == Some(key.as_str()));
            if members.len() > limit {
                members.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                out.extend(members.into_iter().skip(limit).map(|(_, r)| r));
            }
        }
        out
    }
}

/// The group a session counts in: root logins by originator, other users by name.
pub fn group_key(user: &str, originator: &str) -> String {
    if user.is_empty() || user == auth::ROOT {
        format!("originator:{originator}")
    } else {
        format!("user:{user}")
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `session.login_with_password`: checks the password off the async threads, then logs the new
/// session (and any evictions) as one entry.
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
        tokio::time::sleep(AUTH_FAILURE_DELAY).await;
        // xapi sends [uname, message] although the datamodel documents no parameters.
        return Err(ApiError::new("SESSION_AUTHENTICATION_FAILED", [uname, "Authentication failure"]));
    }
    let uname_logged = if origin.unix && uname.is_empty() { auth::ROOT.to_string() } else { uname.to_string() };
    let evict = node.sessions.expired(&snapshot, now_secs(), Some(&group_key(&uname_logged, originator)));
    let host = node.host.clone();
    let originator_owned = originator.to_string();
    let user_for_job = uname_logged.clone();
    let job = Job {
        actor: Actor { session: String::new(), user: uname_logged.clone(), originator: originator.to_string() },
        method: "session.login_with_password".into(),
        params: vec![Value::String(uname_logged.clone()), Value::String("(secret)".into())],
        work: Box::new(move |tx| {
            let class = schema().class("session").expect("session class");
            for r in &evict {
                if tx.state.exists(class.id, r) {
                    destroy(tx, class, r);
                }
            }
            let now = Value::DateTime(tx.ctx.now_secs());
            let r = create_internal(
                tx,
                "session",
                vec![
                    ("this_host", Value::Ref(host)),
                    ("this_user", Value::Ref(NULL_REF.into())),
                    ("last_active", now.clone()),
                    ("validation_time", now),
                    ("is_local_superuser", Value::Bool(superuser)),
                    ("auth_user_name", Value::String(user_for_job)),
                    ("originator", Value::String(originator_owned)),
                ],
            );
            Ok(Value::Ref(r))
        }),
    };
    let (value, _) = node.ledger.call(job).await?;
    if let Value::Ref(r) = &value {
        node.sessions.last_active.lock().expect("sessions lock").insert(r.clone(), now_secs());
    }
    Ok(value)
}

/// Hand-written `session.*` messages; `None` for anything else.
pub async fn session_message(
    node: &Arc<Node>,
    caller: &Caller,
    class: &Class,
    msg: &Message,
    args: &[Value],
) -> Option<Result<Value, ApiError>> {
    if class.name != "session" {
        return None;
    }
    let void = Ok(Value::String(String::new()));
    Some(match msg.name.as_str() {
        "logout" | "local_logout" => {
            let session = caller.session.clone();
            let job = Job {
                actor: caller.actor(),
                method: msg.wire_name.clone(),
                params: vec![],
                work: Box::new(move |tx| {
                    let class = schema().class("session").expect("session class");
                    if tx.state.exists(class.id, &session) {
                        destroy(tx, class, &session);
                    }
                    Ok(Value::String(String::new()))
                }),
            };
            let result = node.ledger.call(job).await.map(|(v, _)| v);
            node.sessions.forget(&caller.session);
            result
        }
        "get_all_subject_identifiers" => Ok(Value::Set(Vec::new())),
        "logout_subject_identifier" => void,
        "get_last_active" => {
            let snapshot = node.ledger.snapshot();
            let r = args[0].as_str().unwrap_or("");
            match snapshot.get(class.id, r) {
                Some(_) => Ok(Value::DateTime(node.sessions.last_active(r).unwrap_or_else(now_secs))),
                None => Err(ApiError::handle_invalid("session", r)),
            }
        }
        "get_record" => {
            let snapshot = node.ledger.snapshot();
            let r = args[0].as_str().unwrap_or("");
            match snapshot.get(class.id, r) {
                Some(o) => {
                    let mut record = snapshot.record(class, o).materialized();
                    if let (Value::Record(members), Some(t)) = (&mut record, node.sessions.last_active(r)) {
                        if let Some(slot) = members.iter_mut().find(|(k, _)| k == "last_active") {
                            slot.1 = Value::DateTime(t);
                        }
                    }
                    Ok(record)
                }
                None => Err(ApiError::handle_invalid("session", r)),
            }
        }
        "get_rbac_permissions" => {
            let snapshot = node.ledger.snapshot();
            let r = args[0].as_str().unwrap_or("");
            if !snapshot.exists(class.id, r) {
                return Some(Err(ApiError::handle_invalid("session", r)));
            }
            let target = match node.sessions.check(&snapshot, r) {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            if target.superuser {
                Ok(Value::Set(Vec::new()))
            } else {
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
        }
        "change_password" => change_password(node, caller, args).await,
        _ => return None,
    })
}

/// `session.change_password(old, new)`: only for local superuser sessions; xapi ignores `old`.
async fn change_password(node: &Arc<Node>, caller: &Caller, args: &[Value]) -> Result<Value, ApiError> {
    if !caller.superuser {
        return Err(ApiError::new("USER_IS_NOT_LOCAL_SUPERUSER", [caller.user.as_str()]));
    }
    let new = args.get(1).and_then(Value::as_str).unwrap_or("").to_string();
    if new.is_empty() {
        return Err(ApiError::new("CHANGE_PASSWORD_REJECTED", ["the new password is empty"]));
    }
    let user = caller.user.clone();
    let phc = tokio::task::spawn_blocking(move || auth::hash_password(&new))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let role = node.ledger.snapshot().users.get(&user).map(|u| u.role.clone()).unwrap_or_else(|| "pool-admin".into());
    let job = Job {
        actor: caller.actor(),
        method: "session.change_password".into(),
        params: vec![Value::String("(secret)".into()), Value::String("(secret)".into())],
        work: Box::new(move |tx| {
            tx.push(crate::entry::Change::UserPut { name: user, role, password_hash: phc });
            Ok(Value::String(String::new()))
        }),
    };
    node.ledger.call(job).await.map(|(v, _)| v)
}

/// Destroys expired sessions now (called periodically by the server).
pub async fn collect_garbage(node: &Arc<Node>) -> Result<usize, ApiError> {
    let expired = node.sessions.expired(&node.ledger.snapshot(), now_secs(), None);
    if expired.is_empty() {
        return Ok(0);
    }
    let count = expired.len();
    for r in &expired {
        node.sessions.forget(r);
    }
    let job = Job {
        actor: Actor { session: String::new(), user: "xenledger".into(), originator: "session-gc".into() },
        method: "session.gc".into(),
        params: expired.iter().map(|r| Value::Ref(r.clone())).collect(),
        work: Box::new(move |tx| {
            let class = schema().class("session").expect("session class");
            for r in &expired {
                if tx.state.exists(class.id, r) {
                    destroy(tx, class, r);
                }
            }
            Ok(Value::String(String::new()))
        }),
    };
    node.ledger.call(job).await.map(|_| count)
}
