//! Conversions into typed [`Value`]s: schema defaults (JSON) and loosely typed wire values.
//!
//! The wire rules follow xapi's non-strict ocaml-rpc decoding (docs/xenapi-semantics.md §a.4): int64 may arrive
//! as a decimal string, floats as ints or strings, datetimes as strings in several ISO forms, enums in any
//! letter case; booleans must be real booleans.

use std::collections::HashMap;

use super::{schema, Ty};
use crate::error::ApiError;
use crate::value::{parse_datetime, Value, NULL_REF};

/// Converts a default from schema JSON into a typed value.
pub fn json_to_value(json: &serde_json::Value, ty: &Ty, enums: &HashMap<String, Vec<String>>) -> Result<Value, String> {
    let bad = || format!("{json} is not a {ty:?}");
    Ok(match ty {
        Ty::String => Value::String(json.as_str().ok_or_else(bad)?.to_string()),
        Ty::Int => Value::Int(json.as_i64().ok_or_else(bad)?),
        Ty::Float => Value::Float(json.as_f64().ok_or_else(bad)?),
        Ty::Bool => Value::Bool(json.as_bool().ok_or_else(bad)?),
        Ty::DateTime => Value::DateTime(parse_datetime(json.as_str().ok_or_else(bad)?).ok_or_else(bad)?),
        Ty::Enum(name) => {
            let text = json.as_str().ok_or_else(bad)?;
            let values = enums.get(name).ok_or_else(|| format!("no enum {name}"))?;
            let canonical = values.iter().find(|v| v.eq_ignore_ascii_case(text)).ok_or_else(bad)?;
            Value::Enum(canonical.clone())
        }
        Ty::Ref(_) => Value::Ref(json.as_str().ok_or_else(bad)?.to_string()),
        Ty::Set(elem) => Value::Set(
            json.as_array().ok_or_else(bad)?.iter().map(|j| json_to_value(j, elem, enums)).collect::<Result<_, _>>()?,
        ),
        Ty::Map(k, v) => {
            let mut entries = Vec::new();
            for pair in json.as_array().ok_or_else(bad)? {
                entries.push((json_to_value(&pair[0], k, enums)?, json_to_value(&pair[1], v, enums)?));
            }
            Value::Map(entries)
        }
        Ty::Option(inner) if json.is_null() => {
            let _ = inner;
            Value::Null
        }
        Ty::Option(inner) => json_to_value(json, inner, enums)?,
        Ty::Record(_) | Ty::EventBatch | Ty::Void => return Err(bad()),
    })
}

/// The value a field takes when neither the caller nor the datamodel gives one.
pub fn zero_value(ty: &Ty) -> Value {
    match ty {
        Ty::String => Value::String(String::new()),
        Ty::Int => Value::Int(0),
        Ty::Float => Value::Float(0.0),
        Ty::Bool => Value::Bool(false),
        Ty::DateTime => Value::DateTime(0),
        Ty::Enum(name) => Value::Enum(schema().enums.get(name).and_then(|v| v.first()).cloned().unwrap_or_default()),
        Ty::Ref(_) => Value::Ref(NULL_REF.to_string()),
        Ty::Set(_) => Value::Set(Vec::new()),
        Ty::Map(_, _) => Value::Map(Vec::new()),
        Ty::Record(_) => Value::Record(Vec::new()),
        Ty::Option(_) | Ty::EventBatch | Ty::Void => Value::Null,
    }
}

/// The datamodel default of a field, else its zero value.
pub fn default_value(field: &super::Field) -> Value {
    field.default.clone().unwrap_or_else(|| zero_value(&field.ty))
}

