//! `Node`: one running xenledger — the ledger plus the call path every adapter shares.
//!
//! A call goes: method lookup → argument count → argument types → session check → RBAC → read
//! (served from the current snapshot, concurrently) or write (a job for the ledger's writer).
//! This is the only place that decides what a call means; the wire adapters only translate.

pub mod backup;
mod bootstrap;
pub mod metrics;
pub mod events;
pub mod operations;
mod sessions;
pub mod tasks;
pub mod transfer;

use std::path::Path;
use std::sync::Arc;

pub use crate::engine::internal::SESSIONS_PER_ORIGINATOR_MAX;
pub use bootstrap::FirstStart;
pub use sessions::{collect_garbage, Sessions, AUTH_FAILURE_DELAY};

use crate::auth;
use crate::clock::{Clock, SystemClock};
use crate::engine;
use crate::engine::explicit::{self, Mode, Runtime};
use crate::engine::Route;
use crate::entry::Actor;
use crate::error::{ApiError, ErrorCode};
use crate::ledger::{Job, Ledger, LedgerError};
use crate::schema::{schema, Class, Message, Ty};
use crate::value::Value;
use crate::vault;

/// Where a call came from; the unix socket is trusted as root, as xapi's is.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub unix: bool,
    pub peer: String,
}

/// What an HTTP request said about the task of an `Async.` call (xapi context.ml `of_http_req`).
#[derive(Clone, Debug, Default)]
pub struct TaskHints {
    /// `subtask-of: <task ref>`: the new task becomes a subtask of this one.
    pub subtask_of: Option<String>,
    /// `X-Http-Other-Config-<k>: v` headers, as `(k, v)`: stored as `http:<k>` in the task's other_config.
    pub other_config: Vec<(String, String)>,
}

impl TaskHints {
    /// Reads the hints from request headers (names lower-cased).
    pub fn from_headers(headers: &[(String, String)]) -> TaskHints {
        let mut hints = TaskHints::default();
        for (name, value) in headers {
            if name == "subtask-of" {
                hints.subtask_of = Some(value.trim().to_string());
            } else if let Some(key) = name.strip_prefix("x-http-other-config-") {
                hints.other_config.push((key.to_string(), value.clone()));
            }
        }
        hints
    }
}

/// What a call answers. `Bare` is `system.listMethods`, which xapi sends without the
/// Status/Value envelope.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Rpc(Result<Value, ApiError>),
    Bare(Value),
}

/// The caller of an authenticated message.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The session's key ([`auth::session_key`]): what the log and the runtime tables use.
    pub session: String,
    /// The session ref as this caller presented it, for the errors sent back to this caller only.
    pub presented: String,
    pub user: String,
    pub originator: String,
    pub superuser: bool,
    pub role: String,
}

impl Caller {
    /// Who the log records as making the caller's changes.
    pub fn actor(&self) -> Actor {
        Actor { session: self.session.clone(), user: self.user.clone(), originator: self.originator.clone() }
    }
}

pub struct Node {
    pub ledger: Ledger,
    pub sessions: Sessions,
    pub registrations: events::Registrations,
    /// `event.from` answers at the current position, shared by the waiters they wake.
    pub event_batches: events::BatchCache,
    /// Who created each task this run (xapi's ownership rule for `task.cancel`/`task.destroy`).
    pub task_owners: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// `Async.` tasks whose call is still running this run, and those of them waiting for their turn.
    pub running_tasks: std::sync::Mutex<std::collections::HashSet<String>>,
    pub waiting_tasks: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Tasks of long operations running this run (sync or `Async.`), and those of them asked to
    /// stop (`task.cancel`, or a hard shutdown overriding a clean one).
    pub long_running: std::sync::Mutex<std::collections::HashSet<String>>,
    pub cancels: std::sync::Mutex<std::collections::HashSet<String>>,
    /// This host's ref (created on first start).
    pub host: String,
    /// Whether this start created root, the pool and this host.
    pub first_start: bool,
    /// The hypervisor long operations drive.
    pub backend: operations::Backend,
    /// What `/metrics` serves.
    pub metrics: metrics::Metrics,
    /// When this node started, by its clock.
    pub opened_at_us: i64,
}

impl Node {
    /// Opens a data dir; on first start creates root, the pool and this host.
    pub fn open(dir: &Path, first_start: &FirstStart) -> Result<(Arc<Node>, Option<String>), LedgerError> {
        Node::open_with(dir, first_start, Arc::new(SystemClock))
    }

    /// [`Node::open`] on `clock` (a virtual one in tests): every time the node reads or waits for
    /// comes from it, and so do the entries' timestamps.
    pub fn open_with(
        dir: &Path,
        first_start: &FirstStart,
        clock: Arc<dyn Clock>,
    ) -> Result<(Arc<Node>, Option<String>), LedgerError> {
        Node::start(Ledger::open_with(dir, clock)?, first_start)
    }

