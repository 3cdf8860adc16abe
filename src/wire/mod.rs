//! Wire codecs: request bytes to a [`Request`], and a result to response bytes, for XML-RPC
//! ([`xmlrpc`], `POST /`) and JSON-RPC 1.0/2.0 ([`jsonrpc`], `POST /jsonrpc`).
//!
//! The codecs hold no business logic. They copy xapi's wire behaviour, which is the contract real
//! clients were tested against (docs/xenapi-semantics.md §a and §b, docs/clients.md):
//!
//! * Decoding is lenient and loosely typed, like ocaml-rpc's non-strict decoders. XML-RPC int64
//!   usually arrives as an untyped string, and a struct may be a record or a map. Both decoders
//!   produce only `String`, `Int`, `Float`, `Bool`, `DateTime` (XML-RPC only), `Set`, `Record` and
//!   `Null`. The dispatcher coerces them to the schema's types with [`crate::schema::coerce`].
//! * Encoding is byte-exact with xapi where clients depend on it: one line with no whitespace
//!   between elements, untyped XML-RPC strings and ints, a `{Status, Value}` or
//!   `{Status, ErrorDescription}` struct with `Status` first, and the JSON-RPC 1.0 and 2.0 envelopes.
//!
//! A decode failure is a [`DecodeError`]. The server answers it with HTTP 500, as xapi does for
//! malformed bodies (docs/xenapi-semantics.md §a.1). API failures are never decode errors: they are
//! encoded into a normal response.
//!
//! Int32: xapi puts one `<i4>` on the wire, for the counts in `event.from`'s `valid_ref_counts`
//! (docs/xenapi-semantics.md §a.4). `Value::Int32` is that value: the XML-RPC encoder writes it as
//! `<i4>`, JSON-RPC as a plain number, and every other `Value::Int` goes out as untyped text.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::value::{format_datetime, Value};

pub mod jsonrpc;
pub mod xmlrpc;

/// Replies the piece encoders are tested with: a map of records and a set large enough to be cut
/// many times at 1,000 bytes, a scalar and an empty map and set.
#[cfg(test)]
fn replies_to_cut() -> Vec<Value> {
    let map =
        (0..500).map(|i| (Value::Ref(format!("OpaqueRef:{i}")), Value::Record(vec![("n".into(), Value::Int(i))])));
    vec![
        Value::Map(map.collect()),
        Value::Set((0..500).map(|i| Value::str(format!("item {i}"))).collect()),
        Value::str("small"),
        Value::Map(vec![]),
        Value::Set(vec![]),
    ]
}

/// The deepest nesting of values a request may carry, counted along the path from a parameter to
/// its deepest leaf, the parameter included. A scalar parameter has depth 1 and a set of strings
/// has depth 2. XenAPI's deepest types (a map of sets inside a record) need about 4. The limit
/// keeps the recursive decoders' stack use bounded.
pub const NESTING_DEPTH_MAX: usize = 64;

/// The largest request body either decoder accepts: xapi's `http_limit_max_rpc_size`, 300 KiB
/// (docs/xenapi-semantics.md §a.1). The server should refuse larger bodies before reading them; the
/// decoders check again so that no caller can skip the limit.
pub const BODY_SIZE_BYTES_MAX: usize = 300 * 1024;

/// One decoded call: the method name as sent (`VM.start`, `Async.VM.start`, `event_from`) and its
/// positional parameters, session first where the message takes one.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: String,
    pub params: Vec<Value>,
}

