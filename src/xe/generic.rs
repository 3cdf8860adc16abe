//! The commands xe generates for every class from its field table (`cli_operations.ml`
//! `make_param_funs`): `CLASS-list` with filters and `params=`, `CLASS-param-list`,
//! `-param-get`, `-param-set`, `-param-add`, `-param-remove` and `-param-clear`.

use serde_json::Value as Json;

use super::api::s;
use super::argv::{parse_bool, Params};
use super::failure::XeError;
use super::print::Record;
use super::records::{self, ClassFacts, FieldFacts, Obj, View};
use super::Ctx;
use crate::schema::{schema, Ty};

/// The generated command kinds, by their suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    List,
    ParamList,
    ParamGet,
    ParamSet,
    ParamAdd,
    ParamRemove,
    ParamClear,
}

impl Op {
    pub const ALL: [(Op, &'static str); 7] = [
        (Op::List, "list"),
        (Op::ParamList, "param-list"),
        (Op::ParamGet, "param-get"),
        (Op::ParamSet, "param-set"),
        (Op::ParamAdd, "param-add"),
        (Op::ParamRemove, "param-remove"),
        (Op::ParamClear, "param-clear"),
    ];
}

/// Parameters every command accepts, never filters or fields (`stdparams`).
pub const STD_PARAMS: [&str; 10] =
    ["server", "password", "port", "username", "minimal", "force", "multiple", "all", "message-priority", "trace"];

/// A failure `cli_operations.ml` raises with its `failwith` (shadowed there to raise
/// `Cli_failure`), printed `Error: …`.
pub fn internal(text: impl Into<String>) -> XeError {
    XeError::Failure(text.into())
}

/// The generated commands a class has, with their required and optional parameters.
pub fn commands(class: &ClassFacts) -> Vec<(Op, Vec<String>, Vec<String>)> {
    let shown: Vec<&FieldFacts> = class.fields.iter().filter(|f| !f.hidden).collect();
    let names = |f: &dyn Fn(&FieldFacts) -> bool| -> Vec<String> {
        shown.iter().filter(|x| f(x)).map(|x| x.name.clone()).collect()
    };
    let mut list_optn = vec!["params".to_string()];
    list_optn.extend(names(&|_| true));
    list_optn.extend(shown.iter().filter(|f| f.is_set()).map(|f| format!("{}:contains", f.name)));
    let mut settable = names(&|f| f.kind == "RW");
    settable.extend(shown.iter().filter(|f| f.kind == "MRW").map(|f| format!("{}:", f.name)));
    let addable = names(&|f| f.kind == "SRW" || f.kind == "MRW");
    let clearable = names(&|f| f.kind == "RW" || f.is_set() || f.is_map());
    let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut out = vec![(Op::List, vec![], list_optn)];
    if !settable.is_empty() {
        out.push((Op::ParamSet, strings(&["uuid"]), settable));
    }
    out.push((Op::ParamList, strings(&["uuid"]), vec![]));
    out.push((Op::ParamGet, strings(&["uuid", "param-name"]), strings(&["param-key"])));
    if !addable.is_empty() {
        out.push((Op::ParamAdd, strings(&["uuid", "param-name"]), strings(&["param-key"])));
        out.push((Op::ParamRemove, strings(&["uuid", "param-name", "param-key"]), vec![]));
    }
    if !clearable.is_empty() {
        out.push((Op::ParamClear, strings(&["uuid", "param-name"]), vec![]));
    }
    out
}

pub fn run(ctx: &mut Ctx, view: &View, op: Op, params: &Params) -> Result<(), XeError> {
    let class = view.class;
    match op {
        Op::List => list(ctx, view, params),
        Op::ParamList => {
            let obj = records::fetch(&ctx.api, class, params.req("uuid")?)?;
            let fields: Vec<&FieldFacts> = obj.facts().fields.iter().filter(|f| !f.hidden).collect();
            let record = print_fields(ctx, &obj, &fields)?;
            ctx.out.table(&[record]);
            Ok(())
        }
        Op::ParamGet => {
            let obj = records::fetch(&ctx.api, class, params.req("uuid")?)?;
            let field = lookup(&obj, params.req("param-name")?)?;
            if let (Some(key), true) = (params.get("param-key"), field.is_map()) {
                let map = obj.get_map(&ctx.api, &mut ctx.res, field)?;
                let value = map
                    .into_iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .ok_or_else(|| internal(format!("Key {key} not found in map")))?;
                ctx.out.list(&[value]);
            } else {
                let value = obj.get(&ctx.api, &mut ctx.res, field)?;
                ctx.out.list(&[value]);
            }
            Ok(())
        }
        Op::ParamSet => param_set(ctx, class, params),
        Op::ParamAdd => param_add(ctx, class, params),
        Op::ParamRemove => param_remove(ctx, class, params),
        Op::ParamClear => param_clear(ctx, class, params),
    }
}

/// `CLASS-list`.
pub fn list(ctx: &mut Ctx, view: &View, params: &Params) -> Result<(), XeError> {
    let facts = records::class_facts(view.class).expect("an xe class");
    let all = records::all(&ctx.api, &mut ctx.res, view.class)?;
    let mut filters: Vec<(String, String)> = view.def_filters.to_vec();
    filters.extend(
        params
            .0
            .iter()
            .filter(|(k, _)| k != "params" && !STD_PARAMS.contains(&k.as_str()) && !k.starts_with("database:"))
            .cloned(),
    );
    let mut selected: Vec<usize> = (0..all.len()).collect();
    for filter in &filters {
        selected = filter_objects(ctx, &all, selected, filter)?;
    }
    if params.flag("all")? {
        selected = (0..all.len()).collect();
    }
    let wanted: Vec<String> = match params.get("params") {
        None => view.list_defaults.to_vec(),
        Some("all") => Vec::new(),
        Some(list) => list.split(',').map(str::to_string).collect(),
    };
    let fields: Vec<&FieldFacts> =
        facts.fields.iter().filter(|f| wanted.is_empty() || wanted.contains(&f.name)).filter(|f| !f.hidden).collect();
    let mut out = Vec::with_capacity(selected.len());
    for i in selected {
        let mut record = Vec::with_capacity(fields.len());
        for f in &fields {
            // A list does not make the extra calls an expensive field needs (`makeexpensivefield`).
            let value =
                if f.expensive { "<expensive field>".to_string() } else { all[i].get(&ctx.api, &mut ctx.res, f)? };
            record.push((f.label(), value));
        }
        out.push(record);
    }
    ctx.out.table(&out);
    Ok(())
}

/// `print_field` over `fields`.
pub fn print_fields(ctx: &mut Ctx, obj: &Obj, fields: &[&FieldFacts]) -> Result<Record, XeError> {
    let mut record = Vec::with_capacity(fields.len());
    for f in fields {
        record.push((f.label(), obj.get(&ctx.api, &mut ctx.res, f)?));
    }
    Ok(record)
}

/// `field_lookup`: a field by its xe name, or xe's "Missing parameter" failure.
pub fn lookup<'a>(obj: &'a Obj, name: &str) -> Result<&'a FieldFacts, XeError> {
    obj.facts().fields.iter().find(|f| f.name == name).ok_or_else(|| XeError::api("Missing parameter", &[name]))
}

