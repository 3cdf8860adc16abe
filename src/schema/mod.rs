//! The XenAPI datamodel, loaded from the embedded `schema/xenapi.json` (the project's own format).
//!
//! Pure: parses once into [`Schema`], interns classes, fields and messages as indexes, and classifies
//! every implicit message (getters, setters, `get_record`, …) so the engine can interpret it without
//! hand-written code. Nothing here does I/O.

mod coerce;
pub mod role_records;
pub mod roles;
mod ty;

use std::collections::HashMap;
use std::sync::OnceLock;

pub use coerce::{coerce, default_value, json_to_value, zero_value};
pub use ty::Ty;

use crate::value::Value;

/// The embedded schema text. Its blake3 hash is pinned by a test and stored in every data dir.
pub const SCHEMA_JSON: &str = include_str!("../../schema/xenapi.json");

/// Map keys with an RBAC permission of their own (xapi's `~map_keys_roles`). Kept apart from
/// `xenapi.json` because they say nothing about stored data: data dirs pin that file's hash.
pub const MAP_KEYS_ROLES_JSON: &str = include_str!("../../schema/facts/map_keys_roles.json");

/// Defaults of trailing message parameters (xapi's `param_default`), extracted from the IDL by
/// `schema/gen/param_defaults.py`. Kept apart from `xenapi.json` for the same reason: they say
/// nothing about stored data.
pub const PARAM_DEFAULTS_JSON: &str = include_str!("../../schema/facts/param_defaults.json");

/// The messages the datamodel marks removed (`schema/gen/removed.py`); kept apart from
/// `xenapi.json` like the other facts that say nothing about stored data.
pub const REMOVED_JSON: &str = include_str!("../../schema/facts/removed.json");

pub type ClassId = usize;
pub type FieldId = usize;

#[rustfmt::skip] // generated: tests/schema_generated.rs writes it
pub mod generated;

/// A class named at compile time (`generated::class::VM`): its index in the embedded schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassKey(pub ClassId);

/// A field named at compile time (`generated::field::vm::POWER_STATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldKey {
    pub class: ClassKey,
    pub index: FieldId,
}

impl ClassKey {
    pub fn get(self) -> &'static Class {
        &schema().classes[self.0]
    }
}

impl FieldKey {
    pub fn class(self) -> &'static Class {
        self.class.get()
    }

    pub fn name(self) -> &'static str {
        &self.class().fields[self.index].name
    }
}

/// The field qualifiers of the datamodel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qual {
    /// Read/write: getter, setter, and a constructor member.
    Rw,
    /// Set at construction, read-only afterwards.
    RoConstructor,
    /// Maintained by the server.
    RoRuntime,
}

/// How a field takes part in a relation between two classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    None,
    /// A single ref whose target lists this object in `(class, field)` (e.g. `VBD.VM` ↔ `VM.VBDs`).
    One {
        class: ClassId,
        field: FieldId,
    },
    /// A derived set of refs: the objects of `(class, field)` that point here (e.g. `VM.VBDs`).
    Many {
        class: ClassId,
        field: FieldId,
    },
    /// Both sides are sets kept in step (e.g. `VDI.VBDs`-style many-to-many pairs).
    ManyToMany {
        class: ClassId,
        field: FieldId,
    },
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub ty: Ty,
    pub qual: Qual,
    /// The datamodel default, if any; a constructor member without one is mandatory.
    pub default: Option<Value>,
    pub relation: Relation,
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub ty: Ty,
    /// Trailing parameters with a default may be omitted by the caller.
    pub default: Option<Value>,
}

/// What an implicit message does; `Explicit` is a message written by hand (see `engine::explicit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    GetAll,
    GetAllRecords,
    GetAllWhere,
    GetAllRecordsWhere,
    GetRecord,
    GetByUuid,
    GetByNameLabel,
    Get(FieldId),
    Set(FieldId),
    AddToMap(FieldId),
    RemoveFromMap(FieldId),
    AddToSet(FieldId),
    RemoveFromSet(FieldId),
    Create,
    Destroy,
    Explicit,
}

