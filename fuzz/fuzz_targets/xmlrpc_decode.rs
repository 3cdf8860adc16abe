//! Fuzzes the XML-RPC call decoder with arbitrary bytes.
//!
//! Properties: decoding never panics; whatever decodes can be encoded as a response without
//! panicking; and a decoded call, encoded again with `encode_call`, decodes again to as many
//! parameters (the encoder always produces XML its own decoder accepts). The method name is not
//! compared: control characters in it are dropped on the way out, as in any string.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xenledger::value::Value;
use xenledger::wire::{xmlrpc, BODY_SIZE_BYTES_MAX};

fuzz_target!(|body: &[u8]| {
    let Ok(request) = xmlrpc::decode_call(body) else {
        return;
    };
    let record = Value::Record(request.params.iter().enumerate().map(|(i, v)| (i.to_string(), v.clone())).collect());
    let _ = xmlrpc::encode_response(&Ok(record));
    let call = xmlrpc::encode_call(&request.method, &request.params);
    // Re-encoding can grow a body (`<value/>` becomes `<value></value>`) past the size limit.
    if call.len() <= BODY_SIZE_BYTES_MAX {
        let again = match xmlrpc::decode_call(&call) {
            Ok(again) => again,
            Err(error) => panic!("re-encoded call does not decode: {error}\n{}", String::from_utf8_lossy(&call)),
        };
        assert_eq!(again.params.len(), request.params.len());
    }
});
