//! xe's view of an object: its fields with xe's names (`name-label`, `power-state`,
//! `resident-on`), read-only or writable, each rendered as xe renders it (refs as uuids, maps as
//! `k: v; k2: v2`, sets joined with `; `). The field tables are xapi's `records.ml`, extracted into
//! `schema/facts/xe_records.json` by `schema/gen/xe_records.py`; every value is read from the
//! objects' records over the API, companion objects (a VM's metrics) through the `via` field.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::api::{s, Api};
use super::failure::XeError;
use crate::schema::{schema, Ty};

/// The embedded field tables.
pub const XE_RECORDS_JSON: &str = include_str!("../../schema/facts/xe_records.json");

#[derive(Deserialize)]
pub struct Facts {
    pub classes: BTreeMap<String, ClassFacts>,
    #[serde(default)]
    pub enum_strings: BTreeMap<String, EnumStrings>,
}

#[derive(Deserialize)]
pub struct EnumStrings {
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub struct ClassFacts {
    /// xe's name for the class (`vm`, `vdi`, `pif`).
    pub cli: String,
    /// The fields `CLASS-list` shows without `params=`.
    pub list_defaults: Vec<String>,
    /// Filters `CLASS-list` always applies (e.g. no templates in `vm-list`).
    #[serde(default)]
    pub def_filters: Vec<(String, String)>,
    pub fields: Vec<FieldFacts>,
    /// Other xe names over the same records (`template`, `snapshot` over VM), with their own
    /// filters and list fields.
    #[serde(default)]
    pub other_cli: Vec<OtherCli>,
}

#[derive(Deserialize)]
pub struct OtherCli {
    pub cli: String,
    pub list_defaults: Vec<String>,
    #[serde(default)]
    pub def_filters: Vec<(String, String)>,
}

/// What one xe class name lists: its filters and default fields.
#[derive(Clone, Copy)]
pub struct View {
    pub cli: &'static str,
    pub class: &'static str,
    pub list_defaults: &'static [String],
    pub def_filters: &'static [(String, String)],
}

/// Every xe class name, `template` and `snapshot` included.
pub fn views() -> Vec<View> {
    let mut out = Vec::new();
    for (class, c) in &facts().classes {
        out.push(View { cli: &c.cli, class, list_defaults: &c.list_defaults, def_filters: &c.def_filters });
        for o in &c.other_cli {
            out.push(View { cli: &o.cli, class, list_defaults: &o.list_defaults, def_filters: &o.def_filters });
        }
    }
    out
}

#[derive(Deserialize, Clone)]
pub struct Source {
    pub class: String,
    pub field: String,
    /// The ref field of the object's own class that leads to `class` (a VM's `metrics`).
    #[serde(default)]
    pub via: Option<String>,
}

#[derive(Deserialize, Clone)]
pub struct FieldFacts {
    pub name: String,
    /// `RO`, `RW`, `SRO`, `SRW`, `MRO` or `MRW`.
    pub kind: String,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub expensive: bool,
    #[serde(default)]
    pub deprecated: bool,
    pub source: Option<Source>,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub enum_fn: Option<String>,
    #[serde(default)]
    pub set: Option<String>,
    #[serde(default)]
    pub add_to_set: Option<String>,
    #[serde(default)]
    pub remove_from_set: Option<String>,
    #[serde(default)]
    pub add_to_map: Option<String>,
    #[serde(default)]
    pub remove_from_map: Option<String>,
    /// How the setter reads its string (`bytes` takes `1GiB`).
    #[serde(default)]
    pub set_arg: Option<String>,
    /// Printed when the companion record cannot be read.
    #[serde(default)]
    pub missing: Option<String>,
    /// A computed field: the message whose answer is shown (called with the object's ref).
    #[serde(default)]
    pub message: Option<String>,
    /// Printed when `message` fails.
    #[serde(default)]
    pub message_error_value: Option<String>,
    #[serde(default)]
    pub case_insensitive: bool,
}

impl FieldFacts {
    pub fn is_set(&self) -> bool {
        self.kind.starts_with('S')
    }

    pub fn is_map(&self) -> bool {
        self.kind.starts_with('M')
    }

    /// The label `print_field` gives it: `name ( RO)`, `name (MRW)`, `… [DEPRECATED]`.
    pub fn label(&self) -> String {
        let kind = if self.kind.len() == 2 { format!(" {}", self.kind) } else { self.kind.clone() };
        let deprecated = if self.deprecated { " [DEPRECATED]" } else { "" };
        format!("{} ({kind}){deprecated}", self.name)
    }
}

pub fn facts() -> &'static Facts {
    static FACTS: OnceLock<Facts> = OnceLock::new();
    FACTS.get_or_init(|| serde_json::from_str(XE_RECORDS_JSON).expect("embedded xe_records.json is valid"))
}