impl Kind {
    /// Whether the message only reads state (served from a snapshot, never through the writer).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Kind::GetAll
                | Kind::GetAllRecords
                | Kind::GetAllWhere
                | Kind::GetAllRecordsWhere
                | Kind::GetRecord
                | Kind::GetByUuid
                | Kind::GetByNameLabel
                | Kind::Get(_)
        )
    }
}

#[derive(Clone, Debug)]
pub struct Message {
    pub name: String,
    /// `class.message`, as on the wire.
    pub wire_name: String,
    /// The RBAC permission: the lower-cased wire name (xapi rbac.ml `permission_of_action`).
    pub permission: String,
    /// All parameters, the session included when the message takes one.
    pub params: Vec<Param>,
    pub result: Ty,
    pub errors: Vec<String>,
    /// Roles allowed to call it.
    pub roles: Vec<String>,
    pub implicit: bool,
    pub is_async: bool,
    pub takes_session: bool,
    pub kind: Kind,
    /// Map keys with a permission of their own, as (key pattern, least role), in declaration
    /// order; a pattern ending in `*` is a prefix (xapi `~map_keys_roles`, rbac.ml). Filled by
    /// [`attach_map_keys`].
    pub map_keys: Vec<(String, String)>,
    /// The datamodel says removed: the server answers `MESSAGE_REMOVED []` once the session is
    /// checked (xapi `gen_server.ml`). Filled by [`attach_removed`].
    pub removed: bool,
}

impl Message {
    /// Parameters after the session.
    pub fn args(&self) -> &[Param] {
        if self.takes_session {
            &self.params[1..]
        } else {
            &self.params
        }
    }

    /// How many arguments (after the session) a caller must send: xapi counts non-defaulted ones.
    pub fn required_args(&self) -> usize {
        self.args().iter().filter(|p| p.default.is_none()).count()
    }

    pub fn allows_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[derive(Clone, Debug)]
pub struct Class {
    pub id: ClassId,
    pub name: String,
    /// Lower-cased name, as `event.from` and `valid_ref_counts` spell classes.
    pub name_lower: String,
    pub fields: Vec<Field>,
    pub messages: Vec<Message>,
    field_index: HashMap<String, FieldId>,
    message_index: HashMap<String, usize>,
    pub uuid_field: Option<FieldId>,
    pub name_label_field: Option<FieldId>,
    /// Classes whose objects live in the database (have `get_record`).
    pub stored: bool,
}

impl Class {
    pub fn field(&self, name: &str) -> Option<FieldId> {
        self.field_index.get(name).copied()
    }

    pub fn message(&self, name: &str) -> Option<&Message> {
        self.message_index.get(name).map(|i| &self.messages[*i])
    }
}

#[derive(Debug)]
pub struct Schema {
    pub api_release: String,
    pub api_version_major: i64,
    pub api_version_minor: i64,
    pub classes: Vec<Class>,
    class_index: HashMap<String, ClassId>,
    class_lower_index: HashMap<String, ClassId>,
    pub enums: HashMap<String, Vec<String>>,
    /// Error code to parameter names.
    pub errors: HashMap<String, Vec<String>>,
    /// blake3 of the embedded schema text, hex.
    pub hash: String,
}

impl Schema {
    pub fn class(&self, name: &str) -> Option<&Class> {
        self.class_index.get(name).map(|i| &self.classes[*i])
    }

    /// Case-insensitive lookup, as `event.from` does.
    pub fn class_by_lower(&self, name: &str) -> Option<&Class> {
        self.class_lower_index.get(&name.to_ascii_lowercase()).map(|i| &self.classes[*i])
    }

    pub fn class_id(&self, name: &str) -> Option<ClassId> {
        self.class_index.get(name).copied()
    }