/// How a filter or a `param-set` key names a field (`get_field_type`).
enum FieldRef<'a> {
    Normal(&'a FieldFacts),
    /// A map or set field, and the part of the key after its name and separator.
    Map(&'a FieldFacts, String),
    Set(&'a FieldFacts, String),
}

fn field_type<'a>(fields: &'a [FieldFacts], key: &str) -> Result<FieldRef<'a>, XeError> {
    if let Some(f) = fields.iter().find(|f| f.name == key) {
        return Ok(FieldRef::Normal(f));
    }
    if let Some((name, rest)) = key.split_once(':') {
        let f = fields.iter().find(|f| f.name == name).ok_or_else(|| internal(format!("Unknown field '{key}'")))?;
        return if f.is_set() {
            Ok(FieldRef::Set(f, rest.to_string()))
        } else if f.is_map() {
            Ok(FieldRef::Map(f, rest.to_string()))
        } else {
            Err(internal(format!("Field '{}' is not a set or map", f.name)))
        };
    }
    // The older `map-name-key=value` form: the longest map name, then the longest set name.
    for want_map in [true, false] {
        let mut candidates: Vec<&FieldFacts> =
            fields.iter().filter(|f| if want_map { f.is_map() } else { f.is_set() }).collect();
        candidates.sort_by_key(|f| std::cmp::Reverse(f.name.len()));
        if let Some(f) = candidates.into_iter().find(|f| key.starts_with(&format!("{}-", f.name))) {
            let rest = key[f.name.len() + 1..].to_string();
            return Ok(if want_map { FieldRef::Map(f, rest) } else { FieldRef::Set(f, rest) });
        }
    }
    Err(internal(format!("Unknown field '{key}'")))
}