/// Why a request body could not be decoded. Each one becomes an HTTP 500 reply, never an API
/// error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is larger than [`BODY_SIZE_BYTES_MAX`].
    #[error("request body of {size_bytes} bytes exceeds the limit of {size_bytes_max} bytes")]
    TooLarge { size_bytes: usize, size_bytes_max: usize },
    /// The body is not UTF-8. Both protocols are UTF-8 only here.
    #[error("request body is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    /// The body is not well-formed XML.
    #[error("malformed XML at byte {offset}: {message}")]
    Xml { offset: u64, message: String },
    /// The XML is well-formed but not an XML-RPC `methodCall`.
    #[error("malformed XML-RPC call at byte {offset}: expected {expected}, found {found}")]
    XmlRpc { offset: u64, expected: &'static str, found: String },
    /// A typed XML-RPC scalar (`<int>`, `<double>`, …) whose text does not parse. The text is
    /// not kept: it may be a password sent with the wrong type, and errors never echo values.
    #[error("malformed XML-RPC call at byte {offset}: the text of this <{tag}> is not a valid {tag}")]
    XmlRpcScalar { offset: u64, tag: &'static str },
    /// Values nest deeper than [`NESTING_DEPTH_MAX`].
    #[error("values are nested deeper than {depth_max} levels")]
    TooDeep { depth_max: usize },
    /// The body is not valid JSON.
    #[error("malformed JSON: {message}")]
    Json { message: String },
    /// The JSON is valid but not a JSON-RPC request as xapi accepts it. The text is ocaml-rpc's
    /// (`Invalid field 'id' in request body`, `Required field method is missing`).
    #[error("malformed JSON-RPC request: {reason}")]
    JsonRpc { reason: &'static str },
}

/// Checks the size and the UTF-8 of a request body, the first step of both decoders.
fn body_text(body: &[u8]) -> Result<&str, DecodeError> {
    if body.len() > BODY_SIZE_BYTES_MAX {
        return Err(DecodeError::TooLarge { size_bytes: body.len(), size_bytes_max: BODY_SIZE_BYTES_MAX });
    }
    std::str::from_utf8(body).map_err(|e| DecodeError::InvalidUtf8 { offset: e.valid_up_to() })
}

/// The string form of a map key, as xapi writes keys into a struct or a JSON object: text for
/// strings, refs and enums, decimal for ints (`Int64.to_string`, docs/xenapi-semantics.md §a.4).
///
/// XenAPI map keys are only ever those types. The rest get a text form so that encoding never
/// fails: floats as `%.16g`, booleans `true`/`false`, datetimes in wire form, null and containers
/// as the empty string.
pub fn key_text(key: &Value) -> Cow<'_, str> {
    match key {
        Value::String(s) | Value::Enum(s) | Value::Ref(s) => Cow::Borrowed(s),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Float(x) => {
            let mut s = String::new();
            push_float_g16(&mut s, *x);
            Cow::Owned(s)
        }
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::DateTime(t) => Cow::Owned(format_datetime(*t)),
        Value::Int32(i) => Cow::Owned(i.to_string()),
        Value::Set(_) | Value::Map(_) | Value::Record(_) | Value::Lazy(_) | Value::Null => Cow::Borrowed(""),
    }
}

/// Appends `x` formatted as C's `printf("%.16g", x)`, which is how ocaml-rpc writes an XML-RPC
/// `<double>` (docs/xenapi-semantics.md §a.4): 16 significant digits, trailing zeros removed, fixed
/// notation for decimal exponents -4 to 15 and `d.ddde±XX` otherwise. So `1.0` is `1`, `0.1` is
/// `0.1`, `1e20` is `1e+20`. Non-finite values are written `nan`, `inf` and `-inf`, as OCaml's
/// `Printf` does.
///
/// 16 digits do not identify every `f64` (17 would), so a value read back may differ in the last
/// bit. That loss is xapi's too, and clients expect its spelling.
pub fn push_float_g16(out: &mut String, x: f64) {
    const PRECISION: i32 = 16;
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    // Integral values below 1e15 print as the integer (most floats in records are 0 or 1).
    if x == x.trunc() && x.abs() < 1e15 {
        if x.is_sign_negative() {
            out.push('-');
        }
        push_decimal(out, x.abs() as u64);
        return;
    }
    // C fixes the notation by the exponent of the value rounded to PRECISION digits, so round
    // first: 9.9999999999999999e22 rounds up to 1e+23.
    let scientific = format!("{:.*e}", (PRECISION - 1) as usize, x);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..PRECISION).contains(&exponent) {
        let start = out.len();
        let decimals = (PRECISION - 1 - exponent) as usize;
        // Writing to a String cannot fail.
        let _ = write!(out, "{x:.decimals$}");
        trim_fraction_zeros(out, start);
    } else {
        let start = out.len();
        out.push_str(mantissa);
        trim_fraction_zeros(out, start);
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push('0');
        }
        push_decimal(out, u64::from(magnitude));
    }
}

/// Removes trailing zeros after a decimal point in `out[start..]`, then the point if nothing
/// follows it (C's `%g` without `#`).
fn trim_fraction_zeros(out: &mut String, start: usize) {
    if !out[start..].contains('.') {
        return;
    }
    let trimmed = out.trim_end_matches('0').len();
    out.truncate(trimmed);
    if out.ends_with('.') {
        out.pop();
    }
}

/// Appends an unsigned decimal without going through `fmt`.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // The slice holds only ASCII digits, so it is valid UTF-8.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or("0"));
}

/// Appends a signed decimal (`Int64.to_string`).
fn push_int(out: &mut String, i: i64) {
    if i < 0 {
        out.push('-');
    }
    push_decimal(out, i.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g16(x: f64) -> String {
        let mut s = String::new();
        push_float_g16(&mut s, x);
        s
    }

    // docs/xenapi-semantics.md §a.4: `<double>` is printed with `%.16g`, so `1.0` → `1`.
    // Expected strings are what C's printf("%.16g") prints for each value.
    #[test]
    fn float_formats_like_c_percent_16g() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (0.0, "0"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (0.0125, "0.0125"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (1e20, "1e+20"),
            (1e15, "1000000000000000"),
            (1e16, "1e+16"),
            (123456789012345678.0, "1.234567890123457e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0 / 3.0, "0.6666666666666666"),
            (1320000000.5, "1320000000.5"),
            (1e23, "9.999999999999999e+22"),
            (1e24, "1e+24"),
            (1e-7, "1e-07"),
            (f64::MAX, "1.797693134862316e+308"),
            (f64::MIN_POSITIVE, "2.225073858507201e-308"),
            (5e-324, "4.940656458412465e-324"),
            (1e100, "1e+100"),
            (-1.5e-7, "-1.5e-07"),
            (0.30000000000000004, "0.3"),
            (1000000000000000.5, "1000000000000000"),
            (1000000000000001.5, "1000000000000002"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, want) in cases {
            assert_eq!(g16(*x), *want, "{x:e}");
        }
    }

    // docs/xenapi-semantics.md §a.4: map keys are strings; refs and enums as text, ints as decimal.
    #[test]
    fn map_keys_render_as_xapi_does() {
        assert_eq!(key_text(&Value::Ref("OpaqueRef:1".into())), "OpaqueRef:1");
        assert_eq!(key_text(&Value::Enum("Halted".into())), "Halted");
        assert_eq!(key_text(&Value::Int(-42)), "-42");
        assert_eq!(key_text(&Value::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(key_text(&Value::Float(0.5)), "0.5");
    }

    #[test]
    fn body_limits_are_checked() {
        let big = vec![b' '; BODY_SIZE_BYTES_MAX + 1];
        assert_eq!(
            body_text(&big),
            Err(DecodeError::TooLarge { size_bytes: BODY_SIZE_BYTES_MAX + 1, size_bytes_max: BODY_SIZE_BYTES_MAX })
        );
        assert_eq!(body_text(b"ab\xffc"), Err(DecodeError::InvalidUtf8 { offset: 2 }));
    }
}
