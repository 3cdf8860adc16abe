//! `blob`: binary large objects' records (their bytes travel over HTTP, which is not served yet).

use super::super::implicit::create_internal;
use super::super::tx::Tx;
use super::Call;
use crate::error::ApiError;
use crate::value::Value;

/// `blob.create(mime_type, public)`.
pub fn create(tx: &mut Tx, call: &Call) -> Result<Value, ApiError> {
    let now = Value::DateTime(tx.ctx.now_secs());
    let r = create_internal(
        tx,
        "blob",
        vec![("mime_type", call.args[0].clone()), ("public", call.args[1].clone()), ("last_updated", now)],
    );
    Ok(Value::Ref(r))
}
