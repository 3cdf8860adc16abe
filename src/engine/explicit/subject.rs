//! `subject` objects for the local users (xapi `xapi_subject.ml`): every user but root has one,
//! made by `xenledger user add` (identifier `xenledger-user:<name>`), whose `roles` hold the
//! user's role; `subject.add_to_roles`/`remove_from_roles` change the user's role, effective on
//! the user's next call. There is no external directory: `subject.create` resolves only a local
//! user's identifier.

use super::super::implicit::{create_internal, destroy};
use super::super::state::State;
use super::super::tx::Tx;
use super::vm::get;
use super::Call;
use crate::entry::Change;
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::schema::role_records::role_table;
use crate::value::Value;

type Reply = Result<Value, ApiError>;

const PREFIX: &str = "xenledger-user:";

/// The subject identifier of local user `name`.
pub fn identifier(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The subject of local user `name`, if it has one.
pub fn of_user(state: &State, name: &str) -> Option<String> {
    let id = identifier(name);
    state
        .table(class::SUBJECT.get().id)
        .objects
        .iter()
        .find(|(_, o)| o.fields[f::subject::SUBJECT_IDENTIFIER.index].as_str() == Some(id.as_str()))
        .map(|(r, _)| r.to_string())
}

fn role_ref(role: &str) -> Option<Value> {
    role_table().by_name_label(role).map(|r| Value::Ref(r.reference.clone()))
}

/// Makes or updates local user `name`'s subject so that its roles are `role` (after
/// `xenledger user add`).
pub fn sync_user(tx: &mut Tx, name: &str, role: &str) {
    let roles = Value::Set(role_ref(role).into_iter().collect());
    match of_user(&tx.state, name) {
        Some(subject) => {
            if get(&tx.state, f::subject::ROLES, &subject) != roles {
                tx.put(f::subject::ROLES, &subject, roles);
            }
        }
        None => {
            create_user_subject(tx, name, roles);
        }
    }
}

fn create_user_subject(tx: &mut Tx, name: &str, roles: Value) -> String {
    let other = Value::string_map([
        ("subject-name", name),
        ("subject-displayname", name),
        ("subject-is-group", "false"),
        ("subject-account-disabled", "false"),
        ("subject-account-locked", "false"),
        ("subject-account-expired", "false"),
        ("subject-password-expired", "false"),
    ]);
    create_internal(
        tx,
        "subject",
        vec![("subject_identifier", Value::String(identifier(name))), ("other_config", other), ("roles", roles)],
    )
}

/// Removes local user `name`'s subject (after `xenledger user del`).
pub fn forget_user(tx: &mut Tx, name: &str) {
    if let Some(subject) = of_user(&tx.state, name) {
        destroy(tx, class::SUBJECT.get(), &subject);
    }
}

fn local_user(state: &State, subject: &str) -> Option<String> {
    let id = get(state, f::subject::SUBJECT_IDENTIFIER, subject);
    let name = id.as_str()?.strip_prefix(PREFIX)?;
    state.users.contains_key(name).then(|| name.to_string())
}

/// The user's role after its subject's roles changed: the most privileged of them ("" for none:
/// the user may log in and do nothing).
fn apply_to_user(tx: &mut Tx, subject: &str) {
    let Some(name) = local_user(&tx.state, subject) else { return };
    let held: Vec<String> = get(&tx.state, f::subject::ROLES, subject)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .filter_map(|r| role_table().by_ref(r.as_str().unwrap_or("")).map(|r| r.name_label.clone()))
        .collect();
    let role = crate::schema::roles::ROLES.iter().find(|r| held.iter().any(|h| h == *r)).copied().unwrap_or("");
    let user = tx.state.users.get(&name).cloned();
    if let Some(user) = user.filter(|u| u.role != role) {
        tx.push(Change::UserPut { name, role: role.to_string(), password_hash: user.password_hash });
    }
}

fn existing(state: &State, subject: &str) -> Result<(), ApiError> {
    if state.exists(class::SUBJECT.get().id, subject) {
        Ok(())
    } else {
        Err(ApiError::handle_invalid("subject", subject))
    }
}

/// `subject.create(record)`: `SUBJECT_ALREADY_EXISTS` for an identifier in use; with no external
/// directory, only a local user's identifier resolves (`SUBJECT_CANNOT_BE_RESOLVED`).
pub fn create(tx: &mut Tx, call: &Call) -> Reply {
    let id = call.member("subject_identifier").as_str().unwrap_or("").to_string();
    let taken = tx
        .state
        .table(class::SUBJECT.get().id)
        .objects
        .values()
        .any(|o| o.fields[f::subject::SUBJECT_IDENTIFIER.index].as_str() == Some(id.as_str()));
    if taken {
        return Err(ApiError::new(ErrorCode::SubjectAlreadyExists, Vec::<String>::new()));
    }
    let Some(name) = id.strip_prefix(PREFIX).filter(|n| tx.state.users.contains_key(*n)).map(String::from) else {
        return Err(ApiError::new(ErrorCode::SubjectCannotBeResolved, Vec::<String>::new()));
    };
    let role = tx.state.users.get(&name).map(|u| u.role.clone()).unwrap_or_default();
    let subject = create_user_subject(tx, &name, Value::Set(role_ref(&role).into_iter().collect()));
    Ok(Value::Ref(subject))
}

/// `subject.destroy(self)`: a local user keeps its password and loses its role.
pub fn destroy_subject(tx: &mut Tx, call: &Call) -> Reply {
    let subject = call.str(0);
    existing(&tx.state, subject)?;
    tx.put(f::subject::ROLES, subject, Value::Set(Vec::new()));
    apply_to_user(tx, subject);
    destroy(tx, class::SUBJECT.get(), subject);
    Ok(Value::String(String::new()))
}

/// `subject.add_to_roles(self, role)`: `ROLE_NOT_FOUND` for no such role, `ROLE_ALREADY_EXISTS`
/// when held already (xapi sends neither a parameter).
pub fn add_to_roles(tx: &mut Tx, call: &Call) -> Reply {
    let (subject, role) = (call.str(0).to_string(), call.str(1).to_string());
    existing(&tx.state, &subject)?;
    if role_table().by_ref(&role).is_none() {
        return Err(ApiError::new(ErrorCode::RoleNotFound, Vec::<String>::new()));
    }
    let mut roles = get(&tx.state, f::subject::ROLES, &subject).as_set().unwrap_or(&[]).to_vec();
    if roles.iter().any(|r| r.as_str() == Some(role.as_str())) {
        return Err(ApiError::new(ErrorCode::RoleAlreadyExists, Vec::<String>::new()));
    }
    roles.push(Value::Ref(role));
    tx.put(f::subject::ROLES, &subject, Value::Set(roles));
    apply_to_user(tx, &subject);
    Ok(Value::String(String::new()))
}

/// `subject.remove_from_roles(self, role)`: `ROLE_NOT_FOUND` when not held.
pub fn remove_from_roles(tx: &mut Tx, call: &Call) -> Reply {
    let (subject, role) = (call.str(0).to_string(), call.str(1).to_string());
    existing(&tx.state, &subject)?;
    let roles = get(&tx.state, f::subject::ROLES, &subject).as_set().unwrap_or(&[]).to_vec();
    if !roles.iter().any(|r| r.as_str() == Some(role.as_str())) {
        return Err(ApiError::new(ErrorCode::RoleNotFound, Vec::<String>::new()));
    }
    let kept: Vec<Value> = roles.into_iter().filter(|r| r.as_str() != Some(role.as_str())).collect();
    tx.put(f::subject::ROLES, &subject, Value::Set(kept));
    apply_to_user(tx, &subject);
    Ok(Value::String(String::new()))
}

/// `subject.get_permissions_name_label(self)`: every permission of every role it holds.
pub fn get_permissions_name_label(state: &State, call: &Call) -> Reply {
    let subject = call.str(0);
    existing(state, subject)?;
    let table = role_table();
    let mut names: Vec<String> = get(state, f::subject::ROLES, subject)
        .as_set()
        .unwrap_or(&[])
        .iter()
        .filter_map(|r| table.by_ref(r.as_str().unwrap_or("")))
        .flat_map(|r| table.permissions_of(r).into_iter().map(|p| p.name_label.clone()))
        .collect();
    names.sort();
    names.dedup();
    Ok(Value::Set(names.into_iter().map(Value::String).collect()))
}