    /// A node on an open ledger (on disk, in memory, on a faulty log): first-start objects if
    /// the log has none, orphaned tasks failed. Time comes from the ledger's clock.
    pub fn start(ledger: Ledger, first_start: &FirstStart) -> Result<(Arc<Node>, Option<String>), LedgerError> {
        let backend = operations::Backend { host: default_host(&ledger), speed: 0.0 };
        Node::start_with(ledger, first_start, backend)
    }

    /// [`Node::start`] driving `backend`.
    pub fn start_with(
        ledger: Ledger,
        first_start: &FirstStart,
        backend: operations::Backend,
    ) -> Result<(Arc<Node>, Option<String>), LedgerError> {
        let clock = ledger.clock().clone();
        let first_start_now = bootstrap::is_first_start(&ledger);
        let generated_password = bootstrap::ensure(&ledger, first_start)?;
        let host = engine::explicit::vm::this_host(&ledger.snapshot());
        let address = crate::engine::explicit::vm::field(&ledger.snapshot(), "host", &host, "address");
        bootstrap::ensure_inventory(&ledger, address.as_str().unwrap_or("127.0.0.1"))?;
        tasks::fail_orphans(&ledger).map_err(|e| LedgerError::Checkpoint { seq: 0, reason: e.to_string() })?;
        operations::reconcile(&ledger, &*backend.host)
            .map_err(|e| LedgerError::Checkpoint { seq: 0, reason: e.to_string() })?;
        let opened_at_us = clock.now_us();
        let node = Node {
            ledger,
            sessions: Sessions::new(clock),
            registrations: Default::default(),
            event_batches: Default::default(),
            task_owners: Default::default(),
            running_tasks: Default::default(),
            waiting_tasks: Default::default(),
            long_running: Default::default(),
            cancels: Default::default(),
            host,
            first_start: first_start_now,
            backend,
            metrics: Default::default(),
            opened_at_us,
        };
        Ok((Arc::new(node), generated_password))
    }

    /// Handles one call as the wire delivered it.
    pub async fn call(self: &Arc<Node>, method: &str, params: Vec<Value>, origin: &Origin) -> Reply {
        self.call_with(method, params, origin, &TaskHints::default()).await
    }

    /// [`Node::call`] with what the HTTP request said about tasks (`subtask-of`,
    /// `X-Http-Other-Config-*` headers).
    pub async fn call_with(
        self: &Arc<Node>,
        method: &str,
        params: Vec<Value>,
        origin: &Origin,
        hints: &TaskHints,
    ) -> Reply {
        if method == "system.listMethods" {
            return Reply::Bare(list_methods());
        }
        if method.starts_with("system.isAlive:") {
            return Reply::Rpc(Ok(params.into_iter().next().unwrap_or(Value::String(String::new()))));
        }
        let started_us = self.ledger.clock().now_us();
        let outcome = self.call_rpc(method, params, origin, hints).await;
        let seconds = (self.ledger.clock().now_us() - started_us) as f64 / 1e6;
        self.metrics.record_call(method, outcome.as_ref().map(|_| ()), seconds);
        Reply::Rpc(outcome)
    }

    async fn call_rpc(
        self: &Arc<Node>,
        method: &str,
        mut params: Vec<Value>,
        origin: &Origin,
        hints: &TaskHints,
    ) -> Result<Value, ApiError> {
        let s = schema();
        let (is_async, sync_name) = match method.strip_prefix("Async.") {
            Some(rest) => (true, rest),
            None => (false, method),
        };
        let Some((class, msg)) = s.lookup(sync_name) else {
            // xapi treats an unknown method with params as an extension call: session checked first.
            if let Some(Value::String(session)) = params.first() {
                self.sessions.check(&self.ledger.snapshot(), session)?;
            }
            return Err(ApiError::method_unknown(method));
        };
        if is_async && !msg.is_async {
            // Not a datamodel error: xapi's dispatcher answers a bare `Fault` (docs §a).
            let text = format!("No async mode for this operation (rpc: {sync_name})");
            return Err(ApiError::from_wire("Fault".into(), vec![text]));
        }
        if !msg.takes_session {
            let args = engine::prepare_args(sync_name, msg, params)?;
            return self.sessionless(class, msg, args, origin).await;
        }
        if params.is_empty() {
            return Err(ApiError::parameter_count_mismatch(sync_name, msg.required_args(), 0));
        }
        let session = params.remove(0);
        let mut args = engine::prepare_args(sync_name, msg, params)?;
        let session = match session {
            Value::String(s) | Value::Ref(s) => s,
            _ => return Err(ApiError::field_type_error("session_id")),
        };
        let snapshot = self.ledger.snapshot();
        let caller = self.sessions.check(&snapshot, &session)?;
        if msg.removed {
            // xapi's generated server: the session checked, nothing else (gen_server.ml).
            return Err(ApiError::new(ErrorCode::MessageRemoved, Vec::<String>::new()));
        }
        session_args_to_keys(&snapshot, msg, &mut args);
        check_rbac(&caller, msg, &args)?;
        if is_async {
            return tasks::spawn_async(self, caller, class, msg, args, hints).await;
        }
        self.dispatch(&caller, class, msg, args).await
    }

