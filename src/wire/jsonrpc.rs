//! JSON-RPC codec for `POST /jsonrpc`: versions 1.0 and 2.0, answered in the caller's version.
//!
//! Decoding follows ocaml-rpc's `Jsonrpc.version_id_and_call_of_string` (docs/xenapi-semantics.md §b):
//!
//! * `"jsonrpc": "2.0"` means 2.0, no `jsonrpc` member means 1.0, anything else is malformed;
//! * `method` is a string; 1.0 `params` must be an array; 2.0 `params` may be an array, absent or
//!   `null` (no parameters), or an object (one struct parameter);
//! * `id` is required and is an integer or a string. It is echoed back with its JSON type
//!   (docs/clients.md §4.3). A notification (no `id`, or `null`) is refused, as xapi refuses it;
//! * values: string → `String`, integer → `Int` (an integer beyond `i64` → `Float`), other
//!   number → `Float`, boolean → `Bool`, `null` → `Null`, array → `Set`, object → `Record` in
//!   document order, duplicate keys kept. The first of duplicate envelope members wins, as with
//!   ocaml-rpc's `List.assoc`.
//!
//! The decoder is a serde visitor that builds [`Value`]s straight from serde_json's parser, with
//! no intermediate `serde_json::Value` (which would also sort object keys).
//!
//! Encoding writes JSON by hand; it cannot fail. Replies follow `Jsonrpc.json_of_response` and
//! xapi's 2.0 error translation (docs/xenapi-semantics.md §b, docs/clients.md §4.1 and §4.3):
//!
//! * 1.0 success `{"result":…,"error":null,"id":…}`, failure
//!   `{"result":null,"error":["CODE",params…],"id":…}`;
//! * 2.0 success `{"jsonrpc":"2.0","result":…,"id":…}` with no `error` member, failure
//!   `{"jsonrpc":"2.0","error":{"code":1,"message":"CODE","data":[params…]},"id":…}`.
//!
//! Ints are JSON integers, datetimes `"YYYYMMDDTHH:MM:SSZ"`, refs and enums strings, maps
//! objects with string keys. A non-finite float, which JSON cannot carry, is the string `"NaN"`,
//! `"+Inf"` or `"-Inf"`: the spelling xapi's own Go SDK writes and reads, where xapi would write
//! a bare `NaN` that breaks `JSON.parse` in xen-api (docs/clients.md §4.3).

use std::cell::Cell;
use std::fmt;
use std::fmt::Write as _;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{body_text, key_text, push_int, DecodeError, Request, NESTING_DEPTH_MAX};
use crate::error::ApiError;
use crate::value::{format_datetime, Value};

/// The protocol version of a request, which its reply must use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// JSON-RPC 1.0: no `jsonrpc` member (the C# SDK starts in it).
    V1,
    /// JSON-RPC 2.0: `"jsonrpc": "2.0"`.
    V2,
}

/// A decoded JSON-RPC request: the call plus what its reply must echo.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonRequest {
    pub version: Version,
    /// The request `id`, a JSON integer or string, echoed unchanged.
    pub id: serde_json::Value,
    pub request: Request,
}

/// The 2.0 `error.code` xapi always sends (`error_code_lit`, docs/xenapi-semantics.md §b).
const ERROR_CODE: i64 = 1;

/// Decodes a JSON-RPC 1.0 or 2.0 request body.
pub fn decode_call(body: &[u8]) -> Result<JsonRequest, DecodeError> {
    let text = body_text(body)?;
    let too_deep = Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let envelope = EnvelopeSeed { too_deep: &too_deep }
        .deserialize(&mut deserializer)
        .and_then(|envelope| deserializer.end().map(|()| envelope));
    match envelope {
        Ok(envelope) => envelope.into_request(),
        Err(_) if too_deep.get() => Err(DecodeError::TooDeep { depth_max: NESTING_DEPTH_MAX }),
        Err(error) => Err(DecodeError::Json { message: error.to_string() }),
    }
}

