//! Hand-written explicit messages, looked up by class and name. Messages not listed here answer
//! `NOT_IMPLEMENTED` rather than pretending to succeed.

use super::state::State;
use super::tx::{Ctx, Tx};
use crate::error::ApiError;
use crate::schema::{Class, Message};
use crate::value::Value;

/// Whether an explicit message only reads.
pub fn is_read(class: &str, message: &str) -> bool {
    let _ = (class, message);
    false
}

/// Whether an explicit message has a hand-written side-effecting implementation here.
pub fn is_write(class: &str, message: &str) -> bool {
    let _ = (class, message);
    false
}

pub fn read(state: &State, ctx: &Ctx, class: &Class, msg: &Message, args: &[Value]) -> Result<Value, ApiError> {
    let _ = (state, ctx, class, args);
    Err(ApiError::not_implemented(&msg.wire_name))
}

pub fn write(tx: &mut Tx, class: &Class, msg: &Message, args: &[Value]) -> Result<Value, ApiError> {
    let _ = (tx, class, args);
    Err(ApiError::not_implemented(&msg.wire_name))
}
