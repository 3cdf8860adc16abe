//! Fuzzes the JSON-RPC call decoder with arbitrary bytes.
//!
//! Properties: decoding never panics; whatever decodes can be encoded as a response in its own
//! version, and that response is valid JSON echoing the id; and a decoded call, encoded again
//! with `encode_call`, decodes again to the same version, id, method and parameter count.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xenledger::value::Value;
use xenledger::wire::{jsonrpc, BODY_SIZE_BYTES_MAX};

fuzz_target!(|body: &[u8]| {
    let Ok(decoded) = jsonrpc::decode_call(body) else {
        return;
    };
    let params = &decoded.request.params;
    let record = Value::Record(params.iter().enumerate().map(|(i, v)| (i.to_string(), v.clone())).collect());
    let response = jsonrpc::encode_response(decoded.version, &decoded.id, &Ok(record));
    let reply: serde_json::Value = match serde_json::from_slice(&response) {
        Ok(reply) => reply,
        Err(error) => panic!("response is not JSON: {error}\n{}", String::from_utf8_lossy(&response)),
    };
    assert_eq!(reply["id"], decoded.id);
    let call = jsonrpc::encode_call(decoded.version, &decoded.id, &decoded.request.method, params);
    if call.len() <= BODY_SIZE_BYTES_MAX {
        let again = match jsonrpc::decode_call(&call) {
            Ok(again) => again,
            Err(error) => panic!("re-encoded call does not decode: {error}\n{}", String::from_utf8_lossy(&call)),
        };
        assert_eq!(again.version, decoded.version);
        assert_eq!(again.id, decoded.id);
        assert_eq!(again.request.method, decoded.request.method);
        assert_eq!(again.request.params.len(), params.len());
    }
});