/// Encodes the reply to a request of `version` with `id`.
pub fn encode_response(version: Version, id: &serde_json::Value, result: &Result<Value, ApiError>) -> Vec<u8> {
    let cached = result.as_ref().map_or(0, |value| value.cached_encoding_len().1);
    let mut out = String::with_capacity(128 + cached);
    match (version, result) {
        (_, Ok(value)) => {
            out.push_str(result_open(version));
            push_value(&mut out, value);
            out.push_str(result_close(version));
        }
        (Version::V1, Err(error)) => {
            out.push_str("{\"result\":null,\"error\":[");
            push_string(&mut out, &error.code);
            for param in &error.params {
                out.push(',');
                push_string(&mut out, param);
            }
            out.push(']');
        }
        (Version::V2, Err(error)) => {
            out.push_str("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":");
            push_int(&mut out, ERROR_CODE);
            out.push_str(",\"message\":");
            push_string(&mut out, &error.code);
            out.push_str(",\"data\":[");
            for (i, param) in error.params.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(&mut out, param);
            }
            out.push_str("]}");
        }
    }
    out.push_str(",\"id\":");
    push_json(&mut out, id);
    out.push('}');
    out.into_bytes()
}

/// [`encode_response`] of a successful `value` in pieces of about `piece_bytes` or more, cut
/// between the entries of a top-level map or set (a `get_all_records` reply), each handed to
/// `emit` as it is made; `emit` answers false to stop (the reader went away). The pieces put
/// together are the bytes `encode_response` makes, but never all held at once.
pub fn encode_response_pieces(
    version: Version,
    id: &serde_json::Value,
    value: &Value,
    piece_bytes: usize,
    emit: &mut dyn FnMut(String) -> bool,
) {
    let mut out = String::with_capacity(piece_bytes + piece_bytes / 4);
    out.push_str(result_open(version));
    let mut cut = |out: &mut String| out.len() < piece_bytes || emit(std::mem::take(out));
    match value {
        Value::Map(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(&mut out, &key_text(key));
                out.push(':');
                push_value(&mut out, item);
                if !cut(&mut out) {
                    return;
                }
            }
            out.push('}');
        }
        Value::Set(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(&mut out, item);
                if !cut(&mut out) {
                    return;
                }
            }
            out.push(']');
        }
        other => push_value(&mut out, other),
    }
    out.push_str(result_close(version));
    out.push_str(",\"id\":");
    push_json(&mut out, id);
    out.push('}');
    emit(out);
}

/// What a successful reply's result follows, by version.
fn result_open(version: Version) -> &'static str {
    match version {
        Version::V1 => "{\"result\":",
        Version::V2 => "{\"jsonrpc\":\"2.0\",\"result\":",
    }
}

/// What follows a successful reply's result before its id: 1.0 says there is no error.
fn result_close(version: Version) -> &'static str {
    match version {
        Version::V1 => ",\"error\":null",
        Version::V2 => "",
    }
}

/// Encodes a request: for clients, tests and benches. Parameters are always an array.
pub fn encode_call(version: Version, id: &serde_json::Value, method: &str, params: &[Value]) -> Vec<u8> {
    let mut out = String::with_capacity(128);
    out.push('{');
    if version == Version::V2 {
        out.push_str("\"jsonrpc\":\"2.0\",");
    }
    out.push_str("\"method\":");
    push_string(&mut out, method);
    out.push_str(",\"params\":[");
    for (i, param) in params.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_value(&mut out, param);
    }
    out.push_str("],\"id\":");
    push_json(&mut out, id);
    out.push('}');
    out.into_bytes()
}