    /// Runs an authenticated, checked call.
    pub async fn dispatch(
        self: &Arc<Node>,
        caller: &Caller,
        class: &'static Class,
        msg: &'static Message,
        args: Vec<Value>,
    ) -> Result<Value, ApiError> {
        self.dispatch_in(caller, class, msg, args, None).await
    }

    /// [`Node::dispatch`] as the work of `task` (an `Async.` call's), if any.
    pub async fn dispatch_in(
        self: &Arc<Node>,
        caller: &Caller,
        class: &'static Class,
        msg: &'static Message,
        args: Vec<Value>,
        task: Option<String>,
    ) -> Result<Value, ApiError> {
        let route = engine::route(class, msg);
        match route {
            Route::Long(long) => {
                let logged = engine::logged_params(msg, &args);
                let call = engine::LongCall { class, msg, args, long };
                operations::run(self, caller, call, logged, task).await
            }
            Route::Runtime(runtime) => self.run_runtime(runtime, caller, msg, &args).await,
            Route::Read(reader) => {
                let value = engine::read_routed(reader, &self.ledger.snapshot(), class, msg, &args)?;
                vault::reveal(self.ledger.vault(), class, value)
            }
            Route::NotImplemented => {
                // Bad refs still get xapi's HANDLE_INVALID before anything else is said.
                let snapshot = self.ledger.snapshot();
                for (p, v) in msg.args().iter().zip(&args) {
                    engine::implicit::check_refs(&snapshot, &p.ty, v)?;
                }
                Err(ApiError::not_implemented(&msg.wire_name))
            }
            Route::Write(handler) => {
                let mut logged = engine::logged_params(msg, &args);
                let args = vault::seal_args(self.ledger.vault(), class, msg, args, &mut logged);
                let job = Job::call(caller.actor(), engine::Invocation::routed(class, msg, args, handler), logged);
                self.ledger.call(job).await.map(|(v, _)| v)
            }
        }
    }

    async fn sessionless(
        self: &Arc<Node>,
        class: &Class,
        msg: &Message,
        args: Vec<Value>,
        origin: &Origin,
    ) -> Result<Value, ApiError> {
        match explicit::mode(class, msg) {
            Some(Mode::Runtime(Runtime::Login)) => {
                let uname = args[0].as_str().unwrap_or("").to_string();
                let pwd = args[1].as_str().unwrap_or("").to_string();
                let originator = args.get(3).and_then(Value::as_str).unwrap_or("").to_string();
                sessions::login(self, &uname, &pwd, &originator, origin).await
            }
            _ => Err(ApiError::not_implemented(&msg.wire_name)),
        }
    }

    /// The controller of the explicit messages the node serves itself (the registry's
    /// `Runtime` rows): one arm each.
    async fn run_runtime(
        self: &Arc<Node>,
        runtime: Runtime,
        caller: &Caller,
        msg: &'static Message,
        args: &[Value],
    ) -> Result<Value, ApiError> {
        let void = || Ok(Value::String(String::new()));
        match runtime {
            // Logins take no session and never get here (see `sessionless`).
            Runtime::Login => Err(ApiError::internal("login dispatched with a session")),
            Runtime::Logout => sessions::logout(self, caller, msg).await,
            Runtime::SessionRecord => sessions::get_record(self, args),
            Runtime::SessionLastActive => sessions::get_last_active(self, args),
            Runtime::SessionRbacPermissions => sessions::get_rbac_permissions(self, args),
            Runtime::SessionChangePassword => sessions::change_password(self, caller, args).await,
            Runtime::SessionSubjectIdentifiers => Ok(Value::Set(Vec::new())),
            Runtime::SessionLogoutSubject => void(),
            Runtime::EventFrom => events::from_args(self, caller, args).await,
            Runtime::EventInject => {
                events::inject(self, caller, args[0].as_str().unwrap_or(""), args[1].as_str().unwrap_or("")).await
            }
            Runtime::EventRegister => {
                self.registrations.register(
                    &caller.session,
                    &events::class_names(&args[0]),
                    self.ledger.snapshot().seq,
                );
                void()
            }
            Runtime::EventUnregister => {
                self.registrations.unregister(&caller.session, &events::class_names(&args[0]));
                void()
            }
            Runtime::EventNext => events::next(self, caller).await,
            Runtime::EventCurrentId => Ok(Value::Int(self.ledger.snapshot().seq as i64)),
            Runtime::TaskCreate => tasks::create(self, caller, args).await,
            Runtime::TaskChange => tasks::change(self, caller, &msg.name, args).await,
            Runtime::HostTime => {
                // xapi answers both in UTC on a host whose clock is UTC, as servers' are; the
                // local one has no zone offset applied here (docs/xenapi-semantics.md §i.1).
                let host = args[0].as_str().unwrap_or("");
                let hosts = crate::schema::schema().class("host").expect("host");
                if !self.ledger.snapshot().exists(hosts.id, host) {
                    return Err(ApiError::handle_invalid("host", host));
                }
                Ok(Value::DateTime(self.ledger.clock().now_us() / 1_000_000))
            }
        }
    }
}

