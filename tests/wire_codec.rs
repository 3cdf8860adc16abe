//! Property tests for the wire codecs: any value tree survives encode → decode, up to the
//! mappings each protocol loses on purpose, and every response parses back.
//!
//! What each protocol loses (docs/xenapi-semantics.md §a.4 and §b):
//! * XML-RPC: ints travel as untyped text and come back as strings; floats are printed with
//!   `%.16g`, so they come back rounded to 16 digits; enums and refs are strings; maps are structs
//!   with string keys; control characters other than TAB/LF/CR are dropped and XML turns CR and
//!   CRLF into LF.
//! * JSON-RPC: datetimes, enums and refs are strings; maps are objects with string keys; floats
//!   are written exactly but serde_json, without its `float_roundtrip` feature, may read them
//!   back one ulp off.

use proptest::prelude::*;
use serde_json::json;
use xenledger::error::ApiError;
use xenledger::value::{format_datetime, Value};
use xenledger::wire::jsonrpc::{self, JsonRequest, Version};
use xenledger::wire::{key_text, push_float_g16, xmlrpc, Request};

/// 1900-01-01T00:00:00Z to 9999-12-31T23:59:59Z: the four-digit years the wire form can spell.
const DATETIME_MIN: i64 = -2_208_988_800;
const DATETIME_MAX: i64 = 253_402_300_799;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 <>&\"';:.\t\n\r-]{0,16}",
        "[ \t\n]{1,4}",
        Just(String::new()),
        "OpaqueRef:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ]
}

fn finite_float() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::String),
        any::<i64>().prop_map(Value::Int),
        finite_float().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        (DATETIME_MIN..=DATETIME_MAX).prop_map(Value::DateTime),
        text().prop_map(Value::Enum),
        text().prop_map(Value::Ref),
        Just(Value::Null),
    ]
}

fn map_key() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::String),
        text().prop_map(Value::Ref),
        text().prop_map(Value::Enum),
        any::<i64>().prop_map(Value::Int),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
            prop::collection::vec((text(), inner.clone()), 0..6).prop_map(Value::Record),
            prop::collection::vec((map_key(), inner), 0..6).prop_map(Value::Map),
        ]
    })
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z_]{1,12}\\.[A-Za-z_]{1,20}", "Async\\.[A-Za-z]{1,8}\\.[a-z_]{1,12}", text()]
}

fn json_id() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![any::<i64>().prop_map(|i| json!(i)), any::<u64>().prop_map(|u| json!(u)), text().prop_map(|s| json!(s))]
}

fn api_error() -> impl Strategy<Value = ApiError> {
    ("[A-Z_]{1,24}", prop::collection::vec(text(), 0..5)).prop_map(|(code, params)| ApiError { code, params })
}

/// A string as XML-RPC gives it back: control characters other than TAB/LF/CR dropped by the
/// encoder, then CRLF and CR read as LF by the XML parser.
fn xml_text(s: &str) -> String {
    let kept: String = s.chars().filter(|c| *c >= ' ' || matches!(c, '\t' | '\n' | '\r')).collect();
    kept.replace("\r\n", "\n").replace('\r', "\n")
}

fn g16(x: f64) -> f64 {
    let mut text = String::new();
    push_float_g16(&mut text, x);
    text.parse().unwrap()
}

/// A value as XML-RPC gives it back.
fn xml_normal(value: &Value) -> Value {
    match value {
        Value::String(s) | Value::Enum(s) | Value::Ref(s) => Value::String(xml_text(s)),
        Value::Int(i) => Value::String(i.to_string()),
        Value::Float(x) => Value::Float(g16(*x)),
        Value::Bool(_) | Value::DateTime(_) | Value::Null => value.clone(),
        Value::Int32(i) => Value::Int(i64::from(*i)),
        Value::Set(items) => Value::Set(items.iter().map(xml_normal).collect()),
        Value::Map(entries) => {
            Value::Record(entries.iter().map(|(k, v)| (xml_text(&key_text(k)), xml_normal(v))).collect())
        }
        Value::Record(members) => Value::Record(members.iter().map(|(k, v)| (xml_text(k), xml_normal(v))).collect()),
        Value::Lazy(_) => xml_normal(&value.materialized()),
    }
}

/// A float as serde_json reads back its own output. Without serde_json's `float_roundtrip`
/// feature its parser may be one ulp off (for example `117156624120.44017`).
fn json_float(x: f64) -> f64 {
    serde_json::from_str(&serde_json::Number::from_f64(x).unwrap().to_string()).unwrap()
}

/// A JSON tree as serde_json reads back its own output (see [`json_float`]).
fn json_reparsed(json: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&json.to_string()).unwrap()
}

/// A value as JSON-RPC gives it back.
fn json_normal(value: &Value) -> Value {
    match value {
        Value::String(s) | Value::Enum(s) | Value::Ref(s) => Value::String(s.clone()),
        Value::DateTime(t) => Value::String(format_datetime(*t)),
        Value::Float(x) => Value::Float(json_float(*x)),
        Value::Int(_) | Value::Bool(_) | Value::Null => value.clone(),
        Value::Int32(i) => Value::Int(i64::from(*i)),
        Value::Set(items) => Value::Set(items.iter().map(json_normal).collect()),
        Value::Map(entries) => {
            Value::Record(entries.iter().map(|(k, v)| (key_text(k).into_owned(), json_normal(v))).collect())
        }
        Value::Record(members) => Value::Record(members.iter().map(|(k, v)| (k.clone(), json_normal(v))).collect()),
        Value::Lazy(_) => json_normal(&value.materialized()),
    }
}