/// A value as a `serde_json` tree, with the same mapping as [`encode_response`]. Object keys
/// follow `serde_json::Map`'s order, which is sorted unless serde_json's `preserve_order` feature
/// is on; the byte encoders keep document order.
pub fn encode_value(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::String(s) | Value::Enum(s) | Value::Ref(s) => Json::String(s.clone()),
        Value::Int(i) => Json::from(*i),
        Value::Float(x) => match serde_json::Number::from_f64(*x) {
            Some(number) => Json::Number(number),
            None => Json::String(non_finite_text(*x).to_string()),
        },
        Value::Bool(b) => Json::Bool(*b),
        Value::DateTime(t) => Json::String(format_datetime(*t)),
        Value::Set(items) => Json::Array(items.iter().map(encode_value).collect()),
        Value::Map(entries) => {
            Json::Object(entries.iter().map(|(k, v)| (key_text(k).into_owned(), encode_value(v))).collect())
        }
        Value::Record(members) => Json::Object(members.iter().map(|(k, v)| (k.clone(), encode_value(v))).collect()),
        Value::Null => Json::Null,
        Value::Int32(i) => Json::from(*i),
        Value::Lazy(source) => {
            let mut object = serde_json::Map::new();
            source.for_each_member(&mut |k, v| {
                object.insert(k.to_string(), encode_value(v));
            });
            Json::Object(object)
        }
    }
}

/// A string value may hold no control character but tab, line feed and carriage return: the
/// XML-RPC wire cannot carry one (XML 1.0), and what one wire accepts the other must read back.
fn xml_safe<E: de::Error>(s: &str) -> Result<(), E> {
    if s.bytes().any(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) {
        return Err(E::custom("a string holds a control character XML-RPC cannot carry"));
    }
    Ok(())
}

fn non_finite_text(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::String(s) | Value::Enum(s) | Value::Ref(s) => push_string(out, s),
        Value::Int(i) => push_int(out, *i),
        Value::Float(x) => match serde_json::Number::from_f64(*x) {
            // serde_json's shortest round-trip form: `1.0`, `0.1`, `1e20`.
            Some(number) => {
                let _ = write!(out, "{number}");
            }
            None => push_string(out, non_finite_text(*x)),
        },
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::DateTime(t) => push_string(out, &format_datetime(*t)),
        Value::Set(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, &key_text(key));
                out.push(':');
                push_value(out, item);
            }
            out.push('}');
        }
        Value::Record(members) => {
            out.push('{');
            for (i, (name, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, name);
                out.push(':');
                push_value(out, item);
            }
            out.push('}');
        }
        Value::Null => out.push_str("null"),
        Value::Int32(i) => out.push_str(&i.to_string()),
        Value::Lazy(source) => {
            let encode = |out: &mut String| {
                out.push('{');
                let mut first = true;
                source.for_each_member(&mut |name, item| {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    push_string(out, name);
                    out.push(':');
                    push_value(out, item);
                });
                out.push('}');
            };
            match source.encoding_cache() {
                Some(cache) => cache.push_json(out, encode),
                None => encode(out),
            }
        }
    }
}

/// Writes a `serde_json` tree (the echoed `id`).
fn push_json(out: &mut String, json: &serde_json::Value) {
    use serde_json::Value as Json;
    match json {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(number) => {
            let _ = write!(out, "{number}");
        }
        Json::String(s) => push_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json(out, item);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (name, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, name);
                out.push(':');
                push_json(out, item);
            }
            out.push('}');
        }
    }
}

/// Writes a JSON string literal: `"` and `\` escaped, control characters as `\n`-style or
/// `\u00XX` escapes, everything else as UTF-8.
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a character boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The members of a request object, as read, before the version rules are applied.
#[derive(Default)]
struct Envelope {
    jsonrpc: Option<serde_json::Value>,
    method: Option<serde_json::Value>,
    params: Option<Params>,
    id: Option<serde_json::Value>,
}

/// The `params` member, whatever its JSON type, read before the version is known.
enum Params {
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
    Null,
    /// A string, number or boolean: malformed in both versions.
    Scalar,
}

