//! The implicit messages every class gets from the datamodel (docs/xenapi-semantics.md §d):
//! getters, setters, map/set add and remove, `get_record`, `get_all*`, `get_by_*`, the hidden
//! `get_all*_where`, and the constructor/destructor. Interpreted from the schema, not written
//! per class.

use super::db_string::db_string;
use super::state::State;
use super::tx::Tx;
use super::where_expr;
use crate::entry::Change;
use crate::error::{ApiError, ErrorCode};
use crate::schema::{default_value, schema, Class, Kind, Message, Qual, Relation, Ty};
use crate::value::{Value, NULL_REF};

/// Serves a read-only implicit message from a snapshot.
pub fn read(state: &State, class: &Class, msg: &Message, args: &[Value]) -> Result<Value, ApiError> {
    read_kind(state, class, msg.kind, &msg.wire_name, args)
}

/// Serves a read by its kind (explicit messages that behave like implicit ones reuse this).
pub fn read_kind(state: &State, class: &Class, kind: Kind, wire_name: &str, args: &[Value]) -> Result<Value, ApiError> {
    let table = state.table(class.id);
    match kind {
        Kind::GetAll => Ok(Value::Set(table.objects.keys().map(|r| Value::Ref(r.to_string())).collect())),
        Kind::GetAllRecords => Ok(Value::Map(
            table.objects.iter().map(|(r, o)| (Value::Ref(r.to_string()), state.record(class, o))).collect(),
        )),
        Kind::GetRecord => {
            let r = arg_str(args, 0);
            let o = state.get(class.id, r).ok_or_else(|| ApiError::handle_invalid(&class.name, r))?;
            Ok(state.record(class, o))
        }
        Kind::GetByUuid => {
            let uuid = arg_str(args, 0);
            let r = table.by_uuid.get(uuid).ok_or_else(|| ApiError::uuid_invalid(&class.name, uuid))?;
            Ok(Value::Ref(r.to_string()))
        }
        Kind::GetByNameLabel => {
            let label = arg_str(args, 0);
            let refs = table.by_name_label.get(label).map(|s| s.iter().map(|r| Value::Ref(r.to_string())).collect());
            Ok(Value::Set(refs.unwrap_or_default()))
        }
        Kind::Get(f) => {
            let r = arg_str(args, 0);
            let o = state.get(class.id, r).ok_or_else(|| ApiError::handle_invalid(&class.name, r))?;
            Ok(o.fields[f].clone())
        }
        Kind::GetAllRecordsWhere | Kind::GetAllWhere => {
            let text = arg_str(args, 0);
            let expr = where_expr::parse(text).map_err(|e| ApiError::invalid_value(text, &e))?;
            let mut matches = Vec::new();
            for (r, o) in table.objects.iter() {
                // Every xapi row also has its ref in a `_ref` column (db_cache_impl.ml).
                let mut lookup = |column: &str| {
                    if column == "_ref" {
                        return Some(r.to_string());
                    }
                    let name = where_expr::column_to_field(column);
                    class.field(&name).map(|f| db_string(&o.fields[f]))
                };
                let hit = expr.eval(&mut lookup).map_err(|missing| {
                    ApiError::new(ErrorCode::InternalError, ["missing field", missing.0.as_str(), ""])
                })?;
                if hit {
                    matches.push((r, o));
                }
            }
            Ok(if kind == Kind::GetAllWhere {
                Value::Set(matches.into_iter().map(|(r, _)| Value::Ref(r.to_string())).collect())
            } else {
                Value::Map(
                    matches.into_iter().map(|(r, o)| (Value::Ref(r.to_string()), state.record(class, o))).collect(),
                )
            })
        }
        _ => Err(ApiError::internal(format!("{wire_name} is not a read"))),
    }
}