/// The class whose xe name is `cli` (`vm` → `VM`).
pub fn class_by_cli(cli: &str) -> Option<(&'static str, &'static ClassFacts)> {
    facts().classes.iter().find(|(_, c)| c.cli == cli).map(|(k, c)| (k.as_str(), c))
}

pub fn class_facts(class: &str) -> Option<&'static ClassFacts> {
    facts().classes.get(class)
}

pub const NULL_REF: &str = "OpaqueRef:NULL";
/// What xe shows for a ref it cannot find (`records.ml` `nid`).
pub const NOT_IN_DATABASE: &str = "<not in database>";

/// Records and uuids of other objects, fetched once per invocation: a few objects one call
/// each, a class read whole once it is asked about often.
#[derive(Default)]
pub struct Resolver {
    whole: HashMap<String, HashMap<String, Map<String, Json>>>,
    single: HashMap<(String, String), Option<Map<String, Json>>>,
    asked: HashMap<String, usize>,
}

/// How many single lookups of a class before it is read whole.
const SINGLE_LOOKUPS: usize = 16;

impl Resolver {
    /// Remembers records already in hand (a `get_all_records` the command made).
    pub fn remember(&mut self, class: &str, records: &Map<String, Json>) {
        let all = records.iter().filter_map(|(r, v)| v.as_object().map(|o| (r.clone(), o.clone()))).collect();
        self.whole.insert(class.to_string(), all);
    }

    /// The record of `class` object `r`, if it exists.
    pub fn record(&mut self, api: &Api, class: &str, r: &str) -> Result<Option<Map<String, Json>>, XeError> {
        if r == NULL_REF || r.is_empty() {
            return Ok(None);
        }
        if let Some(all) = self.whole.get(class) {
            return Ok(all.get(r).cloned());
        }
        let key = (class.to_string(), r.to_string());
        if let Some(hit) = self.single.get(&key) {
            return Ok(hit.clone());
        }
        let asked = self.asked.entry(class.to_string()).or_default();
        *asked += 1;
        if *asked > SINGLE_LOOKUPS {
            let all = api.call(&format!("{class}.get_all_records"), vec![])?;
            if let Some(map) = all.as_object() {
                self.remember(class, map);
                return Ok(self.whole[class].get(r).cloned());
            }
        }
        let got = match api.call(&format!("{class}.get_record"), vec![s(r)]) {
            Ok(Json::Object(o)) => Some(o),
            Ok(_) => None,
            Err(XeError::Api { code, .. }) if code == "HANDLE_INVALID" => None,
            Err(e) => return Err(e),
        };
        self.single.insert(key, got.clone());
        Ok(got)
    }

    /// `get_uuid_from_ref`: the uuid of `r`, or `<not in database>`.
    pub fn uuid(&mut self, api: &Api, class: &str, r: &str) -> Result<String, XeError> {
        Ok(self
            .record(api, class, r)?
            .and_then(|o| o.get("uuid").and_then(Json::as_str).map(str::to_string))
            .unwrap_or_else(|| NOT_IN_DATABASE.to_string()))
    }

    /// `get_name_from_ref`: the name label of `r`, or `<not in database>`.
    pub fn name(&mut self, api: &Api, class: &str, r: &str) -> Result<String, XeError> {
        Ok(self
            .record(api, class, r)?
            .and_then(|o| o.get("name_label").and_then(Json::as_str).map(str::to_string))
            .unwrap_or_else(|| NOT_IN_DATABASE.to_string()))
    }
}

/// One object as xe shows it.
pub struct Obj {
    pub class: String,
    pub r#ref: String,
    pub record: Map<String, Json>,
}

