//! The pure engine: executes calls against a state and folds recorded changes.
//!
//! Architecture invariant: nothing in this module does I/O, reads a clock or draws randomness.
//! Time and the seed for new refs come in through [`Ctx`]; results are recorded as [`Change`]s
//! so that replay folds them without re-executing anything.
//!
//! [`Change`]: crate::entry::Change

pub mod apply;
pub mod db_string;
pub mod explicit;
pub mod implicit;
pub mod snapshot;
pub mod state;
pub mod tx;
pub mod where_expr;

pub use state::{Object, State};
pub use tx::{Ctx, Tx};

use crate::entry::Change;
use crate::error::ApiError;
use crate::schema::{coerce, Class, Kind, Message};
use crate::value::Value;
use explicit::{Call, Mode};

/// Checks the argument count and coerces wire values to the message's parameter types
/// (xapi gen_server.ml order: count first, then types). `args` excludes the session.
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

/// Whether a message only reads state and can be served from a snapshot.
pub fn is_read(class: &Class, msg: &Message) -> bool {
    match explicit::mode(class, msg) {
        Some(Mode::Read(_)) => true,
        Some(_) => false,
        None => msg.kind.is_read(),
    }
}

/// Serves a read-only message from a snapshot.
pub fn read(state: &State, class: &Class, msg: &Message, args: &[Value]) -> Result<Value, ApiError> {
    match explicit::mode(class, msg) {
        Some(Mode::Read(f)) => f(state, &Call { class, msg, args }),
        _ => implicit::read(state, class, msg, args),
    }
}

/// Executes a side-effecting message: the call's result and the changes it made, or an error and
/// no changes at all.
pub fn execute(
    state: &State,
    ctx: &Ctx,
    class: &Class,
    msg: &Message,
    args: &[Value],
) -> Result<(Value, State, Vec<Change>), ApiError> {
    let mut tx = Tx::new(state.clone(), ctx);
    let result = execute_in(&mut tx, class, msg, args)?;
    let (state, changes) = tx.finish();
    Ok((result, state, changes))
}

/// Executes inside an existing transaction (used by messages that call others). An explicit
/// message without a pure handler answers `NOT_IMPLEMENTED` (runtime ones never get here).
pub fn execute_in(tx: &mut Tx, class: &Class, msg: &Message, args: &[Value]) -> Result<Value, ApiError> {
    match explicit::mode(class, msg) {
        Some(Mode::Write(f)) => f(tx, &Call { class, msg, args }),
        Some(Mode::Read(f)) => f(&tx.state, &Call { class, msg, args }),
        Some(Mode::Runtime(_)) => Err(ApiError::internal(format!("{} runs in the node", msg.wire_name))),
        None if msg.kind == Kind::Explicit => Err(ApiError::not_implemented(&msg.wire_name)),
        None if msg.kind.is_read() => implicit::read(&tx.state, class, msg, args),
        None => implicit::write(tx, class, msg, args),
    }
}
