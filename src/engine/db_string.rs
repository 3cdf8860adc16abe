//! The database string form of a value: what xapi stores in a column and what a `where` expression
//! (`field "x" = "..."`, see [`crate::engine::where_expr`]) compares against.
//!
//! Sources (xapi-project/xen-api):
//! * `ocaml/idl/ocaml_backend/gen_db_actions.ml`, `dm_to_string`: `Bool -> string_of_bool`,
//!   `Int -> Int64.to_string`, `Float -> Printf.sprintf "%0.18g"`, `Enum -> the constructor's
//!   datamodel name`, `Ref -> Ref.string_of`, `String -> fun x -> x`, `DateTime -> Date.to_string`,
//!   `Set ty -> set <dm_to_string ty>`, `Map (k, v) -> map <dm_to_string k> <dm_to_string v>`.
//!   Elements are therefore the db string of the element type, recursively.
//! * `ocaml/database/string_marshall_helper.ml`: `set f ks = SExpr.string_of (Node (map (fun x ->
//!   String (ensure_utf8_xml (f x))) ks))` and `map f g kv = SExpr.string_of (Node (map (fun (k, v) ->
//!   Node [String (ensure_nonempty (ensure_utf8_xml (f k))); String (ensure_utf8_xml (g v))]) kv))`.
//!   `Schema.Value.marshal` (`ocaml/database/schema.ml`) calls these on every read of a set/map
//!   column, and `db_cache_impl.ml` `find_refs_with_filter_internal` compares that marshalled text.
//! * `ocaml/libs/sexpr/sExpr.ml`, `string_of`: `Node l` is `(` + the elements separated by single
//!   spaces + `)`; `String s` / `Symbol s` is `'` + `escape s` + `'`, where `escape` replaces
//!   `\` by `\\`, `"` by `\"` and `'` by `\'` (every other byte is copied as is).
//! * `ensure_utf8_xml` truncates at the first byte sequence that is not valid UTF-8 or not a legal
//!   XML character; `ocaml/libs/xapi-stdext/lib/xapi-stdext-encodings/utf8.ml` `XML.is_legal`:
//!   `uchar >= 0x20 || uchar = 0x09 || uchar = 0x0a || uchar = 0x0d`. A Rust `&str` is always valid
//!   UTF-8, so only the control characters can cut an element short.

use crate::value::{format_datetime, Value};

/// The stored string form of `v`, as xapi's `DM_to_String` produces it (see the module docs).
///
/// `Null` (an absent option, never stored by xapi) and `Record` (records are never stored in the
/// database, `gen_db_actions.ml` `type_marshalled_in_db`) give the empty string.
pub fn db_string(v: &Value) -> String {
    let mut out = String::new();
    write_db_string(v, &mut out);
    out
}

fn write_db_string(v: &Value, out: &mut String) {
    match v {
        Value::String(s) | Value::Enum(s) | Value::Ref(s) => out.push_str(s),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format_float_18g(*f)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::DateTime(secs) => out.push_str(&format_datetime(*secs)),
        Value::Set(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                push_sexpr_string(&db_string(item), out);
            }
            out.push(')');
        }
        Value::Map(pairs) => {
            out.push('(');
            for (i, (k, val)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push('(');
                push_sexpr_string(&db_string(k), out);
                out.push(' ');
                push_sexpr_string(&db_string(val), out);
                out.push(')');
            }
            out.push(')');
        }
        Value::Int32(i) => out.push_str(&i.to_string()),
        Value::Record(_) | Value::Lazy(_) | Value::Null => {}
    }
}

/// Appends `SExpr.String s` as `SExpr.string_of` writes it: `'` + escaped text + `'`, after
/// `String_marshall_helper.ensure_utf8_xml` truncation.
fn push_sexpr_string(s: &str, out: &mut String) {
    out.push('\'');
    for c in utf8_xml_prefix(s).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            _ => out.push(c),
        }
    }
    out.push('\'');
}

