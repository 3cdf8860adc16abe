//! Secret values on their way in and out. A `secret`'s value is sealed under the data dir's key
//! before the write becomes a job (by the node, and by the ledger's in-process API), and its
//! logged parameter says `(secret)`; reads and event snapshots open it again for the callers
//! whose role may read the class (the read permission itself is checked before any of this runs).

use super::{is_sealed, Vault};
use crate::error::ApiError;
use crate::schema::{coerce, Class, Message, Ty};
use crate::value::Value;

const REDACTED: &str = "(secret)";

/// Seals the secret value in the arguments of `secret.create` and `secret.set_value`, and
/// redacts it from the parameters the log keeps. Other calls pass through.
pub fn seal_args(
    vault: &Vault,
    class: &Class,
    msg: &Message,
    mut args: Vec<Value>,
    logged: &mut [Value],
) -> Vec<Value> {
    if class.name != "secret" {
        return args;
    }
    match msg.name.as_str() {
        "create" => {
            if let Some(Value::Record(members)) = args.first_mut() {
                for (_, value) in members.iter_mut().filter(|(name, _)| name == "value") {
                    // Members are coerced later, by the create itself: coerce this one first so
                    // that no wire type (an int) slips past the sealing.
                    if let Ok(Value::String(plain)) = coerce(value.clone(), &Ty::String, "value") {
                        *value = Value::String(vault.seal(&plain));
                    }
                }
            }
            if let Some(Value::Record(members)) = logged.first_mut() {
                for (_, value) in members.iter_mut().filter(|(name, _)| name == "value") {
                    *value = Value::String(REDACTED.into());
                }
            }
        }
        "set_value" => {
            if let Some(Value::String(plain)) = args.get_mut(1) {
                *plain = vault.seal(plain);
            }
            if let Some(value) = logged.get_mut(1) {
                *value = Value::String(REDACTED.into());
            }
        }
        _ => {}
    }
    args
}

/// Opens every sealed value in the answer of a read of class `class` (only `secret` has any).
pub fn reveal(vault: &Vault, class: &Class, value: Value) -> Result<Value, ApiError> {
    if class.name != "secret" {
        return Ok(value);
    }
    open_all(vault, value.materialized())
}

/// [`reveal`] for an event snapshot: a value that does not open stays sealed (the start-up check
/// makes that unreachable with the right key file).
pub fn reveal_snapshot(vault: &Vault, class: &Class, value: Value) -> Value {
    if class.name != "secret" {
        return value;
    }
    let materialized = value.materialized();
    open_all(vault, materialized.clone()).unwrap_or(materialized)
}

fn open_all(vault: &Vault, value: Value) -> Result<Value, ApiError> {
    Ok(match value {
        Value::String(s) if is_sealed(&s) => {
            Value::String(vault.open(&s).map_err(|e| ApiError::internal(format!("secret value: {e}")))?)
        }
        Value::Set(items) => Value::Set(items.into_iter().map(|v| open_all(vault, v)).collect::<Result<_, _>>()?),
        Value::Map(entries) => {
            Value::Map(entries.into_iter().map(|(k, v)| Ok((k, open_all(vault, v)?))).collect::<Result<_, ApiError>>()?)
        }
        Value::Record(members) => Value::Record(
            members.into_iter().map(|(k, v)| Ok((k, open_all(vault, v)?))).collect::<Result<_, ApiError>>()?,
        ),
        other => other,
    })
}