    /// Resolves a wire method name (`VM.start`, or the `VM_start` spelling) to its class and message.
    pub fn lookup(&self, method: &str) -> Option<(&Class, &Message)> {
        if let Some((c, m)) = method.split_once('.') {
            let class = self.class(c)?;
            return class.message(m).map(|m| (class, m));
        }
        // `Class_message`: class names may contain underscores, so try every split point.
        for (i, _) in method.match_indices('_') {
            let (c, m) = (&method[..i], &method[i + 1..]);
            if let Some(class) = self.class(c) {
                if let Some(msg) = class.message(m) {
                    return Some((class, msg));
                }
            }
        }
        None
    }
}

/// The process-wide schema, parsed on first use.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = load(SCHEMA_JSON).expect("embedded schema/xenapi.json is valid");
        attach_map_keys(&mut schema, MAP_KEYS_ROLES_JSON).expect("embedded map_keys_roles.json is valid");
        attach_param_defaults(&mut schema, PARAM_DEFAULTS_JSON).expect("embedded param_defaults.json is valid");
        attach_removed(&mut schema, REMOVED_JSON).expect("embedded removed.json is valid");
        schema
    })
}

/// Gives the messages that take a protected map key their (key pattern, least role) list, from
/// `{class: {field: [[pattern, role], …]}, "_messages": {"class.message": […]}}`. Only the
/// implicit `add_to_<field>` and `remove_from_<field>` get a field's keys; `set_<field>` gets
/// none (xapi datamodel_utils.ml `new_messages_of_field`). Explicit messages get theirs by name.
pub fn attach_map_keys(schema: &mut Schema, text: &str) -> Result<(), String> {
    type Keys = Vec<(String, String)>;
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let entries = raw.as_object().ok_or("map keys: not an object")?;
    let keys_of = |v: &serde_json::Value, what: &str| -> Result<Keys, String> {
        let keys: Keys = serde_json::from_value(v.clone()).map_err(|e| format!("{what}: {e}"))?;
        match keys.iter().find(|(_, role)| !roles::is_role(role)) {
            Some((_, role)) => Err(format!("{what}: {role:?} is not a role")),
            None => Ok(keys),
        }
    };
    for (class_name, fields) in entries.iter().filter(|(k, _)| !k.starts_with('_')) {
        let id = schema.class_id(class_name).ok_or_else(|| format!("map keys: no class {class_name}"))?;
        let class = &mut schema.classes[id];
        for (field_name, keys) in fields.as_object().ok_or("map keys: fields not an object")? {
            let field =
                class.field(field_name).ok_or_else(|| format!("map keys: no field {class_name}.{field_name}"))?;
            let keys = keys_of(keys, &format!("{class_name}.{field_name}"))?;
            for msg in &mut class.messages {
                if matches!(msg.kind, Kind::AddToMap(f) | Kind::RemoveFromMap(f) if f == field) {
                    msg.map_keys = keys.clone();
                }
            }
        }
    }
    if let Some(messages) = entries.get("_messages") {
        for (wire_name, keys) in messages.as_object().ok_or("map keys: _messages not an object")? {
            let keys = keys_of(keys, wire_name)?;
            let (class_name, msg_name) = wire_name.split_once('.').ok_or_else(|| format!("map keys: {wire_name}"))?;
            let id = schema.class_id(class_name).ok_or_else(|| format!("map keys: no class {class_name}"))?;
            let class = &mut schema.classes[id];
            let msg = class.messages.iter_mut().find(|m| m.name == msg_name);
            let msg = msg.ok_or_else(|| format!("map keys: no message {wire_name}"))?;
            // The IDL declares these keys on both the field and (in newer releases) the explicit
            // messages; whichever this datamodel has, the keys are the same.
            msg.map_keys = keys;
        }
    }
    Ok(())
}