/// Carries out a side-effecting implicit message.
pub fn write(tx: &mut Tx, class: &Class, msg: &Message, args: &[Value]) -> Result<Value, ApiError> {
    let void = Ok(Value::String(String::new()));
    match msg.kind {
        Kind::Set(f) => {
            let r = existing(&tx.state, class, arg_str(args, 0))?;
            let field = &class.fields[f];
            check_refs(&tx.state, &field.ty, &args[1])?;
            tx.set(&class.name, &r, &field.name, args[1].clone());
            void
        }
        Kind::AddToMap(f) => {
            let r = existing(&tx.state, class, arg_str(args, 0))?;
            let field = &class.fields[f];
            let (key, value) = (&args[1], &args[2]);
            // xapi's database refuses empty keys (Db_exn.Empty_key_in_map, surfacing as INTERNAL_ERROR).
            if key.as_str() == Some("") {
                return Err(ApiError::internal(format!(
                    "Db_exn.Empty_key_in_map(\"{}\", \"{}\", \"{r}\")",
                    class.name, field.name
                )));
            }
            check_refs(&tx.state, &field.ty, &Value::Map(vec![(key.clone(), value.clone())]))?;
            if current(tx, class, &r, f).as_map().unwrap_or(&[]).iter().any(|(k, _)| k == key) {
                let key_text = db_string(key);
                return Err(ApiError::map_duplicate_key(&class.name, &field.name, &r, &key_text));
            }
            tx.map_put(&class.name, &r, &field.name, key.clone(), value.clone());
            void
        }
        Kind::RemoveFromMap(f) => {
            let r = existing(&tx.state, class, arg_str(args, 0))?;
            if current(tx, class, &r, f).as_map().unwrap_or(&[]).iter().any(|(k, _)| *k == args[1]) {
                tx.map_remove(&class.name, &r, &class.fields[f].name, args[1].clone());
            }
            void
        }
        Kind::AddToSet(f) => {
            let r = existing(&tx.state, class, arg_str(args, 0))?;
            check_refs(&tx.state, &class.fields[f].ty, &Value::Set(vec![args[1].clone()]))?;
            if !current(tx, class, &r, f).as_set().unwrap_or(&[]).contains(&args[1]) {
                tx.set_add(&class.name, &r, &class.fields[f].name, args[1].clone());
            }
            void
        }
        Kind::RemoveFromSet(f) => {
            let r = existing(&tx.state, class, arg_str(args, 0))?;
            if current(tx, class, &r, f).as_set().unwrap_or(&[]).contains(&args[1]) {
                tx.set_remove(&class.name, &r, &class.fields[f].name, args[1].clone());
            }
            void
        }
        Kind::Create => create(tx, class, &args[0]).map(Value::Ref),
        Kind::Destroy => {
            let r = existing(&tx.state, class, arg_str(args, 0))?;
            destroy(tx, class, &r);
            void
        }
        _ => Err(ApiError::internal(format!("{} is not an implicit write", msg.wire_name))),
    }
}

/// Builds a new object from a constructor struct (docs/xenapi-semantics.md §d.3): members are the RW and
/// constructor-time fields; a member may be omitted only if the field has a datamodel default;
/// unknown members are ignored. Returns the new ref.
pub fn create(tx: &mut Tx, class: &Class, record: &Value) -> Result<String, ApiError> {
    let members = match record {
        Value::Record(m) => m,
        _ => return Err(ApiError::field_type_error("args")),
    };
    let mut fields = Vec::new();
    for f in &class.fields {
        if matches!(f.relation, Relation::Many { .. }) || f.name == "uuid" {
            continue;
        }
        let given = members.iter().find(|(k, _)| *k == f.name).map(|(_, v)| v.clone());
        let value = match (f.qual, given) {
            (Qual::Rw | Qual::RoConstructor, Some(v)) => crate::schema::coerce(v, &f.ty, &f.name)?,
            (Qual::Rw | Qual::RoConstructor, None) => {
                f.default.clone().ok_or_else(|| ApiError::field_type_error(&f.name))?
            }
            (Qual::RoRuntime, _) => default_value(f),
        };
        check_refs(&tx.state, &f.ty, &value)?;
        fields.push((f.name.clone(), value));
    }
    let reference = tx.new_ref();
    let uuid = tx.new_uuid();
    if class.uuid_field.is_some() {
        fields.insert(0, ("uuid".to_string(), Value::String(uuid)));
    }
    tx.push(Change::Create { class: class.name.clone(), reference: reference.clone(), fields });
    Ok(reference)
}