impl Envelope {
    /// Applies ocaml-rpc's rules, in its order: method, jsonrpc, params, id.
    fn into_request(self) -> Result<JsonRequest, DecodeError> {
        let malformed = |reason| Err(DecodeError::JsonRpc { reason });
        let method = match self.method {
            Some(serde_json::Value::String(method)) => method,
            Some(_) => return malformed("Invalid field 'method' in request body"),
            None => return malformed("Required field method is missing"),
        };
        let version = match self.jsonrpc {
            None => Version::V1,
            Some(serde_json::Value::String(v)) if v == "2.0" => Version::V2,
            Some(_) => return malformed("Invalid field 'jsonrpc' in request body"),
        };
        let params = match (version, self.params) {
            (_, Some(Params::Array(params))) => params,
            (Version::V1, None) => return malformed("Required field params is missing"),
            (Version::V2, None | Some(Params::Null)) => Vec::new(),
            (Version::V2, Some(Params::Object(members))) => vec![Value::Record(members)],
            (_, Some(_)) => return malformed("Invalid field 'params' in request body"),
        };
        let id = match self.id {
            Some(id @ serde_json::Value::String(_)) => id,
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => serde_json::Value::Number(n),
            _ => return malformed("Invalid field 'id' in request body"),
        };
        Ok(JsonRequest { version, id, request: Request { method, params } })
    }
}

/// The envelope members the decoder reads; any other member is skipped.
enum Key {
    Jsonrpc,
    Method,
    Params,
    Id,
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "jsonrpc" => Key::Jsonrpc,
            "method" => Key::Method,
            "params" => Key::Params,
            "id" => Key::Id,
            _ => Key::Other,
        })
    }
}