pub fn filter_objects(
    ctx: &mut Ctx,
    all: &[Obj],
    selected: Vec<usize>,
    (k, v): &(String, String),
) -> Result<Vec<usize>, XeError> {
    let Some(&first) = selected.first() else { return Ok(selected) };
    let fields = &all[first].facts().fields;
    let mut kept = Vec::new();
    match field_type(fields, k)? {
        FieldRef::Normal(f) => {
            for i in selected {
                if all[i].get(&ctx.api, &mut ctx.res, f)? == *v {
                    kept.push(i);
                }
            }
        }
        FieldRef::Set(f, rest) => {
            if rest != "contains" {
                return Err(internal("Invalid syntax for set filtering (should be set-param:contains=key)"));
            }
            for i in selected {
                if all[i].get_set(&ctx.api, &mut ctx.res, f)?.iter().any(|m| m == v) {
                    kept.push(i);
                }
            }
        }
        FieldRef::Map(f, key) => {
            for i in selected {
                if all[i].get_map(&ctx.api, &mut ctx.res, f)?.iter().any(|(mk, mv)| *mk == key && mv == v) {
                    kept.push(i);
                }
            }
        }
    }
    Ok(kept)
}

/// Converts a command-line string to the type of `method`'s parameter `index` (after the
/// session), as records.ml's setters do.
pub fn convert_arg(ctx: &mut Ctx, method: &str, index: usize, field: &str, text: &str) -> Result<Json, XeError> {
    let ty = schema().lookup(method).and_then(|(_, m)| m.args().get(index).map(|p| p.ty.clone()));
    convert(ctx, ty.as_ref(), field, text)
}

pub fn convert(ctx: &mut Ctx, ty: Option<&Ty>, field: &str, text: &str) -> Result<Json, XeError> {
    Ok(match ty {
        Some(Ty::Int) => Json::from(
            text.trim()
                .parse::<i64>()
                .map_err(|_| XeError::failure(format!("Failed to parse parameter '{field}': expecting an integer")))?,
        ),
        Some(Ty::Float) => Json::from(
            text.trim()
                .parse::<f64>()
                .map_err(|_| XeError::failure(format!("Failed to parse parameter '{field}': expecting a float")))?,
        ),
        Some(Ty::Bool) => Json::Bool(parse_bool(field, text)?),
        Some(Ty::Enum(name)) => {
            let values = schema().enums.get(name).cloned().unwrap_or_default();
            let wire = values.iter().find(|v| v.eq_ignore_ascii_case(text)).ok_or_else(|| {
                XeError::failure(format!("Failed to parse parameter '{field}': expecting one of {}", values.join(", ")))
            })?;
            s(wire)
        }
        Some(Ty::Ref(_)) if text.is_empty() => s(records::NULL_REF),
        Some(Ty::Ref(class)) => s(&records::ref_by_uuid(&ctx.api, class, text)?),
        Some(Ty::Set(inner)) => {
            let mut items = Vec::new();
            for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                items.push(convert(ctx, Some(inner), field, part)?);
            }
            Json::Array(items)
        }
        _ => s(text),
    })
}