/// Removes an object. Refs to it held outside relations (which the fold keeps in step) are set to
/// `OpaqueRef:NULL` first, so no ref is left dangling.
pub fn destroy(tx: &mut Tx, class: &Class, reference: &str) {
    let s = schema();
    let target = Ty::Ref(class.name.clone());
    let target_set = Ty::Set(Box::new(target.clone()));
    let mut clears = Vec::new();
    for other in &s.classes {
        // Plain refs and ref sets to this class that no relation keeps in step.
        let ref_fields: Vec<_> = other
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.relation == Relation::None && (f.ty == target || f.ty == target_set))
            .map(|(i, _)| i)
            .collect();
        if ref_fields.is_empty() {
            continue;
        }
        for (r, o) in tx.state.table(other.id).objects.iter() {
            if other.id == class.id && &**r == reference {
                continue;
            }
            for &fid in &ref_fields {
                let cleared = match &o.fields[fid] {
                    Value::Ref(x) if x == reference => Some(Value::Ref(NULL_REF.to_string())),
                    Value::Set(items) if items.iter().any(|v| v.as_str() == Some(reference)) => {
                        Some(Value::Set(items.iter().filter(|v| v.as_str() != Some(reference)).cloned().collect()))
                    }
                    _ => None,
                };
                if let Some(value) = cleared {
                    clears.push((other.name.clone(), r.clone(), other.fields[fid].name.clone(), value));
                }
            }
        }
    }
    for (c, r, f, value) in clears {
        tx.set(&c, &r, &f, value);
    }
    tx.push(Change::Destroy { class: class.name.clone(), reference: reference.to_string() });
}

/// Checks that every ref inside `value` (typed `ty`) names an existing object or is null.
pub fn check_refs(state: &State, ty: &Ty, value: &Value) -> Result<(), ApiError> {
    match (ty, value) {
        (Ty::Ref(class), Value::Ref(r)) if r != NULL_REF => {
            let Some(c) = schema().class(class) else { return Ok(()) };
            // Sessions and tasks are checked where they are used; events, and records that are
            // not stored objects, cannot be checked.
            if c.stored && !state.exists(c.id, r) {
                return Err(ApiError::handle_invalid(class, r));
            }
            Ok(())
        }
        (Ty::Set(t), Value::Set(items)) => items.iter().try_for_each(|v| check_refs(state, t, v)),
        (Ty::Map(k, v), Value::Map(entries)) => {
            entries.iter().try_for_each(|(a, b)| check_refs(state, k, a).and_then(|()| check_refs(state, v, b)))
        }
        (Ty::Option(t), v) => check_refs(state, t, v),
        _ => Ok(()),
    }
}

fn existing(state: &State, class: &Class, r: &str) -> Result<String, ApiError> {
    if state.exists(class.id, r) {
        Ok(r.to_string())
    } else {
        Err(ApiError::handle_invalid(&class.name, r))
    }
}

fn current(tx: &Tx, class: &Class, r: &str, f: usize) -> Value {
    tx.state.get(class.id, r).map(|o| o.fields[f].clone()).unwrap_or(Value::Null)
}

fn arg_str(args: &[Value], i: usize) -> &str {
    args.get(i).and_then(Value::as_str).unwrap_or("")
}

/// Creates an object for the server itself (bootstrap, login): every field not given takes its
/// default or zero value, with no mandatory members. Returns the new ref.
pub fn create_internal(tx: &mut Tx, class: &str, given: Vec<(&str, Value)>) -> String {
    let reference = tx.new_ref();
    create_internal_at(tx, class, reference, given)
}

/// [`create_internal`] under a reference the caller chose (a session's key).
pub fn create_internal_at(tx: &mut Tx, class: &str, reference: String, given: Vec<(&str, Value)>) -> String {
    let uuid = tx.new_uuid();
    tx.push(new_object(class, &reference, &uuid, given));
    reference
}

/// The change that creates an object of `class` under `reference` and `uuid`: every stored field
/// not given takes its default or zero value.
pub fn new_object(class: &str, reference: &str, uuid: &str, given: Vec<(&str, Value)>) -> Change {
    let c = schema().class(class).unwrap_or_else(|| panic!("no class {class}"));
    let mut fields = Vec::new();
    for f in &c.fields {
        if matches!(f.relation, Relation::Many { .. }) {
            continue;
        }
        let value = match given.iter().find(|(k, _)| *k == f.name) {
            Some((_, v)) => v.clone(),
            None if f.name == "uuid" => Value::String(uuid.to_string()),
            None => default_value(f),
        };
        fields.push((f.name.clone(), value));
    }
    Change::Create { class: c.name.clone(), reference: reference.to_string(), fields }
}
