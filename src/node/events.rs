//! `event.from`, `event.inject` and the legacy `register`/`next`, served from the log position.
//!
//! A token names a log position, in xapi's shape (`"%020d,%020d"`: position, then 0 for the
//! message generation), so tokens stay valid across restarts and re-logins. Waiters park on the
//! ledger's committed-position watch — no thread each — and wake when the writer commits.
//! Every object carries the position that created it and the one that last changed it, and
//! deletions are kept with theirs, so a token from any earlier position sees every `add`, `mod`
//! and `del` since (docs/xenapi-semantics.md §e.1; unlike xapi, deletions are never dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Caller, Node};
use crate::clock;
use crate::engine::internal::InternalOp;
use crate::engine::State;
use crate::error::{ApiError, ErrorCode};
use crate::ledger::Job;
use crate::schema::{schema, Class, ClassId};
use crate::value::{EncodingCache, Members, Value};
use crate::vault::Vault;

/// Longest wait `event.from`/`event.next` accept (xapi's default and overflow value: 24 h).
pub const EVENT_WAIT_MAX: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Subscription {
    All,
    Class(ClassId),
    Object(ClassId, String),
}

/// Per-session registrations of the legacy API.
#[derive(Default)]
pub struct Registrations {
    sessions: Mutex<HashMap<String, Registration>>,
}

#[derive(Clone, Default)]
struct Registration {
    classes: Vec<String>,
    /// Position up to which this session has been sent events.
    seen: u64,
}

/// Parses `"<gen>,<msggen>"` (or `""`, the beginning).
fn parse_token(token: &str) -> Result<u64, ApiError> {
    if token.is_empty() {
        return Ok(0);
    }
    let bad = || ApiError::new(ErrorCode::EventFromTokenParseFailure, [token]);
    let (a, b) = token.split_once(',').ok_or_else(bad)?;
    let seq: i64 = a.trim().parse().map_err(|_| bad())?;
    let _msg: i64 = b.trim().parse().map_err(|_| bad())?;
    u64::try_from(seq).map_err(|_| bad())
}

pub fn format_token(seq: u64) -> String {
    format!("{seq:020},{:020}", 0)
}

fn parse_subscriptions(classes: &[String]) -> Vec<Subscription> {
    let s = schema();
    let mut out = Vec::new();
    for entry in classes {
        if entry == "*" {
            out.push(Subscription::All);
            continue;
        }
        let (class, reference) = match entry.split_once('/') {
            Some((c, r)) => (c, Some(r)),
            None => (entry.as_str(), None),
        };
        // Unknown classes subscribe to nothing, as xapi's splitter accepts them.
        let Some(c) = s.class_by_lower(class) else { continue };
        out.push(match reference {
            Some(r) => Subscription::Object(c.id, r.to_string()),
            None => Subscription::Class(c.id),
        });
    }
    out
}

fn wants_class(subs: &[Subscription], class: ClassId) -> bool {
    subs.iter().any(|s| match s {
        Subscription::All => true,
        Subscription::Class(c) | Subscription::Object(c, _) => *c == class,
    })
}

fn wants(subs: &[Subscription], class: ClassId, reference: &str) -> bool {
    subs.iter().any(|s| match s {
        Subscription::All => true,
        Subscription::Class(c) => *c == class,
        Subscription::Object(c, r) => *c == class && r == reference,
    })
}

/// Who is reading events: the role whose read permission each event must pass.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Reader {
    Superuser,
    Role(String),
}

impl Reader {
    fn of(caller: &Caller) -> Reader {
        if caller.superuser {
            Reader::Superuser
        } else {
            Reader::Role(caller.role.clone())
        }
    }

    /// Whether this reader may see events of `class`: those that pass the read permission of the
    /// class's `get_record` (`secret` needs pool-operator). Sessions are never events, for anyone:
    /// xapi's session class has none, and a session's identity is a credential.
    fn sees(&self, class: &Class) -> bool {
        if class.name == "session" {
            return false;
        }
        match self {
            Reader::Superuser => true,
            Reader::Role(role) => class.message("get_record").is_some_and(|m| m.allows_role(role)),
        }
    }
}