/// A session given as an argument (`session.get_record(s, s)`) is named by the ref its client
/// holds; the store knows it by its key ([`auth::session_key`]). A value that is already a key
/// (from `session.get_by_uuid`) is left as it is: keys name sessions but never authenticate.
fn session_args_to_keys(state: &engine::State, msg: &Message, args: &mut [Value]) {
    let class = schema().class("session").expect("session class");
    for (p, v) in msg.args().iter().zip(args.iter_mut()) {
        if !matches!(&p.ty, Ty::Ref(c) if c == "session") {
            continue;
        }
        if let Value::Ref(r) | Value::String(r) = v {
            let key = auth::session_key(r);
            if state.exists(class.id, &key) {
                *r = key;
            }
        }
    }
}

/// RBAC: superusers pass; otherwise the caller's role must hold the call's permission
/// (docs/xenapi-semantics.md §c.4; denial shape from xapi rbac.ml). A call on a protected map key
/// needs that key's permission instead of the message's: see [`keyed_permission`].
pub fn check_rbac(caller: &Caller, msg: &Message, args: &[Value]) -> Result<(), ApiError> {
    if caller.superuser {
        return Ok(());
    }
    let (permission, roles): (String, Vec<&str>) = match keyed_permission(msg, args) {
        Some((permission, least)) => (permission, auth::roles_at_least(least)),
        None => (msg.permission.clone(), msg.roles.iter().map(String::as_str).collect()),
    };
    if roles.is_empty() || roles.contains(&caller.role.as_str()) {
        return Ok(());
    }
    Err(permission_denied(&permission, &roles))
}

/// `RBAC_PERMISSION_DENIED [permission, "No permission in user session. (Roles with this
/// permission: …)"]`, naming the roles that hold it (xapi rbac.ml `disallowed_permission_exn`).
pub fn permission_denied(permission: &str, roles: &[&str]) -> ApiError {
    let roles: Vec<&str> = roles.iter().copied().filter(|r| *r != "client-cert").collect();
    ApiError::new(
        ErrorCode::RbacPermissionDenied,
        [
            permission.to_string(),
            format!("No permission in user session. (Roles with this permission: {})", roles.join(", ")),
        ],
    )
}

/// The permission `<message>/key:<pattern>` and its least role, when the call's `key` argument
/// is a protected key of the message: the first pattern, in declaration order, equal to the key
/// or (ending in `*`) a prefix of it, compared case-sensitively (xapi rbac.ml
/// `permission_of_action`). The keyed permission replaces the message's own.
fn keyed_permission<'m>(msg: &'m Message, args: &[Value]) -> Option<(String, &'m str)> {
    if msg.map_keys.is_empty() {
        return None;
    }
    let at = msg.args().iter().position(|p| p.name == "key")?;
    let key = args.get(at)?.as_str()?;
    let (pattern, least) = msg.map_keys.iter().find(|(pattern, _)| match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => key == pattern,
    })?;
    Some((format!("{}/key:{}", msg.permission, pattern.to_ascii_lowercase()), least.as_str()))
}

/// Every synchronous wire name (what `system.listMethods` returns).
pub fn list_methods() -> Value {
    let mut names: Vec<Value> =
        schema().classes.iter().flat_map(|c| c.messages.iter().map(|m| Value::String(m.wire_name.clone()))).collect();
    names.push(Value::String("system.listMethods".into()));
    Value::Set(names)
}

/// The simulated host, keeping its domains beside the data dir's log (in memory without one).
pub fn default_host(ledger: &Ledger) -> Arc<dyn crate::host::Host> {
    match ledger.dir() {
        Some(dir) => Arc::new(crate::host::SimHost::open(&dir.join("sim-host.json"))),
        None => Arc::new(crate::host::SimHost::new()),
    }
}