/// Reads a `methodResponse` with the call decoder, by renaming it to a `methodCall`: a full parse
/// of the response with its one parameter.
fn reparse_response(body: &[u8]) -> Value {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let prefix = "<?xml version=\"1.0\"?><methodResponse><params><param>";
    assert!(text.starts_with(prefix), "{text}");
    assert!(text.ends_with("</param></params></methodResponse>"), "{text}");
    let call = text
        .replace("<methodResponse><params>", "<methodCall><methodName>r</methodName><params>")
        .replace("</methodResponse>", "</methodCall>");
    let mut request = xmlrpc::decode_call(call.as_bytes()).unwrap();
    assert_eq!(request.params.len(), 1);
    request.params.remove(0)
}

proptest! {
    #[test]
    fn xmlrpc_call_round_trips(method in method(), params in prop::collection::vec(value(), 0..5)) {
        let body = xmlrpc::encode_call(&method, &params);
        let decoded = xmlrpc::decode_call(&body).unwrap();
        let method_back = xml_text(&method).trim_matches([' ', '\t', '\n', '\r']).to_string();
        prop_assert_eq!(decoded, Request { method: method_back, params: params.iter().map(xml_normal).collect() });
    }

    // docs/xenapi-semantics.md §a.3 and docs/clients.md §4.5: one struct, `Status` first, exactly two members.
    #[test]
    fn xmlrpc_success_parses_back(value in value()) {
        let body = xmlrpc::encode_response(&Ok(value.clone()));
        let expected = Value::Record(vec![("Status".into(), Value::str("Success")), ("Value".into(), xml_normal(&value))]);
        prop_assert_eq!(reparse_response(&body), expected);
    }

    #[test]
    fn xmlrpc_failure_parses_back(error in api_error()) {
        let body = xmlrpc::encode_response(&Err(error.clone()));
        let description = error.to_wire().iter().map(|s| Value::String(xml_text(s))).collect();
        let expected = Value::Record(vec![("Status".into(), Value::str("Failure")), ("ErrorDescription".into(), Value::Set(description))]);
        prop_assert_eq!(reparse_response(&body), expected);
    }

    // docs/xenapi-semantics.md §a.3: `system.listMethods` replies with the bare value.
    #[test]
    fn xmlrpc_bare_parses_back(value in value()) {
        prop_assert_eq!(reparse_response(&xmlrpc::encode_bare(&value)), xml_normal(&value));
    }

    #[test]
    fn jsonrpc_call_round_trips(
        v2 in any::<bool>(),
        id in json_id(),
        method in method(),
        params in prop::collection::vec(value(), 0..5),
    ) {
        let version = if v2 { Version::V2 } else { Version::V1 };
        let body = jsonrpc::encode_call(version, &id, &method, &params);
        let decoded = jsonrpc::decode_call(&body).unwrap();
        let expected = JsonRequest { version, id, request: Request { method, params: params.iter().map(json_normal).collect() } };
        prop_assert_eq!(decoded, expected);
    }

    // docs/xenapi-semantics.md §b and docs/clients.md §4.3: the envelope of each version, the id echoed.
    #[test]
    fn jsonrpc_replies_parse_back(
        v2 in any::<bool>(),
        id in json_id(),
        result in prop_oneof![value().prop_map(Ok), api_error().prop_map(Err)],
    ) {
        let version = if v2 { Version::V2 } else { Version::V1 };
        let body = jsonrpc::encode_response(version, &id, &result);
        let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let object = reply.as_object().unwrap();
        prop_assert_eq!(&reply["id"], &id);
        match (version, &result) {
            (Version::V1, Ok(value)) => {
                prop_assert_eq!(object.len(), 3);
                prop_assert_eq!(&reply["result"], &json_reparsed(&jsonrpc::encode_value(value)));
                prop_assert!(reply["error"].is_null());
            }
            (Version::V1, Err(error)) => {
                prop_assert_eq!(object.len(), 3);
                prop_assert!(reply["result"].is_null());
                prop_assert_eq!(&reply["error"], &json!(error.to_wire()));
            }
            (Version::V2, Ok(value)) => {
                prop_assert_eq!(object.len(), 3);
                prop_assert_eq!(&reply["jsonrpc"], &json!("2.0"));
                prop_assert!(!object.contains_key("error"));
                prop_assert_eq!(&reply["result"], &json_reparsed(&jsonrpc::encode_value(value)));
            }
            (Version::V2, Err(error)) => {
                prop_assert_eq!(object.len(), 3);
                prop_assert!(!object.contains_key("result"));
                prop_assert_eq!(&reply["error"], &json!({"code": 1, "message": error.code, "data": error.params}));
            }
        }
    }

    // Arbitrary bytes never panic either decoder.
    #[test]
    fn decoders_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = xmlrpc::decode_call(&body);
        let _ = jsonrpc::decode_call(&body);
    }
}