fn unsupported(field: &FieldFacts) -> XeError {
    internal(format!("Field '{}' cannot be changed through this xe", field.name))
}

fn param_set(ctx: &mut Ctx, class: &str, params: &Params) -> Result<(), XeError> {
    let obj = records::fetch(&ctx.api, class, params.req("uuid")?)?;
    let fields = &obj.facts().fields;
    for (k, v) in params.0.iter().filter(|(k, _)| k != "uuid" && !STD_PARAMS.contains(&k.as_str())) {
        match field_type(fields, k)? {
            FieldRef::Map(f, key) => {
                let add =
                    f.add_to_map.as_deref().ok_or_else(|| internal(format!("Map field '{}' is read-only.", f.name)))?;
                let remove = f.remove_from_map.as_deref().ok_or_else(|| unsupported(f))?;
                let map = obj.get_map(&ctx.api, &mut ctx.res, f)?;
                if map.iter().any(|(mk, _)| *mk == key) {
                    ctx.api.call(remove, vec![s(&obj.r#ref), s(&key)])?;
                }
                ctx.api.call(add, vec![s(&obj.r#ref), s(&key), s(v)])?;
            }
            FieldRef::Set(..) => return Err(internal("Cannot param-set on set fields")),
            FieldRef::Normal(f) => {
                let Some(setter) = f.set.as_deref() else {
                    if f.kind == "MRW" || f.kind == "SRW" {
                        return Err(internal(format!("Field '{k}' is a map or set. use the 'name:key=value' syntax.")));
                    }
                    if f.kind == "RW" {
                        return Err(unsupported(f));
                    }
                    return Err(internal(format!("Field '{k}' is read-only.")));
                };
                let value = if f.set_arg.as_deref() == Some("bytes") {
                    Json::from(bytes_of_string(k, v)?)
                } else {
                    convert_arg(ctx, setter, 1, k, v)?
                };
                ctx.api.call(setter, vec![s(&obj.r#ref), value])?;
            }
        }
    }
    Ok(())
}

fn param_add(ctx: &mut Ctx, class: &str, params: &Params) -> Result<(), XeError> {
    let obj = records::fetch(&ctx.api, class, params.req("uuid")?)?;
    let field = lookup(&obj, params.req("param-name")?)?;
    if let Some(add) = field.add_to_set.as_deref() {
        let key = params.get("param-key").ok_or_else(|| {
            internal("When adding a key to a set, use the syntax: *-param-add param-name=<name> param-key=<key>")
        })?;
        let value = convert_arg(ctx, add, 1, &field.name, key)?;
        ctx.api.call(add, vec![s(&obj.r#ref), value])?;
        return Ok(());
    }
    if let Some(add) = field.add_to_map.as_deref() {
        let skip = ["uuid", "param-name", "param-key"];
        for (k, v) in params.0.iter().filter(|(k, _)| !skip.contains(&k.as_str()) && !STD_PARAMS.contains(&k.as_str()))
        {
            ctx.api.call(add, vec![s(&obj.r#ref), s(k), s(v)])?;
        }
        return Ok(());
    }
    if field.is_set() || field.is_map() {
        return Err(internal("Parameter is read-only"));
    }
    Err(internal("Can only add to parameters of type Set or Map"))
}

fn param_remove(ctx: &mut Ctx, class: &str, params: &Params) -> Result<(), XeError> {
    let obj = records::fetch(&ctx.api, class, params.req("uuid")?)?;
    let field = lookup(&obj, params.req("param-name")?)?;
    let key = params.req("param-key")?;
    match (field.is_set(), field.is_map()) {
        (true, _) => {
            let Some(remove) = field.remove_from_set.as_deref() else {
                return Err(internal("Cannot remove parameters from read-only map"));
            };
            if !obj.get_set(&ctx.api, &mut ctx.res, field)?.iter().any(|m| m == key) {
                return Err(internal(format!("Key {key} is not in the set")));
            }
            let value = convert_arg(ctx, remove, 1, &field.name, key)?;
            ctx.api.call(remove, vec![s(&obj.r#ref), value])?;
        }
        (_, true) => {
            let Some(remove) = field.remove_from_map.as_deref() else {
                return Err(internal("Cannot remove parameters from read-only map"));
            };
            if !obj.get_map(&ctx.api, &mut ctx.res, field)?.iter().any(|(k, _)| k == key) {
                return Err(internal(format!("Key {key} is not in map")));
            }
            ctx.api.call(remove, vec![s(&obj.r#ref), s(key)])?;
        }
        _ => return Err(internal("Can only remove from parameters of type Set or Map")),
    }
    Ok(())
}

fn param_clear(ctx: &mut Ctx, class: &str, params: &Params) -> Result<(), XeError> {
    let obj = records::fetch(&ctx.api, class, params.req("uuid")?)?;
    let field = lookup(&obj, params.req("param-name")?)?;
    if field.is_set() {
        if let Some(remove) = field.remove_from_set.as_deref() {
            // The raw members (refs stay refs), not their rendering.
            let raw = raw_members(&obj, field);
            for m in raw {
                ctx.api.call(remove, vec![s(&obj.r#ref), m])?;
            }
            return Ok(());
        }
    }
    if field.is_map() {
        if let Some(remove) = field.remove_from_map.as_deref() {
            for (k, _) in obj.get_map(&ctx.api, &mut ctx.res, field)? {
                ctx.api.call(remove, vec![s(&obj.r#ref), s(&k)])?;
            }
            return Ok(());
        }
    }
    if let Some(setter) = field.set.as_deref() {
        let value =
            convert_arg(ctx, setter, 1, &field.name, "").map_err(|_| internal("Cannot clear this parameter"))?;
        ctx.api.call(setter, vec![s(&obj.r#ref), value]).map_err(|_| internal("Cannot clear this parameter"))?;
        return Ok(());
    }
    Err(internal("Can only clear RW parameters"))
}

fn raw_members(obj: &Obj, field: &FieldFacts) -> Vec<Json> {
    let Some(src) = &field.source else { return Vec::new() };
    match obj.record.get(&src.field) {
        Some(Json::Array(items)) if src.via.is_none() => items.clone(),
        _ => Vec::new(),
    }
}

/// A size with an optional binary unit (`Record_util.bytes_of_string`): `10GiB`, `512 M`,
/// `1073741824`; `KB` means KiB as in xe.
pub fn bytes_of_string(field: &str, text: &str) -> Result<i64, XeError> {
    let bad = || {
        XeError::failure(format!(
            "Failed to parse field '{field}': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got '{text}'"
        ))
    };
    let digits_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let number: i64 = text[..digits_end].parse().map_err(|_| bad())?;
    let suffix = text[digits_end..].split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    let unit: i64 = match suffix.as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    if number < 0 {
        return Err(bad());
    }
    Ok(number.wrapping_mul(unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(bytes_of_string("s", "10GiB").unwrap(), 10 << 30);
        assert_eq!(bytes_of_string("s", "512 M").unwrap(), 512 << 20);
        assert_eq!(bytes_of_string("s", "4096").unwrap(), 4096);
        assert_eq!(bytes_of_string("s", "1kb").unwrap(), 1024);
        assert!(bytes_of_string("s", "1.5G").is_err());
        assert!(bytes_of_string("s", "-1").is_err());
        assert!(bytes_of_string("s", "10 parsecs").is_err());
    }
}