/// Gives trailing parameters their defaults, from `{"Class.message": [{"name", "default"}, …]}`
/// (keys starting with `_` say where the file comes from). A message this datamodel lacks is
/// skipped (the IDL has messages the export hides); a parameter it lacks, or one that is not
/// among the message's last, is an error. A caller may then leave those parameters out, as
/// xapi's generated server allows (`gen_server.ml`).
pub fn attach_param_defaults(schema: &mut Schema, text: &str) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Default {
        name: String,
        default: serde_json::Value,
    }
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let entries = raw.as_object().ok_or("param defaults: not an object")?;
    for (wire_name, list) in entries.iter().filter(|(k, _)| !k.starts_with('_')) {
        let defaults: Vec<Default> = serde_json::from_value(list.clone()).map_err(|e| format!("{wire_name}: {e}"))?;
        let (class_name, msg_name) = wire_name.split_once('.').ok_or_else(|| format!("param defaults: {wire_name}"))?;
        let Some(id) = schema.class_id(class_name) else { continue };
        let enums = schema.enums.clone();
        let Some(msg) = schema.classes[id].messages.iter_mut().find(|m| m.name == msg_name) else { continue };
        let first =
            msg.params.len().checked_sub(defaults.len()).ok_or_else(|| format!("{wire_name}: too many defaults"))?;
        for (param, d) in msg.params[first..].iter_mut().zip(&defaults) {
            if param.name != d.name {
                return Err(format!("{wire_name}: {} is not a trailing parameter", d.name));
            }
            // The facts write a map as a JSON object; the datamodel's own defaults use pairs.
            let default = match &d.default {
                serde_json::Value::Object(map) => {
                    serde_json::Value::Array(map.iter().map(|(k, v)| serde_json::json!([k, v])).collect())
                }
                other => other.clone(),
            };
            let value =
                json_to_value(&default, &param.ty, &enums).map_err(|e| format!("{wire_name}.{}: {e}", d.name))?;
            param.default = Some(value);
        }
    }
    Ok(())
}

/// Marks the messages of `{"messages": ["Class.message", …]}` removed; every one must exist.
pub fn attach_removed(schema: &mut Schema, text: &str) -> Result<(), String> {
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    for name in raw["messages"].as_array().ok_or("removed: no messages")? {
        let name = name.as_str().ok_or("removed: not a name")?;
        let (class_name, msg_name) = name.split_once('.').ok_or_else(|| format!("removed: {name}"))?;
        let id = schema.class_id(class_name).ok_or_else(|| format!("removed: no class {class_name}"))?;
        let msg = schema.classes[id].messages.iter_mut().find(|m| m.name == msg_name);
        msg.ok_or_else(|| format!("removed: no message {name}"))?.removed = true;
    }
    Ok(())
}

/// Parses the schema text. Public for the schema tests; everything else uses [`schema`].
pub fn load(text: &str) -> Result<Schema, String> {
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let enums: HashMap<String, Vec<String>> =
        serde_json::from_value(raw["enums"].clone()).map_err(|e| format!("enums: {e}"))?;
    let errors: HashMap<String, Vec<String>> =
        serde_json::from_value(raw["errors"].clone()).map_err(|e| format!("errors: {e}"))?;
    let raw_classes = raw["classes"].as_array().ok_or("classes")?;

    let mut classes = Vec::with_capacity(raw_classes.len());
    for (id, rc) in raw_classes.iter().enumerate() {
        classes.push(load_class(id, rc, &enums)?);
    }
    let class_index: HashMap<String, ClassId> = classes.iter().map(|c| (c.name.clone(), c.id)).collect();
    let class_lower_index = classes.iter().map(|c| (c.name_lower.clone(), c.id)).collect();

    let mut schema = Schema {
        api_release: raw["api_release"].as_str().unwrap_or("").to_string(),
        api_version_major: raw["api_version"]["api_version_major"].as_i64().unwrap_or(2),
        api_version_minor: raw["api_version"]["api_version_minor"].as_i64().unwrap_or(21),
        classes,
        class_index,
        class_lower_index,
        enums,
        errors,
        hash: blake3::hash(text.as_bytes()).to_hex().to_string(),
    };
    link_relations(&mut schema, raw["relations"].as_array().map(Vec::as_slice).unwrap_or(&[]))?;
    add_hidden_messages(&mut schema);
    Ok(schema)
}

