//! The pure engine: executes calls against a state and folds recorded changes.
//!
//! Architecture invariant: nothing in this module does I/O, reads a clock or draws randomness.
//! Time and the seed for new refs come in through [`Ctx`]; results are recorded as [`Change`]s
//! so that replay folds them without re-executing anything.
//!
//! [`Change`]: crate::entry::Change

pub mod apply;
pub mod db_string;
pub mod effect;
pub mod explicit;
pub mod fields;
pub mod implicit;
pub mod internal;
mod long;
pub mod snapshot;
pub mod state;
pub mod tx;
pub mod where_expr;

pub use explicit::vm::power::derived_uuid;
pub use long::outcome_of;
pub use state::{Object, State};
pub use tx::{Ctx, Tx};

use crate::entry::Change;
use crate::error::ApiError;
use crate::schema::{coerce, Class, Kind, Message};
use crate::value::Value;
use explicit::{Call, Mode};

/// Checks the argument count and coerces wire values to the message's parameter types
/// (xapi gen_server.ml order: count first, then types). `args` excludes the session.
/// The directories of the SRs whose PBD names one (file-backed SRs), each once.
pub fn sr_dirs(state: &State) -> Vec<String> {
    let srs = crate::schema::generated::class::SR.get();
    let mut dirs: Vec<String> =
        state.table(srs.id).objects.keys().filter_map(|sr| explicit::vm::sr_dir(state, sr)).collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

pub fn prepare_args(method: &str, msg: &Message, raw: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    let params = msg.args();
    let required = msg.required_args();
    if raw.len() < required || (raw.len() > params.len() && !has_defaults(msg)) {
        return Err(ApiError::parameter_count_mismatch(method, required, raw.len()));
    }
    let mut out = Vec::with_capacity(params.len());
    let mut raw = raw.into_iter();
    for p in params {
        match raw.next() {
            Some(v) => out.push(coerce(v, &p.ty, &p.name)?),
            None => out.push(p.default.clone().expect("count checked above")),
        }
    }
    Ok(out)
}

/// The parameters as the log keeps them: any parameter whose name says password or secret is
/// replaced by `"(secret)"` (xapi marks such parameters; the datamodel export does not).
pub fn logged_params(msg: &Message, args: &[Value]) -> Vec<Value> {
    msg.args()
        .iter()
        .zip(args)
        .map(|(p, v)| if is_secret_param(&p.name) { Value::String("(secret)".into()) } else { v.clone() })
        .collect()
}

pub fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("pwd") || n.contains("password") || n.contains("secret")
}

/// Messages with defaulted trailing parameters ignore extra arguments (xapi gen_server.ml).
fn has_defaults(msg: &Message) -> bool {
    msg.args().iter().any(|p| p.default.is_some())
}

/// How a message runs, resolved once per call from the registry and the message's kind.
#[derive(Clone, Copy)]
pub enum Route {
    /// Served by the node itself (a registry `Runtime` row).
    Runtime(explicit::Runtime),
    /// Served from a snapshot: an explicit handler, or the implicit read (`None`).
    Read(Option<explicit::ReadFn>),
    /// A job for the writer: an explicit handler, or the implicit write (`None`).
    Write(Option<explicit::WriteFn>),
    /// A long operation: mark, host effect, outcome (three entries).
    Long(&'static explicit::Long),
    /// An explicit message with no handler yet: `NOT_IMPLEMENTED`.
    NotImplemented,
}

/// Resolves how `msg` of `class` runs.
pub fn route(class: &Class, msg: &Message) -> Route {
    match explicit::mode(class, msg) {
        Some(Mode::Runtime(r)) => Route::Runtime(r),
        Some(Mode::Read(f)) => Route::Read(Some(f)),
        Some(Mode::Write(f)) => Route::Write(Some(f)),
        Some(Mode::Long(l)) => Route::Long(l),
        None if msg.kind == Kind::Explicit => Route::NotImplemented,
        None if msg.kind.is_read() => Route::Read(None),
        None => Route::Write(None),
    }
}

/// Serves a read-only message from a snapshot (`NOT_IMPLEMENTED` for one that is not a read).
pub fn read(state: &State, class: &Class, msg: &Message, args: &[Value]) -> Result<Value, ApiError> {
    match route(class, msg) {
        Route::Read(reader) => read_routed(reader, state, class, msg, args),
        _ => Err(ApiError::not_implemented(&msg.wire_name)),
    }
}

/// A read whose route the caller has resolved already (`Route::Read(reader)`).
pub fn read_routed(
    reader: Option<explicit::ReadFn>,
    state: &State,
    class: &Class,
    msg: &Message,
    args: &[Value],
) -> Result<Value, ApiError> {
    match reader {
        Some(f) => f(state, &Call { class, msg, args }),
        None => implicit::read(state, class, msg, args),
    }
}

/// One call of a datamodel message for the writer: checked arguments (secrets sealed) and the
/// handler its route resolved to.
pub struct Invocation {
    pub class: &'static Class,
    pub msg: &'static Message,
    pub args: Vec<Value>,
    handler: Option<explicit::WriteFn>,
}

impl Invocation {
    /// A write of `msg`; `NOT_IMPLEMENTED` for an explicit message with no handler, an internal
    /// error for a read or a runtime message (which never become jobs).
    pub fn new(class: &'static Class, msg: &'static Message, args: Vec<Value>) -> Result<Invocation, ApiError> {
        match route(class, msg) {
            Route::Write(handler) => Ok(Invocation { class, msg, args, handler }),
            Route::NotImplemented => Err(ApiError::not_implemented(&msg.wire_name)),
            Route::Read(_) | Route::Runtime(_) | Route::Long(_) => {
                Err(ApiError::internal(format!("{} is not a write for the writer", msg.wire_name)))
            }
        }
    }