/// The longest prefix of `s` made of characters legal in XML (xapi's `ensure_utf8_xml`, which
/// `string_marshall_helper.ml` applies to every set element and map key/value): everything from
/// the first control character other than tab, LF and CR onwards is dropped.
pub fn utf8_xml_prefix(s: &str) -> &str {
    match s.char_indices().find(|(_, c)| (*c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// C's `printf("%.18g", x)` (OCaml's `Printf.sprintf "%0.18g"` hands the conversion to the C
/// library; the `0` flag without a width has no effect). glibc spellings for the non-finite values:
/// `inf`, `-inf`, `nan`, `-nan` (sign bit set).
///
/// `%.Pg` with P = 18: let X be the decimal exponent of the value rounded to P significant digits.
/// If `-4 <= X < P` the value is written like `%.(P-1-X)f`, otherwise like `%.(P-1)e`; then,
/// because there is no `#` flag, trailing zeros of the fraction are removed, and the decimal point
/// too if nothing follows it. The `e` form has a sign and at least two exponent digits (`e+05`).
pub fn format_float_18g(x: f64) -> String {
    const P: i32 = 18;
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_nan() {
        return format!("{sign}nan");
    }
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    // Rust's `{:.17e}` is the exactly rounded (round-half-to-even on the exact binary value, like
    // glibc) scientific form with 18 significant digits: `d.ddddddddddddddddde<exp>`.
    let sci = format!("{:.*e}", (P - 1) as usize, x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("scientific float format has an exponent");
    let exp: i32 = exp.parse().expect("scientific float format has an integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    debug_assert_eq!(digits.len(), P as usize);

    let mut out = String::from(sign);
    if (-4..P).contains(&exp) {
        // Fixed notation with P - 1 - exp fraction digits: exactly the same P significant digits.
        if exp >= 0 {
            let int_len = exp as usize + 1;
            out.push_str(&digits[..int_len]);
            push_fraction(&digits[int_len..], &mut out);
        } else {
            out.push('0');
            let mut frac = "0".repeat((-exp - 1) as usize);
            frac.push_str(&digits);
            push_fraction(&frac, &mut out);
        }
    } else {
        out.push_str(&digits[..1]);
        push_fraction(&digits[1..], &mut out);
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
    }
    out
}

/// Appends `.` + `frac` without its trailing zeros, or nothing if `frac` is all zeros.
fn push_fraction(frac: &str, out: &mut String) {
    let trimmed = frac.trim_end_matches('0');
    if !trimmed.is_empty() {
        out.push('.');
        out.push_str(trimmed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::String(x.to_string())
    }

    // docs/xenapi-semantics.md §d.4 "bool `true`/`false`"; gen_db_actions.ml `Bool -> string_of_bool`.
    #[test]
    fn bools() {
        assert_eq!(db_string(&Value::Bool(true)), "true");
        assert_eq!(db_string(&Value::Bool(false)), "false");
    }

    // docs/xenapi-semantics.md §d.4 "int decimal"; gen_db_actions.ml `Int -> Int64.to_string`.
    #[test]
    fn ints() {
        assert_eq!(db_string(&Value::Int(0)), "0");
        assert_eq!(db_string(&Value::Int(-42)), "-42");
        assert_eq!(db_string(&Value::Int(i64::MAX)), "9223372036854775807");
        assert_eq!(db_string(&Value::Int(i64::MIN)), "-9223372036854775808");
    }

    // docs/xenapi-semantics.md §d.4 "float `%0.18g`"; gen_db_actions.ml `Float -> Printf.sprintf "%0.18g"`.
    // Expected texts are C `printf("%.18g")` output (checked against glibc and Python's `'%.18g'`).
    #[test]
    fn floats_like_c_18g() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (100.0, "100"),
            (0.5, "0.5"),
            (2.5, "2.5"),
            (-1.5, "-1.5"),
            (0.1, "0.100000000000000006"),
            (123.456, "123.456000000000003"),
            (1.0 / 3.0, "0.333333333333333315"),
            (0.0001, "0.000100000000000000005"),
            (0.0001234, "0.000123399999999999991"),
            (1e-5, "1.00000000000000008e-05"),
            (1e17, "100000000000000000"),
            (123456789012345678.0, "123456789012345680"),
            (1e18, "1e+18"),
            ((1u64 << 63) as f64, "9.22337203685477581e+18"),
            (1e21, "1e+21"),
            (1e100, "1.00000000000000002e+100"),
            (f64::MAX, "1.79769313486231571e+308"),
            (5e-324, "4.94065645841246544e-324"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-f64::NAN, "-nan"),
        ];
        for (x, want) in cases {
            assert_eq!(db_string(&Value::Float(*x)), *want, "formatting {x:e}");
        }
    }

    // docs/xenapi-semantics.md §d.4 "enum value name (`Running`); ref `OpaqueRef:…`; datetime
    // `YYYYMMDDTHH:MM:SSZ`"; strings are stored as is (gen_db_actions.ml `String -> fun x -> x`).
    #[test]
    fn scalars() {
        assert_eq!(db_string(&Value::Enum("Running".into())), "Running");
        assert_eq!(db_string(&Value::Enum("balance-slb".into())), "balance-slb");
        assert_eq!(db_string(&Value::null_ref()), "OpaqueRef:NULL");
        assert_eq!(db_string(&s("Debian 12 'x' \"y\"")), "Debian 12 'x' \"y\"");
        assert_eq!(db_string(&Value::DateTime(0)), "19700101T00:00:00Z");
        assert_eq!(db_string(&Value::DateTime(1_742_357_784)), "20250319T04:16:24Z");
        assert_eq!(db_string(&Value::Null), "");
    }

    // docs/xenapi-semantics.md §d.4 "sets as S-expressions `('a' 'b')`, empty `()`";
    // string_marshall_helper.ml `set` + sExpr.ml `string_of`.
    #[test]
    fn sets() {
        assert_eq!(db_string(&Value::Set(vec![])), "()");
        assert_eq!(db_string(&Value::Set(vec![s("a")])), "('a')");
        assert_eq!(db_string(&Value::Set(vec![s("a"), s("b")])), "('a' 'b')");
        assert_eq!(db_string(&Value::Set(vec![s("a"), s("b"), s("c d")])), "('a' 'b' 'c d')");
        assert_eq!(db_string(&Value::Set(vec![Value::Enum("clean_shutdown".into())])), "('clean_shutdown')");
        assert_eq!(db_string(&Value::Set(vec![Value::Int(1), Value::Int(-2)])), "('1' '-2')");
        assert_eq!(db_string(&Value::Set(vec![Value::Float(0.1)])), "('0.100000000000000006')");
        assert_eq!(db_string(&Value::Set(vec![Value::Bool(true)])), "('true')");
        assert_eq!(db_string(&Value::Set(vec![Value::null_ref()])), "('OpaqueRef:NULL')");
        assert_eq!(db_string(&Value::Set(vec![s("")])), "('')");
    }

    // docs/xenapi-semantics.md §d.4 "maps `(('k1' 'v1') ('k2' 'v2'))`"; string_marshall_helper.ml `map`.
    #[test]
    fn maps() {
        assert_eq!(db_string(&Value::Map(vec![])), "()");
        assert_eq!(db_string(&Value::string_map([("k1", "v1")])), "(('k1' 'v1'))");
        assert_eq!(db_string(&Value::string_map([("k1", "v1"), ("k2", "v2")])), "(('k1' 'v1') ('k2' 'v2'))");
        // Insertion order is kept (xapi keeps its association-list order).
        assert_eq!(db_string(&Value::string_map([("b", ""), ("a", "x")])), "(('b' '') ('a' 'x'))");
        // Non-string element types use their own db string (e.g. VM_metrics.VCPUs_utilisation: int -> float).
        let m = Value::Map(vec![(Value::Int(0), Value::Float(0.25))]);
        assert_eq!(db_string(&m), "(('0' '0.25'))");
        // A map whose values are sets: the inner set text is itself quoted and escaped.
        let m = Value::Map(vec![(s("k"), Value::Set(vec![s("a")]))]);
        assert_eq!(db_string(&m), "(('k' '(\\'a\\')'))");
    }

    // ocaml/libs/sexpr/sExpr.ml `escape`: `\` -> `\\`, `"` -> `\"`, `'` -> `\'`; nothing else.
    #[test]
    fn sexpr_escaping() {
        assert_eq!(db_string(&Value::Set(vec![s("it's")])), r"('it\'s')");
        assert_eq!(db_string(&Value::Set(vec![s(r"a\b")])), r"('a\\b')");
        assert_eq!(db_string(&Value::Set(vec![s("say \"hi\"")])), r#"('say \"hi\"')"#);
        assert_eq!(db_string(&Value::Set(vec![s("( ) tab\tnl\n é")])), "('( ) tab\tnl\n é')");
        assert_eq!(db_string(&Value::string_map([("k'", "v\\")])), r"(('k\'' 'v\\'))");
    }

    // string_marshall_helper.ml `ensure_utf8_xml` + xapi-stdext-encodings utf8.ml `XML.is_legal`:
    // elements are cut at the first control character other than tab/LF/CR.
    #[test]
    fn elements_truncated_to_xml_legal_prefix() {
        assert_eq!(utf8_xml_prefix("ab\u{1}cd"), "ab");
        assert_eq!(utf8_xml_prefix("a\tb\r\nc"), "a\tb\r\nc");
        assert_eq!(db_string(&Value::Set(vec![s("ok\u{0}bad")])), "('ok')");
        assert_eq!(db_string(&Value::string_map([("k\u{1b}x", "v")])), "(('k' 'v'))");
        // A top-level string column is stored as is (writes of invalid strings are rejected instead).
        assert_eq!(db_string(&s("a\u{1}b")), "a\u{1}b");
    }
}
