//! `Value`: one typed value of any XenAPI type, as the engine stores it and the adapters encode it.
//!
//! The wire decoders produce loosely typed values (XML-RPC sends int64 as plain strings); the dispatcher
//! coerces them to the schema's type with [`crate::schema::coerce`] before the engine sees them, so inside
//! the engine every value has the exact variant its type asks for.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The null reference, as xapi spells it.
pub const NULL_REF: &str = "OpaqueRef:NULL";

/// A record whose members are read on demand from where they live (a stored object), so that
/// `get_record` and friends hand out a pointer instead of copying ninety fields per call.
pub trait Members: Send + Sync + fmt::Debug {
    /// Calls `f` with each member, in order.
    fn for_each_member(&self, f: &mut dyn FnMut(&str, &Value));

    /// Where to keep this record's wire encodings, when the record outlives one call: a stored
    /// object (until it changes) or an `event.from` batch (shared by every waiter it wakes).
    fn encoding_cache(&self) -> Option<&EncodingCache> {
        None
    }
}

/// A record's encodings, made once and shared by every caller it is sent to, while the bytes kept
/// by every cache of the process stay under [`ENCODING_CACHE_BUDGET_BYTES`]; past it, a record is
/// encoded for the reply alone, so the caches cannot grow with the database without bound.
/// Bench `scale` (10,000 VMs): one `VM.get_all_records` on each wire caches 104 MB; with the
/// cache the next ones take 134 ms (XML-RPC) and 59 ms (JSON-RPC), without it 243 and 208 ms.
#[derive(Debug, Default)]
pub struct EncodingCache {
    xml: std::sync::OnceLock<String>,
    json: std::sync::OnceLock<String>,
}

/// What the encoding caches of the process may keep, in bytes.
pub const ENCODING_CACHE_BUDGET_BYTES: usize = 128 << 20;
static ENCODING_CACHE_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl EncodingCache {
    /// Appends the XML-RPC encoding to `out`: the cached one, or `encode`'s.
    pub fn push_xml(&self, out: &mut String, encode: impl FnOnce(&mut String)) {
        Self::push(&self.xml, out, encode);
    }

    /// The length of the cached XML-RPC and JSON encodings (0 where none is cached yet): what a
    /// reply that holds this record will need, known before it is written.
    pub fn cached_len(&self) -> (usize, usize) {
        (self.xml.get().map_or(0, String::len), self.json.get().map_or(0, String::len))
    }

    /// Appends the JSON encoding to `out`: the cached one, or `encode`'s.
    pub fn push_json(&self, out: &mut String, encode: impl FnOnce(&mut String)) {
        Self::push(&self.json, out, encode);
    }

    fn push(cell: &std::sync::OnceLock<String>, out: &mut String, encode: impl FnOnce(&mut String)) {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(text) = cell.get() {
            out.push_str(text);
        } else if ENCODING_CACHE_BYTES.load(Relaxed) >= ENCODING_CACHE_BUDGET_BYTES {
            encode(out);
        } else {
            out.push_str(cell.get_or_init(|| {
                let mut text = String::new();
                encode(&mut text);
                ENCODING_CACHE_BYTES.fetch_add(text.len(), Relaxed);
                text
            }));
        }
    }
}