fn load_class(id: ClassId, rc: &serde_json::Value, enums: &HashMap<String, Vec<String>>) -> Result<Class, String> {
    let name = rc["name"].as_str().ok_or("class name")?.to_string();
    let mut fields = Vec::new();
    for rf in rc["fields"].as_array().ok_or("fields")? {
        let fname = rf["name"].as_str().ok_or("field name")?.to_string();
        let ty = Ty::parse(rf["type"].as_str().ok_or("field type")?)?;
        let qual = match rf["qual"].as_str() {
            Some("rw") => Qual::Rw,
            Some("ro_constructor") => Qual::RoConstructor,
            Some("ro_runtime") => Qual::RoRuntime,
            other => return Err(format!("{name}.{fname}: qualifier {other:?}")),
        };
        let default = match rf.get("default") {
            Some(d) => Some(json_to_value(d, &ty, enums).map_err(|e| format!("{name}.{fname} default: {e}"))?),
            None => None,
        };
        fields.push(Field { name: fname, ty, qual, default, relation: Relation::None });
    }
    let field_index: HashMap<String, FieldId> = fields.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect();
    let mut messages = Vec::new();
    for rm in rc["messages"].as_array().ok_or("messages")? {
        messages.push(load_message(&name, rm, &fields, &field_index, enums)?);
    }
    let message_index = messages.iter().enumerate().map(|(i, m)| (m.name.clone(), i)).collect();
    let stored = messages.iter().any(|m| m.kind == Kind::GetRecord);
    Ok(Class {
        id,
        name_lower: name.to_ascii_lowercase(),
        uuid_field: field_index.get("uuid").copied(),
        name_label_field: field_index.get("name_label").copied(),
        name,
        fields,
        messages,
        field_index,
        message_index,
        stored,
    })
}