/// The events after position `since`, one per object (latest snapshot), adds, mods, then dels,
/// of the classes `reader` may read. Secret values in snapshots are opened with `vault`.
fn collect(
    state: &State,
    subs: &[Subscription],
    since: u64,
    reader: &Reader,
    vault: &Vault,
    legacy_time: Option<&str>,
) -> Vec<Value> {
    let s = schema();
    let mut adds = Vec::new();
    let mut mods = Vec::new();
    let mut dels = Vec::new();
    let shown = |c: &Class| has_events(c) && reader.sees(c) && wants_class(subs, c.id);
    // The least (position, ref) after `since`: the lower bound of every table's range.
    let after = (since + 1, crate::engine::state::Ref::from(""));
    for class in s.classes.iter().filter(|c| shown(c)) {
        let table = state.table(class.id);
        for (_, r) in table.by_modified.range(after.clone()..) {
            let Some(o) = table.objects.get(r) else { continue };
            if !wants(subs, class.id, r) {
                continue;
            }
            let op = if o.created > since { "add" } else { "mod" };
            let snapshot = crate::vault::reveal_snapshot(vault, class, state.record(class, o));
            let event = event_record(o.modified, &class.name_lower, op, r, Some(snapshot), legacy_time);
            if op == "add" {
                adds.push(event)
            } else {
                mods.push(event)
            }
        }
    }
    // Deletions are kept in log order: find the first one after `since`.
    let start = state
        .deletions
        .binary_search_by(|d| if d.seq <= since { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater })
        .unwrap_or_else(|i| i);
    for d in state.deletions.iter().skip(start) {
        if d.created <= since && shown(&s.classes[d.class]) && wants(subs, d.class, &d.reference) {
            dels.push(event_record(d.seq, &s.classes[d.class].name_lower, "del", &d.reference, None, legacy_time));
        }
    }
    adds.extend(mods);
    adds.extend(dels);
    adds
}

/// Whether a class's changes are events: every class kept in the database, and `message`, which
/// xapi keeps outside it but reports all the same (docs/xenapi-semantics.md §e.2). `valid_ref_counts`
/// counts only the database's classes, as xapi's does.
fn has_events(class: &Class) -> bool {
    class.stored || class.name == "message"
}

fn event_record(
    id: u64,
    class: &str,
    op: &str,
    reference: &str,
    snapshot: Option<Value>,
    legacy_time: Option<&str>,
) -> Value {
    // Messages live outside xapi's database, and their events carry id "0"
    // (docs/xenapi-semantics.md §e.2, xapi_event.ml `from_inner`).
    let id = if class == "message" { "0".to_string() } else { id.to_string() };
    let mut members = vec![
        ("id".to_string(), Value::String(id)),
        ("timestamp".to_string(), Value::String(legacy_time.unwrap_or("0.0").to_string())),
        ("class".to_string(), Value::String(class.to_string())),
        ("operation".to_string(), Value::String(op.to_string())),
        ("ref".to_string(), Value::String(reference.to_string())),
    ];
    if let Some(snap) = snapshot {
        members.push(("snapshot".to_string(), snap));
    }
    Value::Record(members)
}

/// Row counts of every stored class, by lower-cased name (`valid_ref_counts`).
fn ref_counts(state: &State) -> Value {
    Value::Record(
        schema()
            .classes
            .iter()
            .filter(|c| c.stored)
            .map(|c| {
                (c.name_lower.clone(), Value::Int32(i32::try_from(state.table(c.id).objects.len()).unwrap_or(i32::MAX)))
            })
            .collect(),
    )
}

fn timeout_of(value: f64) -> Duration {
    if value.is_finite() && value > 0.0 {
        Duration::from_secs_f64(value.min(EVENT_WAIT_MAX.as_secs_f64()))
    } else {
        Duration::ZERO
    }
}

/// One `event.from` answer: `{events, valid_ref_counts, token}`. Every waiter woken by the same
/// commit with the same token and subscription is sent this very value, built and encoded once.
#[derive(Debug)]
pub struct Batch {
    /// A `Value::Set` of event records.
    events: Value,
    ref_counts: Value,
    token: Value,
    encodings: EncodingCache,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.events.as_set().is_none_or(<[Value]>::is_empty)
    }
}

impl Members for Batch {
    fn for_each_member(&self, f: &mut dyn FnMut(&str, &Value)) {
        f("events", &self.events);
        f("valid_ref_counts", &self.ref_counts);
        f("token", &self.token);
    }

    fn encoding_cache(&self) -> Option<&EncodingCache> {
        Some(&self.encodings)
    }
}

/// The batches answered at the current log position, by (token, subscription).
#[derive(Default)]
pub struct BatchCache {
    at: Mutex<CachedBatches>,
}

/// The log position the batches were built at, and the batches by (token, subscription).
type CachedBatches = (u64, HashMap<BatchKey, Arc<Batch>>);

/// What an answer depends on besides the log position: the caller's token, subscription and role.
type BatchKey = (u64, Vec<Subscription>, Reader);

/// Distinct (token, subscription) pairs kept per position; beyond it the cache starts over.
const BATCHES_CACHED_MAX: usize = 1024;

impl BatchCache {
    fn get(&self, state: &State, vault: &Vault, key: &BatchKey) -> Arc<Batch> {
        {
            let at = self.at.lock().expect("batch cache lock");
            if at.0 == state.seq {
                if let Some(batch) = at.1.get(key) {
                    return batch.clone();
                }
            }
        }
        let (since, subs, reader) = (key.0, &key.1, &key.2);
        let batch = Arc::new(Batch {
            events: Value::Set(collect(state, subs, since, reader, vault, None)),
            ref_counts: ref_counts(state),
            token: Value::String(format_token(state.seq.max(since))),
            encodings: EncodingCache::default(),
        });
        let mut at = self.at.lock().expect("batch cache lock");
        if at.0 != state.seq || at.1.len() >= BATCHES_CACHED_MAX {
            *at = (state.seq, HashMap::new());
        }
        at.1.insert(key.clone(), batch.clone());
        batch
    }
}