impl Drop for EncodingCache {
    fn drop(&mut self) {
        let kept = self.xml.get().map_or(0, String::len) + self.json.get().map_or(0, String::len);
        if kept > 0 {
            ENCODING_CACHE_BYTES.fetch_sub(kept, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Value {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Seconds since the Unix epoch, UTC. The wire form is `YYYYMMDDTHH:MM:SSZ`.
    DateTime(i64),
    /// An enum value, spelled exactly as in the datamodel (`Halted`, `balance-slb`).
    Enum(String),
    /// An object reference (`OpaqueRef:<uuid>` or `OpaqueRef:NULL`).
    Ref(String),
    Set(Vec<Value>),
    /// Map entries in insertion order; keys are unique.
    Map(Vec<(Value, Value)>),
    /// A record or a wire struct: field wire name to value.
    Record(Vec<(String, Value)>),
    /// XML-RPC `<nil/>`, JSON `null`, or an absent option.
    Null,
    // New variants go last: the log encodes variants by position (tests/log_format.rs pins it).
    /// A 32-bit int: appears once on the wire, in `event.from`'s `valid_ref_counts`, which xapi
    /// sends as XML-RPC `<i4>` (xapi-types/event_types.ml).
    Int32(i32),
    /// A record read lazily from its source; equal to the `Record` it would materialise into.
    /// Only ever a call's answer: never logged, so never serialised.
    #[serde(skip)]
    Lazy(Arc<dyn Members>),
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (String(a), String(b)) | (Enum(a), Enum(b)) | (Ref(a), Ref(b)) => a == b,
            (Int(a), Int(b)) | (DateTime(a), DateTime(b)) => a == b,
            (Int32(a), Int32(b)) => a == b,
            (Float(a), Float(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (Set(a), Set(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Record(a), Record(b)) => a == b,
            (Null, Null) => true,
            (Lazy(_), _) | (_, Lazy(_)) => match (self.materialized(), other.materialized()) {
                (Record(a), Record(b)) => a == b,
                _ => false,
            },
            _ => false,
        }
    }
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn null_ref() -> Value {
        Value::Ref(NULL_REF.to_string())
    }

    /// The text of a string-like value (string, enum, ref).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Enum(s) | Value::Ref(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_set(&self) -> Option<&[Value]> {
        match self {
            Value::Set(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(v) => Some(v),
            _ => None,
        }
    }

    /// The lengths of the XML-RPC and JSON encodings cached for this value, if it is a record
    /// that keeps them: a reply's buffer is sized by it, instead of growing by doubling.
    pub fn cached_encoding_len(&self) -> (usize, usize) {
        match self {
            Value::Lazy(source) => source.encoding_cache().map_or((0, 0), EncodingCache::cached_len),
            _ => (0, 0),
        }
    }

    /// Looks a member up in a record (lazy or not).
    pub fn member(&self, name: &str) -> Option<Value> {
        match self {
            Value::Record(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            Value::Lazy(source) => {
                let mut found = None;
                source.for_each_member(&mut |k, v| {
                    if found.is_none() && k == name {
                        found = Some(v.clone());
                    }
                });
                found
            }
            _ => None,
        }
    }

    /// The value with any lazy record turned into a plain `Record` (nested ones included).
    pub fn materialized(&self) -> Value {
        match self {
            Value::Lazy(source) => {
                let mut members = Vec::new();
                source.for_each_member(&mut |k, v| members.push((k.to_string(), v.materialized())));
                Value::Record(members)
            }
            Value::Set(items) => Value::Set(items.iter().map(Value::materialized).collect()),
            Value::Map(entries) => Value::Map(entries.iter().map(|(k, v)| (k.clone(), v.materialized())).collect()),
            Value::Record(members) => {
                Value::Record(members.iter().map(|(k, v)| (k.clone(), v.materialized())).collect())
            }
            other => other.clone(),
        }
    }

    /// Looks a key up in a map whose keys are string-like.
    pub fn map_get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// A string-keyed map from pairs of strings.
    pub fn string_map<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (Value::String(k.into()), Value::String(v.into()))).collect())
    }
}

/// Formats seconds since the epoch as xapi does: `YYYYMMDDTHH:MM:SSZ`.
pub fn format_datetime(secs: i64) -> String {
    let mut out = String::with_capacity(18);
    push_datetime(&mut out, secs);
    out
}

/// Appends `YYYYMMDDTHH:MM:SSZ` without allocating.
pub fn push_datetime(out: &mut String, secs: i64) {
    use std::fmt::Write;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{:04}{:02}{:02}T{:02}:{:02}:{:02}Z", y, m, d, rem / 3600, (rem / 60) % 60, rem % 60);
}

/// Parses the ISO-8601 forms xapi accepts: basic (`20250319T04:16:24Z`) or extended (`2025-03-19T04:16:24`),
/// with `Z`, `±HH:MM`, `±HHMM` or no zone (then UTC); fractional seconds are dropped.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let t = text.trim();
    let (date, time) = t.split_once(['T', 't', ' '])?;
    let digits: String = date.chars().filter(|c| *c != '-').collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = digits[0..4].parse().ok()?;
    let mo: i64 = digits[4..6].parse().ok()?;
    let d: i64 = digits[6..8].parse().ok()?;
    let (clock, offset_secs) = split_zone(time)?;
    let clock: String = clock.split('.').next()?.chars().filter(|c| *c != ':').collect();
    if clock.len() != 6 || !clock.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = clock[0..2].parse().ok()?;
    let mi: i64 = clock[2..4].parse().ok()?;
    let s: i64 = clock[4..6].parse().ok()?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs)
}

fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    if let Some(pos) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let zone: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if zone.len() != 4 || !zone.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let h: i64 = zone[0..2].parse().ok()?;
        let m: i64 = zone[2..4].parse().ok()?;
        return Some((clock, sign * (h * 3600 + m * 60)));
    }
    Some((time, 0))
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A version-4 UUID from the first 16 bytes of a digest (version and variant bits set).
pub fn uuid_v4(digest: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format_uuid(&b)
}