    /// A write whose route the caller has resolved already (`Route::Write(handler)`).
    pub fn routed(
        class: &'static Class,
        msg: &'static Message,
        args: Vec<Value>,
        handler: Option<explicit::WriteFn>,
    ) -> Invocation {
        Invocation { class, msg, args, handler }
    }

    fn run(self, tx: &mut Tx) -> Result<Value, ApiError> {
        let call = Call { class: self.class, msg: self.msg, args: &self.args };
        match self.handler {
            Some(f) => f(tx, &call),
            None => implicit::write(tx, self.class, self.msg, &self.args),
        }
    }
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation").field("method", &self.msg.wire_name).field("args", &self.args).finish()
    }
}

/// One call of a long operation (a registry `Long` row): the message, its checked arguments, the row.
#[derive(Clone)]
pub struct LongCall {
    pub class: &'static Class,
    pub msg: &'static Message,
    pub args: Vec<Value>,
    pub long: &'static explicit::Long,
}

impl LongCall {
    pub fn call(&self) -> Call<'_> {
        Call { class: self.class, msg: self.msg, args: &self.args }
    }

    /// The object the operation is on (its first argument).
    pub fn object(&self) -> &str {
        self.args.first().and_then(Value::as_str).unwrap_or("")
    }

    /// The object whose `current_operations` holds the mark: the row's `marks`, else the first
    /// argument, of the message's class.
    pub fn target(&self) -> (&'static Class, String) {
        match self.long.marks {
            Some(marks) => marks(&self.call()),
            None => (self.class, self.object().to_string()),
        }
    }

    /// Plans the host effect from a state in which the mark is committed.
    pub fn plan(&self, state: &State, task: &str) -> Result<effect::Effect, ApiError> {
        (self.long.plan)(state, &self.call(), task)
    }
}

impl std::fmt::Debug for LongCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LongCall").field("method", &self.msg.wire_name).field("args", &self.args).finish()
    }
}

/// The outcome half of a long operation (see [`Op::Finish`]).
#[derive(Debug)]
pub struct Finished {
    pub call: LongCall,
    pub task: String,
    pub owned: bool,
    pub effect: effect::Effect,
    pub done: Result<effect::Done, ApiError>,
}

/// What the writer runs, as data: a datamodel message, either half of a long operation, or an
/// internal operation.
#[derive(Debug)]
pub enum Op {
    Call(Invocation),
    /// Checks and marks a long operation; `task` is the `Async.` call's task, or `None` for a
    /// synchronous call (a task is made for it, as xapi makes one for every call). Answers the task.
    Mark {
        call: LongCall,
        task: Option<String>,
    },
    /// Records the outcome of a long operation and clears its mark. `done` is what the host
    /// reported, or the error the operation failed with; `owned` destroys the synchronous call's task.
    Finish(Box<Finished>),
    Internal(internal::InternalOp),
}

impl Op {
    /// The method name its entry is logged under.
    pub fn method(&self) -> &str {
        match self {
            Op::Call(call) => &call.msg.wire_name,
            Op::Mark { call, .. } => &call.msg.wire_name,
            Op::Finish(_) => "task.operation_done",
            Op::Internal(op) => op.method(),
        }
    }
}

/// The controller: runs one job's operation inside its transaction.
pub fn run(tx: &mut Tx, op: Op) -> Result<Value, ApiError> {
    match op {
        Op::Call(call) => call.run(tx),
        Op::Mark { call, task } => long::mark(tx, &call, task),
        Op::Finish(f) => long::finish(tx, &f.call, &f.task, f.owned, &f.effect, f.done),
        Op::Internal(op) => internal::run(tx, op),
    }
}

/// Executes a side-effecting message on a copy of `state`: the call's result and the changes it
/// made, or an error and no changes at all.
pub fn execute(
    state: &State,
    ctx: &Ctx,
    class: &'static Class,
    msg: &'static Message,
    args: &[Value],
) -> Result<(Value, State, Vec<Change>), ApiError> {
    let op = Op::Call(Invocation::new(class, msg, args.to_vec())?);
    let mut tx = Tx::new(state.clone(), ctx);
    let result = run(&mut tx, op)?;
    let (state, changes) = tx.finish();
    Ok((result, state, changes))
}
