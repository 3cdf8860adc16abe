//! The `role` class (xapi `xapi_role.ml`): served from the static table of roles and permissions
//! (`schema::role_records`), not from the log: roles are not objects anyone creates.

use super::super::state::State;
use super::Call;
use crate::error::{ApiError, ErrorCode};
use crate::schema::role_records::{role_table, RoleRecord};
use crate::value::Value;

type Reply = Result<Value, ApiError>;

fn record(r: &RoleRecord) -> Value {
    Value::Record(vec![
        ("uuid".into(), Value::String(r.uuid.clone())),
        ("name_label".into(), Value::String(r.name_label.clone())),
        ("name_description".into(), Value::String(r.name_description.clone())),
        ("subroles".into(), refs(r.subroles.iter())),
        ("is_internal".into(), Value::Bool(r.is_internal)),
    ])
}

fn refs<'a>(refs: impl Iterator<Item = &'a String>) -> Value {
    Value::Set(refs.map(|r| Value::Ref(r.to_string())).collect())
}

fn the_role(call: &Call) -> Result<&'static RoleRecord, ApiError> {
    let r = call.str(0);
    role_table().by_ref(r).ok_or_else(|| ApiError::handle_invalid("role", r))
}

/// `role.get_all`, `get_all_records`, `get_record`, `get_by_uuid`, `get_by_name_label` and the
/// field getters.
pub fn read(_state: &State, call: &Call) -> Reply {
    let table = role_table();
    match call.msg.name.as_str() {
        "get_all" => Ok(refs(table.all.iter().map(|r| &r.reference))),
        "get_all_records" => {
            Ok(Value::Map(table.all.iter().map(|r| (Value::Ref(r.reference.clone()), record(r))).collect()))
        }
        "get_by_uuid" => {
            let uuid = call.str(0);
            table
                .by_uuid(uuid)
                .map(|r| Value::Ref(r.reference.clone()))
                .ok_or_else(|| ApiError::new(ErrorCode::UuidInvalid, ["role", uuid]))
        }
        "get_by_name_label" => Ok(refs(table.by_name_label(call.str(0)).map(|r| &r.reference).into_iter())),
        "get_record" => the_role(call).map(record),
        "get_uuid" => the_role(call).map(|r| Value::String(r.uuid.clone())),
        "get_name_label" => the_role(call).map(|r| Value::String(r.name_label.clone())),
        "get_name_description" => the_role(call).map(|r| Value::String(r.name_description.clone())),
        "get_subroles" => the_role(call).map(|r| refs(r.subroles.iter())),
        "get_is_internal" => the_role(call).map(|r| Value::Bool(r.is_internal)),
        "get_permissions" => {
            let role = the_role(call)?;
            Ok(refs(table.permissions_of(role).into_iter().map(|p| &p.reference)))
        }
        "get_permissions_name_label" => {
            let role = the_role(call)?;
            Ok(Value::Set(
                table.permissions_of(role).into_iter().map(|p| Value::String(p.name_label.clone())).collect(),
            ))
        }
        "get_by_permission" => Ok(holders(|p| p.reference == call.str(0))),
        "get_by_permission_name_label" => Ok(holders(|p| p.name_label == call.str(0))),
        other => Err(ApiError::internal(format!("role.{other} has no handler"))),
    }
}

/// The roles (not permissions, not the permission itself) whose permissions include one that
/// `is_it` picks (xapi `get_by_permission_common`).
fn holders(is_it: impl Fn(&RoleRecord) -> bool) -> Value {
    let table = role_table();
    let found = table.all.iter().filter(|r| !is_it(r)).filter(|r| table.permissions_of(r).into_iter().any(&is_it));
    refs(found.map(|r| &r.reference))
}