/// MD5 (RFC 1321): the digest xapi derives MACs and static role uuids with (OCaml's `Digest`);
/// it protects nothing here.
pub fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
        20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6,
        10, 15, 21,
    ];
    let k: Vec<u32> = (0..64).map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32).collect();
    let mut message = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) = (0x6745_2301u32, 0xefcd_ab89u32, 0x98ba_dcfeu32, 0x1032_5476u32);
    for block in message.chunks(64) {
        let m: Vec<u32> = block.chunks(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, word) in [a0, b0, c0, d0].iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// Whether `text` has a UUID's shape (`8-4-4-4-12` hex digits, either case).
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A locally administered unicast MAC address from six bytes.
pub fn format_mac(mut b: [u8; 6]) -> String {
    b[0] = (b[0] & 0xfc) | 0x02;
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

/// The text form of a UUID's 16 bytes (`8-4-4-4-12` lower-case hex).
pub fn format_uuid(b: &[u8; 16]) -> String {
    let mut text = String::with_capacity(36);
    push_uuid(&mut text, b);
    text
}

/// Appends the 36-character form of `b` (lower-case hex, dashes after bytes 4, 6, 8 and 10) to
/// `out`. Every session check digests a ref to its key through here, so it writes the digits
/// directly instead of formatting each byte.
pub fn push_uuid(out: &mut String, b: &[u8; 16]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_lower_case_hex_in_groups_of_8_4_4_4_12() {
        let bytes: [u8; 16] = std::array::from_fn(|i| (i as u8) * 17);
        assert_eq!(format_uuid(&bytes), "00112233-4455-6677-8899-aabbccddeeff");
        // The form every stored uuid and session key was written in before `push_uuid`.
        let hex: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
        let formatted = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
        assert_eq!(format_uuid(&bytes), formatted);
        let mut appended = String::from("OpaqueRef:");
        push_uuid(&mut appended, &bytes);
        assert_eq!(appended, format!("OpaqueRef:{formatted}"));
    }

    #[test]
    fn datetime_round_trip_and_forms() {
        assert_eq!(format_datetime(0), "19700101T00:00:00Z");
        let t = parse_datetime("20250319T04:16:24Z").unwrap();
        assert_eq!(format_datetime(t), "20250319T04:16:24Z");
        assert_eq!(parse_datetime("2025-03-19T04:16:24Z"), Some(t));
        assert_eq!(parse_datetime("20250319T04:16:24"), Some(t));
        assert_eq!(parse_datetime("2025-03-19T05:16:24+01:00"), Some(t));
        assert_eq!(parse_datetime("2025-03-19T04:16:24.123Z"), Some(t));
        assert_eq!(parse_datetime("garbage"), None);
        assert_eq!(format_datetime(-1), "19691231T23:59:59Z");
    }

    #[test]
    fn md5_matches_rfc_1321s_test_suite() {
        let hex = |b: [u8; 16]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        let long = b"12345678901234567890123456789012345678901234567890123456789012345678901234567890";
        assert_eq!(hex(md5(long)), "57edf4a22be3c955ac49da2e2107b67a");
    }
}