impl Obj {
    pub fn facts(&self) -> &'static ClassFacts {
        class_facts(&self.class).expect("an xe class")
    }

    /// The value of `field` as xe prints it.
    pub fn get(&self, api: &Api, res: &mut Resolver, field: &FieldFacts) -> Result<String, XeError> {
        let Some(src) = &field.source else { return self.computed(api, res, field) };
        let value = match &src.via {
            None if src.class == self.class => self.record.get(&src.field).cloned(),
            None => None,
            Some(via) => {
                let target = self.record.get(via).and_then(Json::as_str).unwrap_or(NULL_REF).to_string();
                match res.record(api, &src.class, &target)? {
                    Some(companion) => companion.get(&src.field).cloned(),
                    None => return Ok(field.missing.clone().unwrap_or_default()),
                }
            }
        };
        let ty = field_ty(&src.class, &src.field);
        match value {
            Some(v) => render(api, res, field, ty.as_ref(), &v),
            None => Ok(field.missing.clone().unwrap_or_default()),
        }
    }

    /// A field records.ml computes with a call of its own.
    fn computed(&self, api: &Api, res: &mut Resolver, field: &FieldFacts) -> Result<String, XeError> {
        if let Some(text) = self.hand_computed(api, res, field)? {
            return Ok(text);
        }
        let Some(method) = &field.message else { return Ok("<unknown>".into()) };
        let message = crate::schema::schema().lookup(method).map(|(_, m)| m);
        let ty = message.map(|m| m.result.clone());
        // Most take the object; a few (`SR.get_supported_types`) take nothing.
        let args = if message.is_some_and(|m| m.args().is_empty()) { vec![] } else { vec![s(&self.r#ref)] };
        match api.call(method, args) {
            Ok(v) => render(api, res, field, ty.as_ref(), &v),
            // A question this server does not answer (NOT_IMPLEMENTED) leaves the field unknown
            // rather than failing the whole record.
            Err(_) => Ok(field.message_error_value.clone().unwrap_or_else(|| "<unknown>".into())),
        }
    }

    /// The members of a set field, or the pairs of a map field, rendered.
    pub fn get_set(&self, api: &Api, res: &mut Resolver, field: &FieldFacts) -> Result<Vec<String>, XeError> {
        let Some(src) = &field.source else { return Ok(Vec::new()) };
        let Some(Json::Array(items)) = self.source_value(api, res, src)? else { return Ok(Vec::new()) };
        let inner = match field_ty(&src.class, &src.field) {
            Some(Ty::Set(t)) => Some(*t),
            _ => None,
        };
        items.iter().map(|v| render_scalar(api, res, field, inner.as_ref(), v)).collect()
    }

    pub fn get_map(&self, api: &Api, res: &mut Resolver, field: &FieldFacts) -> Result<Vec<(String, String)>, XeError> {
        let Some(src) = &field.source else { return Ok(Vec::new()) };
        let Some(Json::Object(map)) = self.source_value(api, res, src)? else { return Ok(Vec::new()) };
        let vty = match field_ty(&src.class, &src.field) {
            Some(Ty::Map(_, v)) => Some(*v),
            _ => None,
        };
        map.iter().map(|(k, v)| Ok((k.clone(), render_scalar(api, res, field, vty.as_ref(), v)?))).collect()
    }

    fn source_value(&self, api: &Api, res: &mut Resolver, src: &Source) -> Result<Option<Json>, XeError> {
        Ok(match &src.via {
            None => self.record.get(&src.field).cloned(),
            Some(via) => {
                let target = self.record.get(via).and_then(Json::as_str).unwrap_or(NULL_REF).to_string();
                res.record(api, &src.class, &target)?.and_then(|c| c.get(&src.field).cloned())
            }
        })
    }
}

impl Obj {
    /// The computed fields records.ml builds from several fields, written out here.
    fn hand_computed(&self, api: &Api, res: &mut Resolver, field: &FieldFacts) -> Result<Option<String>, XeError> {
        let text = |k: &str| self.record.get(k).and_then(Json::as_str).unwrap_or(NULL_REF).to_string();
        Ok(match (self.class.as_str(), field.name.as_str()) {
            // The SR's one host by name; `<shared>` with several PBDs.
            ("SR", "host") => {
                let pbds: Vec<String> = self
                    .record
                    .get("PBDs")
                    .and_then(Json::as_array)
                    .map(|a| a.iter().filter_map(Json::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                Some(match pbds.as_slice() {
                    [pbd] => {
                        let host = res
                            .record(api, "PBD", pbd)?
                            .and_then(|p| p.get("host").and_then(Json::as_str).map(str::to_string))
                            .unwrap_or_else(|| NULL_REF.into());
                        res.name(api, "host", &host)?
                    }
                    [] => NOT_IN_DATABASE.to_string(),
                    _ => "<shared>".to_string(),
                })
            }
            ("VBD", "vdi-name-label") => Some(if self.record.get("empty") == Some(&Json::Bool(true)) {
                "<EMPTY>".to_string()
            } else {
                res.name(api, "VDI", &text("VDI"))?
            }),
            _ => None,
        })
    }
}

pub fn field_ty(class: &str, field: &str) -> Option<Ty> {
    let c = schema().class(class)?;
    let id = c.field(field)?;
    Some(c.fields[id].ty.clone())
}

fn render(api: &Api, res: &mut Resolver, field: &FieldFacts, ty: Option<&Ty>, v: &Json) -> Result<String, XeError> {
    match (ty, v) {
        (Some(Ty::Set(inner)), Json::Array(items)) => {
            let parts: Result<Vec<String>, XeError> =
                items.iter().map(|x| render_scalar(api, res, field, Some(inner), x)).collect();
            let sep = if field.format == "uuids_comma" { ", " } else { "; " };
            Ok(parts?.join(sep))
        }
        (Some(Ty::Map(_, vty)), Json::Object(map)) => {
            let mut parts = Vec::with_capacity(map.len());
            for (k, x) in map {
                parts.push(format!("{k}: {}", render_scalar(api, res, field, Some(vty), x)?));
            }
            Ok(parts.join("; "))
        }
        _ => render_scalar(api, res, field, ty, v),
    }
}

fn render_scalar(
    api: &Api,
    res: &mut Resolver,
    field: &FieldFacts,
    ty: Option<&Ty>,
    v: &Json,
) -> Result<String, XeError> {
    Ok(match (ty, v) {
        (Some(Ty::Ref(class)), Json::String(r)) => match field.format.as_str() {
            "name" => res.name(api, class, r)?,
            "uuid_or_null" if r == NULL_REF => NULL_REF.to_string(),
            "plain" | "other" => r.clone(),
            _ => res.uuid(api, class, r)?,
        },
        (Some(Ty::Enum(_)), Json::String(e)) => enum_string(field, e),
        (Some(Ty::Float), Json::Number(n)) => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
        (_, Json::String(text)) => text.clone(),
        (_, Json::Bool(b)) => b.to_string(),
        (_, Json::Number(n)) => n.to_string(),
        (_, Json::Null) => String::new(),
        (_, other) => other.to_string(),
    })
}

/// An enum value as xe prints it: the `Record_util` table when records.ml uses one, else the
/// wire name.
fn enum_string(field: &FieldFacts, wire: &str) -> String {
    if let Some(table) = field.enum_fn.as_ref().and_then(|f| facts().enum_strings.get(f)) {
        if let Some(text) = table.map.get(wire) {
            return text.clone();
        }
        if let Some((_, text)) = table.map.iter().find(|(k, _)| k.eq_ignore_ascii_case(wire)) {
            return text.clone();
        }
    }
    wire.to_string()
}

/// The ref of the `class` object with `uuid`, as xe finds it (`get_by_uuid`).
pub fn ref_by_uuid(api: &Api, class: &str, uuid: &str) -> Result<String, XeError> {
    api.call_str(&format!("{class}.get_by_uuid"), vec![s(uuid)])
}

/// The object of `class` with `uuid`, record and all.
pub fn fetch(api: &Api, class: &str, uuid: &str) -> Result<Obj, XeError> {
    let r = ref_by_uuid(api, class, uuid)?;
    fetch_ref(api, class, &r)
}

pub fn fetch_ref(api: &Api, class: &str, r: &str) -> Result<Obj, XeError> {
    let record = match api.call(&format!("{class}.get_record"), vec![s(r)])? {
        Json::Object(o) => o,
        _ => Map::new(),
    };
    Ok(Obj { class: class.to_string(), r#ref: r.to_string(), record })
}

/// Every object of `class`.
pub fn all(api: &Api, res: &mut Resolver, class: &str) -> Result<Vec<Obj>, XeError> {
    let all = api.call(&format!("{class}.get_all_records"), vec![])?;
    let Json::Object(map) = all else { return Ok(Vec::new()) };
    res.remember(class, &map);
    let mut objs: Vec<Obj> = map
        .into_iter()
        .filter_map(|(r, v)| match v {
            Json::Object(record) => Some(Obj { class: class.to_string(), r#ref: r, record }),
            _ => None,
        })
        .collect();
    // A stable order (xapi's follows its hash tables): by name, then device (for the classes
    // without a name: PIF, VIF, VBD), then uuid.
    let key = |o: &Obj| {
        let text = |field: &str| o.record.get(field).and_then(Json::as_str).unwrap_or("").to_string();
        (name_of(&o.record).to_string(), text("device"), text("userdevice"), uuid_of(&o.record).to_string())
    };
    objs.sort_by_cached_key(key);
    Ok(objs)
}

pub fn uuid_of(record: &Map<String, Json>) -> &str {
    record.get("uuid").and_then(Json::as_str).unwrap_or("")
}

pub fn name_of(record: &Map<String, Json>) -> &str {
    record.get("name_label").and_then(Json::as_str).unwrap_or("")
}