fn load_message(
    class: &str,
    rm: &serde_json::Value,
    fields: &[Field],
    field_index: &HashMap<String, FieldId>,
    enums: &HashMap<String, Vec<String>>,
) -> Result<Message, String> {
    let name = rm["name"].as_str().ok_or("message name")?.to_string();
    let mut params = Vec::new();
    for rp in rm["params"].as_array().ok_or("params")? {
        let ty = Ty::parse(rp["type"].as_str().ok_or("param type")?)?;
        let default = match rp.get("default") {
            Some(d) => Some(json_to_value(d, &ty, enums)?),
            None => None,
        };
        params.push(Param { name: rp["name"].as_str().ok_or("param name")?.to_string(), ty, default });
    }
    let implicit = rm["implicit"].as_bool().unwrap_or(false);
    let kind = if implicit { implicit_kind(&name, fields, field_index) } else { Kind::Explicit };
    let strings = |key: &str| -> Vec<String> {
        rm[key].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let wire_name = format!("{class}.{name}");
    Ok(Message {
        permission: wire_name.to_ascii_lowercase(),
        wire_name,
        takes_session: params.first().is_some_and(|p| p.ty == Ty::Ref("session".into())),
        params,
        result: Ty::parse(rm["result"].as_str().ok_or("result")?)?,
        errors: strings("errors"),
        roles: strings("roles"),
        implicit,
        is_async: rm["async"].as_bool().unwrap_or(false),
        kind,
        map_keys: Vec::new(),
        removed: false,
        name,
    })
}

/// Classifies an implicit message by its name (xapi datamodel_utils.ml `messages_of_obj`).
fn implicit_kind(name: &str, fields: &[Field], index: &HashMap<String, FieldId>) -> Kind {
    match name {
        "get_all" => return Kind::GetAll,
        "get_all_records" => return Kind::GetAllRecords,
        "get_record" => return Kind::GetRecord,
        "get_by_uuid" => return Kind::GetByUuid,
        "get_by_name_label" => return Kind::GetByNameLabel,
        "create" => return Kind::Create,
        "destroy" => return Kind::Destroy,
        _ => {}
    }
    let field = |prefix: &str| name.strip_prefix(prefix).and_then(|f| index.get(f).copied());
    if let Some(f) = field("get_") {
        return Kind::Get(f);
    }
    if let Some(f) = field("set_") {
        return Kind::Set(f);
    }
    if let Some(f) = field("add_to_") {
        return Kind::AddToMap(f);
    }
    if let Some(f) = field("remove_from_") {
        return Kind::RemoveFromMap(f);
    }
    if let Some(f) = field("add_") {
        if matches!(fields[f].ty, Ty::Set(_)) {
            return Kind::AddToSet(f);
        }
    }
    if let Some(f) = field("remove_") {
        if matches!(fields[f].ty, Ty::Set(_)) {
            return Kind::RemoveFromSet(f);
        }
    }
    Kind::Explicit
}

/// Links both ends of every relation listed in the schema.
fn link_relations(schema: &mut Schema, relations: &[serde_json::Value]) -> Result<(), String> {
    let resolve = |schema: &Schema, pair: &serde_json::Value| -> Result<(ClassId, FieldId), String> {
        let c = pair[0].as_str().ok_or("relation class")?;
        let f = pair[1].as_str().ok_or("relation field")?;
        let class = schema.class(c).ok_or_else(|| format!("relation: no class {c}"))?;
        let field = class.field(f).ok_or_else(|| format!("relation: no field {c}.{f}"))?;
        Ok((class.id, field))
    };
    for rel in relations {
        if let Some(pair) = rel.get("many_to_many") {
            let (ac, af) = resolve(schema, &pair[0])?;
            let (bc, bf) = resolve(schema, &pair[1])?;
            schema.classes[ac].fields[af].relation = Relation::ManyToMany { class: bc, field: bf };
            schema.classes[bc].fields[bf].relation = Relation::ManyToMany { class: ac, field: af };
            continue;
        }
        let (oc, of) = resolve(schema, &rel["one"])?;
        let (mc, mf) = resolve(schema, &rel["many"])?;
        if !schema.classes[oc].fields[of].ty.is_ref() || !matches!(schema.classes[mc].fields[mf].ty, Ty::Set(_)) {
            return Err(format!("relation {rel}: the one side must be a ref and the many side a set"));
        }
        schema.classes[oc].fields[of].relation = Relation::One { class: mc, field: mf };
        schema.classes[mc].fields[mf].relation = Relation::Many { class: oc, field: of };
    }
    Ok(())
}

/// Adds the hidden-but-callable `get_all_where` / `get_all_records_where` to every class with
/// `get_all_records` (docs/xenapi-semantics.md §d.1); they share its roles.
fn add_hidden_messages(schema: &mut Schema) {
    for class in &mut schema.classes {
        let Some(base) = class.message("get_all_records").cloned() else { continue };
        if base.kind != Kind::GetAllRecords {
            continue;
        }
        let mut params = base.params.clone();
        params.push(Param { name: "expr".into(), ty: Ty::String, default: None });
        for (name, kind, result) in [
            ("get_all_records_where", Kind::GetAllRecordsWhere, base.result.clone()),
            ("get_all_where", Kind::GetAllWhere, Ty::Set(Box::new(Ty::Ref(class.name.clone())))),
        ] {
            if class.message_index.contains_key(name) {
                continue;
            }
            let wire_name = format!("{}.{name}", class.name);
            class.message_index.insert(name.to_string(), class.messages.len());
            class.messages.push(Message {
                name: name.to_string(),
                permission: wire_name.to_ascii_lowercase(),
                wire_name,
                params: params.clone(),
                result,
                errors: Vec::new(),
                roles: base.roles.clone(),
                implicit: true,
                is_async: false,
                takes_session: true,
                kind,
                map_keys: Vec::new(),
                removed: false,
            });
        }
    }
}

#[cfg(test)]
mod generated_names {
    use super::generated::{class, field};
    use super::schema;
    use crate::error::ErrorCode;

    #[test]
    fn resolve_to_the_schemas() {
        assert_eq!(class::VM.get().name, "VM");
        assert_eq!(class::VM_METRICS.get().name, "VM_metrics");
        assert_eq!(field::vm::POWER_STATE.name(), "power_state");
        assert_eq!(field::vm::VCPUS_MAX.name(), "VCPUs_max");
        assert_eq!(field::host::CPU_INFO.class().name, "host");
        assert_eq!(ErrorCode::VmBadPowerState.as_str(), "VM_BAD_POWER_STATE");
        assert_eq!(ErrorCode::VmBadPowerState.params(), ["vm", "expected", "actual"]);
        assert_eq!(schema().errors.len(), 635);
    }
}