struct EnvelopeSeed<'c> {
    too_deep: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Envelope, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Jsonrpc if envelope.jsonrpc.is_none() => envelope.jsonrpc = Some(map.next_value()?),
                Key::Method if envelope.method.is_none() => envelope.method = Some(map.next_value()?),
                Key::Id if envelope.id.is_none() => envelope.id = Some(map.next_value()?),
                Key::Params if envelope.params.is_none() => {
                    envelope.params = Some(map.next_value_seed(ParamsSeed { too_deep: self.too_deep })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// Reads `params`: the elements of an array are parameters at depth 1; an object is one
/// parameter at depth 1, so its members are at depth 2.
struct ParamsSeed<'c> {
    too_deep: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_> {
    type Value = Params;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Params, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed<'_> {
    type Value = Params;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array, an object or null")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
        ValueSeed { depth: 1, too_deep: self.too_deep }.items(seq).map(Params::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Params, A::Error> {
        ValueSeed { depth: 2, too_deep: self.too_deep }.members(map).map(Params::Object)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Params, E> {
        Ok(Params::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Params, E> {
        Ok(Params::Scalar)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Params, E> {
        Ok(Params::Scalar)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Params, E> {
        Ok(Params::Scalar)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Params, E> {
        Ok(Params::Scalar)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Params, E> {
        Ok(Params::Scalar)
    }
}

/// Reads one value at nesting `depth` (a parameter is at depth 1). Past [`NESTING_DEPTH_MAX`] it
/// fails and raises the shared flag, so that [`decode_call`] can tell this error from a syntax
/// error once serde_json has wrapped it.
#[derive(Clone, Copy)]
struct ValueSeed<'c> {
    depth: usize,
    too_deep: &'c Cell<bool>,
}

impl<'c> ValueSeed<'c> {
    fn child(self) -> ValueSeed<'c> {
        ValueSeed { depth: self.depth + 1, too_deep: self.too_deep }
    }

    /// The elements of an array whose own depth is `self.depth - 1`.
    fn items<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(items)
    }

    /// The members of an object whose own depth is `self.depth - 1`.
    fn members<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<(String, Value)>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            members.push((name, value));
        }
        Ok(members)
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.depth > NESTING_DEPTH_MAX {
            self.too_deep.set(true);
            return Err(de::Error::custom(format_args!("values are nested deeper than {NESTING_DEPTH_MAX} levels")));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        // Beyond i64 the number cannot be an XenAPI int; as a float it fails type coercion with
        // an API error instead of failing the whole request.
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Float(x))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        xml_safe(s)?;
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        xml_safe(&s)?;
        Ok(Value::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        self.child().items(seq).map(Value::Set)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        self.child().members(map).map(Value::Record)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;

    /// A large reply sent in pieces is the reply encoded whole, cut between entries, in both
    /// versions.
    #[test]
    fn pieces_put_together_are_the_whole_reply() {
        for version in [Version::V1, Version::V2] {
            for value in crate::wire::replies_to_cut() {
                let whole = String::from_utf8(encode_response(version, &json!(7), &Ok(value.clone()))).unwrap();
                let mut cut = Vec::new();
                encode_response_pieces(version, &json!(7), &value, 1000, &mut |piece| {
                    cut.push(piece);
                    true
                });
                assert_eq!(cut.concat(), whole);
                assert!(cut[..cut.len() - 1].iter().all(|p| p.len() >= 1000));
                let mut taken = 0;
                encode_response_pieces(version, &json!(7), &value, 1000, &mut |_| {
                    taken += 1;
                    taken < 2
                });
                assert_eq!(taken, if whole.len() > 2000 { 2 } else { 1 }, "the encoding stops when the reader goes");
            }
        }
    }

    fn decode(body: &str) -> JsonRequest {
        decode_call(body.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{body}"))
    }

    fn reason(body: &str) -> &'static str {
        match decode_call(body.as_bytes()) {
            Err(DecodeError::JsonRpc { reason }) => reason,
            other => panic!("{other:?}\n{body}"),
        }
    }

    fn reply(version: Version, id: serde_json::Value, result: Result<Value, ApiError>) -> String {
        String::from_utf8(encode_response(version, &id, &result)).unwrap()
    }

    fn text(value: &Value) -> String {
        let mut out = String::new();
        push_value(&mut out, value);
        out
    }

    fn s(text: &str) -> Value {
        Value::str(text)
    }

    // docs/xenapi-semantics.md §b, "Constructed full exchange".
    #[test]
    fn decodes_v2_login() {
        let request =
            decode(r#"{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","secret"],"id":1}"#);
        assert_eq!(request.version, Version::V2);
        assert_eq!(request.id, json!(1));
        assert_eq!(
            request.request,
            Request { method: "session.login_with_password".into(), params: vec![s("root"), s("secret")] }
        );
    }

    // docs/xenapi-semantics.md §b: no `jsonrpc` member means 1.0 (docs/clients.md §3, C# SDK starts so).
    #[test]
    fn decodes_v1_without_jsonrpc_member() {
        let request = decode(r#"{"method":"pool.get_all_records","params":["OpaqueRef:s"],"id":3}"#);
        assert_eq!(request.version, Version::V1);
        assert_eq!(request.request.params, vec![s("OpaqueRef:s")]);
    }

    // docs/xenapi-semantics.md §b: any `jsonrpc` other than "2.0" is malformed (docs/clients.md §5 "1.0").
    #[test]
    fn rejects_other_jsonrpc_values() {
        for v in [r#""1.0""#, "2.0", "null", r#""2""#] {
            let body = format!(r#"{{"jsonrpc":{v},"method":"m","params":[],"id":1}}"#);
            assert_eq!(reason(&body), "Invalid field 'jsonrpc' in request body", "{body}");
        }
    }

    // docs/xenapi-semantics.md §b: v1 params must be an array; v2 params may be an array, absent,
    // null, or an object that becomes one struct parameter.
    #[test]
    fn applies_params_rules_per_version() {
        assert_eq!(reason(r#"{"method":"m","id":1}"#), "Required field params is missing");
        assert_eq!(reason(r#"{"method":"m","params":null,"id":1}"#), "Invalid field 'params' in request body");
        assert_eq!(reason(r#"{"method":"m","params":{"a":1},"id":1}"#), "Invalid field 'params' in request body");
        assert_eq!(decode(r#"{"jsonrpc":"2.0","method":"m","id":1}"#).request.params, vec![]);
        // docs/clients.md §3: the Go SDK sends `"params": null` for zero-arg calls.
        assert_eq!(decode(r#"{"jsonrpc":"2.0","method":"m","params":null,"id":1}"#).request.params, vec![]);
        assert_eq!(
            decode(r#"{"jsonrpc":"2.0","method":"VM.create","params":{"name_label":"x","VCPUs_max":2},"id":1}"#)
                .request
                .params,
            vec![Value::Record(vec![("name_label".into(), s("x")), ("VCPUs_max".into(), Value::Int(2))])]
        );
        assert_eq!(
            reason(r#"{"jsonrpc":"2.0","method":"m","params":"x","id":1}"#),
            "Invalid field 'params' in request body"
        );
    }

    // docs/xenapi-semantics.md §b: `id` is mandatory, a number or a string; null is a notification
    // and is refused.
    #[test]
    fn requires_an_integer_or_string_id() {
        for id in ["", r#","id":null"#, r#","id":true"#, r#","id":1.5"#, r#","id":[1]"#, r#","id":{}"#] {
            let body = format!(r#"{{"jsonrpc":"2.0","method":"m","params":[]{id}}}"#);
            assert_eq!(reason(&body), "Invalid field 'id' in request body", "{body}");
        }
        assert_eq!(decode(r#"{"method":"m","params":[],"id":"a1"}"#).id, json!("a1"));
        assert_eq!(decode(r#"{"method":"m","params":[],"id":-4}"#).id, json!(-4));
        assert_eq!(decode(r#"{"method":"m","params":[],"id":18446744073709551615}"#).id, json!(u64::MAX));
    }

    #[test]
    fn requires_a_string_method() {
        assert_eq!(reason(r#"{"params":[],"id":1}"#), "Required field method is missing");
        assert_eq!(reason(r#"{"method":7,"params":[],"id":1}"#), "Invalid field 'method' in request body");
    }

    #[test]
    fn rejects_malformed_json() {
        for body in ["", "[]", "42", r#"{"method":"m","params":[],"id":1"#, r#"{"method":"m","params":[],"id":1} x"#] {
            assert!(matches!(decode_call(body.as_bytes()), Err(DecodeError::Json { .. })), "{body}");
        }
        assert!(matches!(decode_call(b"{\"method\":\"\xff\"}"), Err(DecodeError::InvalidUtf8 { offset: 11 })));
        // A lone surrogate is not a Unicode scalar value.
        assert!(matches!(decode_call(br#"{"method":"m","params":["\ud800"],"id":1}"#), Err(DecodeError::Json { .. })));
    }

    // docs/xenapi-semantics.md §b: the first of duplicate members counts (ocaml-rpc `List.assoc`);
    // unknown members are ignored.
    #[test]
    fn first_duplicate_envelope_member_wins() {
        let request = decode(r#"{"method":"a","method":"b","x":{"y":[1]},"params":[1],"params":[2],"id":1,"id":2}"#);
        assert_eq!(request.request, Request { method: "a".into(), params: vec![Value::Int(1)] });
        assert_eq!(request.id, json!(1));
    }

    // The brief's type mapping; docs/xenapi-semantics.md §b "On input ints may be JSON numbers or
    // numeric strings" (strings stay strings here; coercion happens in the schema layer).
    #[test]
    fn decodes_every_json_type() {
        let request = decode(concat!(
            r#"{"method":"m","id":0,"params":["s\u00e9\n",42,-9223372036854775808,1.5,1.0,1e3,true,false,null,"#,
            r#"[1,"2"],{"b":1,"a":{"c":[]}},"4294967296",18446744073709551615]}"#
        ));
        assert_eq!(
            request.request.params,
            vec![
                s("sé\n"),
                Value::Int(42),
                Value::Int(i64::MIN),
                Value::Float(1.5),
                Value::Float(1.0),
                Value::Float(1000.0),
                Value::Bool(true),
                Value::Bool(false),
                Value::Null,
                Value::Set(vec![Value::Int(1), s("2")]),
                Value::Record(vec![
                    ("b".into(), Value::Int(1)),
                    ("a".into(), Value::Record(vec![("c".into(), Value::Set(vec![]))]))
                ]),
                s("4294967296"),
                Value::Float(18_446_744_073_709_551_615.0),
            ]
        );
    }

    #[test]
    fn enforces_nesting_depth() {
        let nest = |depth: usize| {
            format!(r#"{{"method":"m","params":[{}1{}],"id":1}}"#, "[".repeat(depth - 1), "]".repeat(depth - 1))
        };
        assert!(decode_call(nest(NESTING_DEPTH_MAX).as_bytes()).is_ok());
        assert_eq!(
            decode_call(nest(NESTING_DEPTH_MAX + 1).as_bytes()),
            Err(DecodeError::TooDeep { depth_max: NESTING_DEPTH_MAX })
        );
        assert_eq!(decode_call(nest(100_000).as_bytes()), Err(DecodeError::TooDeep { depth_max: NESTING_DEPTH_MAX }));
        // An object parameter counts as depth 1, its members as 2.
        let object = |depth: usize| {
            format!(
                r#"{{"jsonrpc":"2.0","method":"m","params":{{"a":{}1{}}},"id":1}}"#,
                "[".repeat(depth - 2),
                "]".repeat(depth - 2)
            )
        };
        assert!(decode_call(object(NESTING_DEPTH_MAX).as_bytes()).is_ok());
        assert!(matches!(decode_call(object(NESTING_DEPTH_MAX + 1).as_bytes()), Err(DecodeError::TooDeep { .. })));
    }

    // docs/xenapi-semantics.md §b, constructed v2 replies; docs/clients.md §4.3: no `error` member on
    // success (xen-api and async-xenapi reject `"error": null`).
    #[test]
    fn encodes_v2_replies() {
        assert_eq!(
            reply(Version::V2, json!("a1"), Ok(Value::Enum("Halted".into()))),
            r#"{"jsonrpc":"2.0","result":"Halted","id":"a1"}"#
        );
        let error = ApiError::new(ErrorCode::VmBadPowerState, ["OpaqueRef:9e8d", "halted", "running"]);
        assert_eq!(
            reply(Version::V2, json!("a1"), Err(error)),
            r#"{"jsonrpc":"2.0","error":{"code":1,"message":"VM_BAD_POWER_STATE","data":["OpaqueRef:9e8d","halted","running"]},"id":"a1"}"#
        );
        // docs/clients.md §4.1: `data` is present even when empty (C# throws without it).
        assert_eq!(
            reply(Version::V2, json!(0), Err(ApiError::new(ErrorCode::MessageRemoved, Vec::<String>::new()))),
            r#"{"jsonrpc":"2.0","error":{"code":1,"message":"MESSAGE_REMOVED","data":[]},"id":0}"#
        );
    }

    // docs/xenapi-semantics.md §b, constructed v1 replies; docs/clients.md §4.3: 1.0 success carries
    // `"error":null` (the C# SDK requires the member).
    #[test]
    fn encodes_v1_replies() {
        assert_eq!(
            reply(Version::V1, json!(7), Ok(Value::Enum("Halted".into()))),
            r#"{"result":"Halted","error":null,"id":7}"#
        );
        let error = ApiError::new(ErrorCode::VmBadPowerState, ["OpaqueRef:9e8d", "halted", "running"]);
        assert_eq!(
            reply(Version::V1, json!(7), Err(error)),
            r#"{"result":null,"error":["VM_BAD_POWER_STATE","OpaqueRef:9e8d","halted","running"],"id":7}"#
        );
    }

    // docs/clients.md §4.3: the id is echoed with its JSON type (0, ints, UUID strings); the Go SDK
    // needs an integer back for an integer id.
    #[test]
    fn echoes_id_with_its_type() {
        for id in [json!(0), json!(42), json!(-1), json!(u64::MAX), json!("3f2b8c1e-0000-4000-8000-000000000000")] {
            let body = String::from_utf8(encode_call(Version::V2, &id, "m", &[])).unwrap();
            let request = decode(&body);
            assert_eq!(request.id, id);
            let out = reply(request.version, request.id, Ok(s("")));
            let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(parsed["id"], id, "{out}");
        }
    }

    // docs/xenapi-semantics.md §b "Value encoding" and docs/clients.md §4.3: ints as JSON integers,
    // datetimes in basic form with Z, void as "", maps as objects with string keys.
    #[test]
    fn encodes_each_type() {
        assert_eq!(text(&s("a\"b\\c\n\t\u{1}é")), r#""a\"b\\c\n\t\u0001é""#);
        assert_eq!(text(&Value::Ref("OpaqueRef:NULL".into())), r#""OpaqueRef:NULL""#);
        assert_eq!(text(&Value::Enum("Running".into())), r#""Running""#);
        assert_eq!(text(&Value::Int(4_294_967_296)), "4294967296");
        assert_eq!(text(&Value::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(text(&Value::Float(1.0)), "1.0");
        assert_eq!(text(&Value::Float(0.1)), "0.1");
        assert_eq!(text(&Value::Float(-2.5e-8)), "-2.5e-8");
        assert_eq!(text(&Value::Bool(true)), "true");
        assert_eq!(text(&Value::DateTime(0)), r#""19700101T00:00:00Z""#);
        assert_eq!(text(&Value::Set(vec![s("a"), Value::Int(1)])), r#"["a",1]"#);
        assert_eq!(
            text(&Value::Map(vec![
                (Value::Int(0), Value::Float(0.5)),
                (Value::Ref("OpaqueRef:a".into()), Value::Null)
            ])),
            r#"{"0":0.5,"OpaqueRef:a":null}"#
        );
        assert_eq!(
            text(&Value::Record(vec![("z".into(), s("")), ("a".into(), Value::Set(vec![]))])),
            r#"{"z":"","a":[]}"#
        );
        assert_eq!(text(&Value::Null), "null");
        // Void results.
        assert_eq!(reply(Version::V2, json!(1), Ok(s(""))), r#"{"jsonrpc":"2.0","result":"","id":1}"#);
    }

    // docs/clients.md §4.3: never emit NaN/Infinity; the Go SDK spelling instead (ConvertFloat).
    #[test]
    fn encodes_non_finite_floats_as_strings() {
        assert_eq!(text(&Value::Float(f64::NAN)), r#""NaN""#);
        assert_eq!(text(&Value::Float(f64::INFINITY)), r#""+Inf""#);
        assert_eq!(text(&Value::Float(f64::NEG_INFINITY)), r#""-Inf""#);
        assert_eq!(encode_value(&Value::Float(f64::NAN)), json!("NaN"));
        let out = reply(Version::V2, json!(1), Ok(Value::Set(vec![Value::Float(f64::INFINITY)])));
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok(), "{out}");
    }

    #[test]
    fn encode_value_builds_the_same_tree() {
        let value = Value::Record(vec![
            ("a".into(), Value::Set(vec![Value::Int(1), Value::Float(2.5), Value::Bool(false), Value::Null])),
            ("m".into(), Value::Map(vec![(Value::Int(3), Value::DateTime(86_400))])),
        ]);
        let from_text: serde_json::Value = serde_json::from_str(&text(&value)).unwrap();
        assert_eq!(encode_value(&value), from_text);
        assert_eq!(from_text, json!({"a":[1,2.5,false,null],"m":{"3":"19700102T00:00:00Z"}}));
    }

    #[test]
    fn encode_call_round_trips() {
        let params =
            vec![s("x"), Value::Int(-1), Value::Set(vec![Value::Record(vec![("k".into(), Value::Bool(true))])])];
        for version in [Version::V1, Version::V2] {
            let body = encode_call(version, &json!(9), "VM.start", &params);
            let request = decode_call(&body).unwrap();
            assert_eq!(
                request,
                JsonRequest {
                    version,
                    id: json!(9),
                    request: Request { method: "VM.start".into(), params: params.clone() }
                }
            );
        }
        assert_eq!(
            String::from_utf8(encode_call(Version::V1, &json!(1), "m", &[])).unwrap(),
            r#"{"method":"m","params":[],"id":1}"#
        );
    }
}