/// `event.from(classes, token, timeout)`.
pub async fn from(
    node: &Arc<Node>,
    caller: &Caller,
    classes: &[String],
    token: &str,
    timeout: f64,
) -> Result<Value, ApiError> {
    let since = parse_token(token)?;
    let key: BatchKey = (since, parse_subscriptions(classes), Reader::of(caller));
    let clock = node.ledger.clock().clone();
    let deadline_us = clock::deadline_us(&*clock, timeout_of(timeout));
    let mut committed = node.ledger.committed();
    loop {
        committed.borrow_and_update();
        let state = node.ledger.snapshot();
        node.sessions.check_key(&state, &caller.session, &caller.presented)?;
        if since != 0 && since < state.events_horizon {
            return Err(ApiError::new(ErrorCode::EventsLost, Vec::<String>::new()));
        }
        let batch = node.event_batches.get(&state, node.ledger.vault(), &key);
        if !batch.is_empty() || clock.now_us() >= deadline_us {
            return Ok(Value::Lazy(batch));
        }
        // Parks without a thread until the writer commits or the time is up.
        let _parked = super::metrics::Parked::new(node);
        clock::until(&*clock, deadline_us, committed.changed()).await;
    }
}

/// `event.inject(class, ref)`: a no-op modification watchers see as `mod`.
pub async fn inject(node: &Arc<Node>, caller: &Caller, class: &str, reference: &str) -> Result<Value, ApiError> {
    let c = schema().class(class).filter(|c| c.stored).ok_or_else(|| ApiError::handle_invalid(class, reference))?;
    if !node.ledger.snapshot().exists(c.id, reference) {
        return Err(ApiError::handle_invalid(class, reference));
    }
    let op = InternalOp::EventInject { class: c.name.clone(), reference: reference.to_string() };
    let job = Job::internal(caller.actor(), op);
    let (_, seq) = node.ledger.call(job).await?;
    Ok(Value::String(format_token(seq.saturating_sub(1))))
}

impl Registrations {
    pub fn register(&self, session: &str, classes: &[String], now_seq: u64) {
        let mut map = self.sessions.lock().expect("registrations lock");
        let reg = map.entry(session.to_string()).or_insert_with(|| Registration { classes: Vec::new(), seen: now_seq });
        for c in classes {
            if !reg.classes.contains(c) {
                reg.classes.push(c.clone());
            }
        }
    }

    pub fn unregister(&self, session: &str, classes: &[String]) {
        if let Some(reg) = self.sessions.lock().expect("registrations lock").get_mut(session) {
            reg.classes.retain(|c| !classes.contains(c));
        }
    }

    fn get(&self, session: &str) -> Option<Registration> {
        self.sessions.lock().expect("registrations lock").get(session).cloned()
    }

    fn advance(&self, session: &str, seq: u64) {
        if let Some(reg) = self.sessions.lock().expect("registrations lock").get_mut(session) {
            reg.seen = reg.seen.max(seq);
        }
    }
}

/// Legacy `event.next()`: blocks until events for the session's registration exist. A logout
/// ends the wait with `SESSION_INVALID`.
pub async fn next(node: &Arc<Node>, caller: &Caller) -> Result<Value, ApiError> {
    let mut committed = node.ledger.committed();
    loop {
        committed.borrow_and_update();
        let state = node.ledger.snapshot();
        node.sessions.check_key(&state, &caller.session, &caller.presented)?;
        let reg = node
            .registrations
            .get(&caller.session)
            .ok_or_else(|| ApiError::new(ErrorCode::SessionNotRegistered, [caller.session.as_str()]))?;
        if reg.seen < state.events_horizon {
            return Err(ApiError::new(ErrorCode::EventsLost, Vec::<String>::new()));
        }
        let subs = parse_subscriptions(&reg.classes);
        let now = format!("{}.", node.ledger.clock().now_secs());
        let events = collect(&state, &subs, reg.seen, &Reader::of(caller), node.ledger.vault(), Some(&now));
        if !events.is_empty() {
            node.registrations.advance(&caller.session, state.seq);
            return Ok(Value::Set(events));
        }
        let clock = node.ledger.clock();
        let _parked = super::metrics::Parked::new(node);
        clock::until(&**clock, clock::deadline_us(&**clock, EVENT_WAIT_MAX), committed.changed()).await;
    }
}

/// The class names of `event.register`/`unregister`/`from`'s first argument.
pub fn class_names(v: &Value) -> Vec<String> {
    v.as_set().map(|s| s.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// `event.from(classes, token, timeout)` from its checked arguments.
pub async fn from_args(node: &Arc<Node>, caller: &Caller, args: &[Value]) -> Result<Value, ApiError> {
    let timeout = match &args[2] {
        Value::Float(f) => *f,
        Value::Int(i) => *i as f64,
        _ => 0.0,
    };
    from(node, caller, &class_names(&args[0]), args[1].as_str().unwrap_or(""), timeout).await
}