/// Coerces a wire value to `ty`. `name` names the parameter or struct member in the error.
pub fn coerce(value: Value, ty: &Ty, name: &str) -> Result<Value, ApiError> {
    let bad = || ApiError::field_type_error(name);
    Ok(match (ty, value) {
        (Ty::String, Value::String(s) | Value::Ref(s) | Value::Enum(s)) => Value::String(s),
        (Ty::String, Value::Int(i)) => Value::String(i.to_string()),
        (Ty::Int, Value::Int(i)) => Value::Int(i),
        (Ty::Int, Value::String(s)) => Value::Int(s.trim().parse().map_err(|_| bad())?),
        (Ty::Int, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => Value::Int(f as i64),
        (Ty::Float, Value::Float(f)) => Value::Float(f),
        (Ty::Float, Value::Int(i)) => Value::Float(i as f64),
        (Ty::Float, Value::String(s)) => {
            let f: f64 = s.trim().parse().map_err(|_| bad())?;
            if !f.is_finite() {
                return Err(bad());
            }
            Value::Float(f)
        }
        (Ty::Bool, Value::Bool(b)) => Value::Bool(b),
        (Ty::DateTime, Value::DateTime(t)) => Value::DateTime(t),
        (Ty::DateTime, Value::String(s)) => Value::DateTime(parse_datetime(&s).ok_or_else(bad)?),
        (Ty::DateTime, Value::Int(t)) => Value::DateTime(t),
        (Ty::Enum(enum_name), Value::String(s) | Value::Enum(s)) => {
            let values = schema().enums.get(enum_name).ok_or_else(bad)?;
            let canonical = values.iter().find(|v| v.eq_ignore_ascii_case(&s)).ok_or_else(bad)?;
            Value::Enum(canonical.clone())
        }
        (Ty::Ref(_), Value::String(s) | Value::Ref(s)) => Value::Ref(s),
        (Ty::Set(elem), Value::Set(items)) => {
            Value::Set(items.into_iter().map(|v| coerce(v, elem, name)).collect::<Result<_, _>>()?)
        }
        (Ty::Map(k, v), Value::Record(members)) => {
            let mut entries: Vec<(Value, Value)> = Vec::with_capacity(members.len());
            for (key, val) in members {
                let key = coerce(Value::String(key), k, name)?;
                let val = coerce(val, v, name)?;
                match entries.iter_mut().find(|(k2, _)| *k2 == key) {
                    Some(slot) => slot.1 = val,
                    None => entries.push((key, val)),
                }
            }
            Value::Map(entries)
        }
        (Ty::Map(k, v), Value::Map(pairs)) => Value::Map(
            pairs.into_iter().map(|(a, b)| Ok((coerce(a, k, name)?, coerce(b, v, name)?))).collect::<Result<_, _>>()?,
        ),
        (Ty::Record(_), Value::Record(members)) => Value::Record(members),
        (Ty::Option(_), Value::Null) => Value::Null,
        (Ty::Option(inner), v) => coerce(v, inner, name)?,
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_coercions_follow_xapi() {
        assert_eq!(coerce(Value::str("4294967296"), &Ty::Int, "x").unwrap(), Value::Int(4_294_967_296));
        assert_eq!(coerce(Value::Int(3), &Ty::Float, "x").unwrap(), Value::Float(3.0));
        assert_eq!(
            coerce(Value::str("running"), &Ty::Enum("vm_power_state".into()), "x").unwrap(),
            Value::Enum("Running".into())
        );
        // A string "true" is not a boolean (ocaml-rpc bool_of_rpc).
        assert_eq!(coerce(Value::str("true"), &Ty::Bool, "force").unwrap_err(), ApiError::field_type_error("force"));
        assert_eq!(
            coerce(Value::str("20250319T04:16:24Z"), &Ty::DateTime, "x").unwrap(),
            Value::DateTime(crate::value::parse_datetime("2025-03-19T04:16:24Z").unwrap())
        );
        let map = coerce(
            Value::Record(vec![("a".into(), Value::str("1"))]),
            &Ty::Map(Box::new(Ty::String), Box::new(Ty::String)),
            "x",
        )
        .unwrap();
        assert_eq!(map, Value::string_map([("a", "1")]));
    }
}
