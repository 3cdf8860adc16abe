//! XML-RPC codec: a `methodCall` body to a [`Request`], and a result to xapi's `methodResponse`.
//!
//! Decoding follows ocaml-rpc's `Xmlrpc.call_of_string` (docs/xenapi-semantics.md §a.4), the parser
//! xapi links, and is as lenient as it is:
//!
//! * untyped `<value>text</value>`, `<string>` and `<base64>` (not decoded) → `String`;
//!   `<value/>` and `<value></value>` → `""`; untyped text keeps its whitespace;
//! * `<int>`, `<i4>`, `<i8>` → `Int`; `<double>` → `Float`; `<boolean>` → `Bool`, true only for
//!   the text `1`;
//! * `<dateTime.iso8601>` → `DateTime` when [`parse_datetime`] accepts it, else the raw text as
//!   a `String` (ocaml-rpc keeps it as text and only the unmarshaller rejects it, with an API
//!   error, not a transport error);
//! * `<nil/>` → `Null`; `<array><data>` → `Set`; `<struct>` → `Record`, members in order,
//!   duplicates kept;
//! * whitespace between elements is skipped (the Python SDK pretty-prints), as are comments,
//!   processing instructions and the `<?xml?>` declaration; entity and character references and
//!   CDATA are resolved; line ends are normalised to `\n`; `<params/>` and a missing `<params>`
//!   mean no parameters; the method name loses surrounding whitespace.
//!
//! Encoding is byte-exact with ocaml-rpc's `Xmlrpc.string_of_response` in non-strict mode
//! (docs/xenapi-semantics.md §a.3, docs/clients.md §4.5): one line with no whitespace; the `Status` member
//! first and exactly one other member; strings, refs, enums and ints as untyped
//! `<value>text</value>`; `<double>` with `%.16g`; `<boolean>1</boolean>`;
//! `<dateTime.iso8601>YYYYMMDDTHH:MM:SSZ`; `Value::Null` as `<value><nil/></value>`. Two
//! deliberate differences: struct member names are escaped like any text (ocaml-rpc writes them
//! raw, so a map key such as `a<b` would break the document). Only `Value::Int32` is written as
//! `<i4>` (see the module note in [`super`]).

use std::borrow::Cow;

use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;

use super::{body_text, key_text, push_float_g16, push_int, DecodeError, Request, NESTING_DEPTH_MAX};
use crate::error::ApiError;
use crate::value::{parse_datetime, Value};

/// Decodes a `methodCall` body.
pub fn decode_call(body: &[u8]) -> Result<Request, DecodeError> {
    let transcoded;
    let text = match declared_encoding(body)? {
        Encoding::Utf8 => body_text(body)?,
        Encoding::Latin1 => {
            if body.len() > super::BODY_SIZE_BYTES_MAX {
                let size_bytes_max = super::BODY_SIZE_BYTES_MAX;
                return Err(DecodeError::TooLarge { size_bytes: body.len(), size_bytes_max });
            }
            transcoded = body.iter().map(|b| char::from(*b)).collect::<String>();
            transcoded.as_str()
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // XML 1.0 allows no control character but tab, line feed and carriage return, not even
    // escaped (`&#0;` is refused by the reader): a raw one is refused too, so that no value
    // holds what the other wire could not carry.
    if let Some(offset) = text.bytes().position(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) {
        return Err(DecodeError::Xml {
            offset: offset as u64,
            message: "a control character XML does not allow".into(),
        });
    }
    let mut parser = Parser::new(text);
    parser.call()
}

enum Encoding {
    Utf8,
    Latin1,
}

/// The encoding the XML declaration names: UTF-8 unless it says ISO-8859-1 (or its aliases, or
/// US-ASCII, a subset of both); any other is refused rather than misread.
fn declared_encoding(body: &[u8]) -> Result<Encoding, DecodeError> {
    let head = &body[..body.len().min(200)];
    let Some(end) = head.windows(2).position(|w| w == b"?>") else { return Ok(Encoding::Utf8) };
    let decl = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    if !decl.trim_start_matches('\u{feff}').starts_with("<?xml") {
        return Ok(Encoding::Utf8);
    }
    let Some(at) = decl.find("encoding") else { return Ok(Encoding::Utf8) };
    let value: String = decl[at + "encoding".len()..]
        .trim_start()
        .trim_start_matches('=')
        .trim_start()
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| !matches!(c, '"' | '\''))
        .collect();
    match value.as_str() {
        "utf-8" | "utf8" => Ok(Encoding::Utf8),
        "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1" | "us-ascii" | "ascii" => Ok(Encoding::Latin1),
        other => Err(DecodeError::Xml { offset: 0, message: format!("unsupported encoding {other:?}") }),
    }
}

/// Encodes a call's result as xapi's `{Status, Value}` or `{Status, ErrorDescription}` struct.
/// A void result is passed as `Value::String("")` and comes out as `<value></value>`.
pub fn encode_response(result: &Result<Value, ApiError>) -> Vec<u8> {
    let cached = result.as_ref().map_or(0, |value| value.cached_encoding_len().0);
    let mut out = String::with_capacity(256 + cached);
    out.push_str(RESPONSE_HEAD);
    match result {
        Ok(value) => {
            out.push_str(SUCCESS_OPEN);
            encode_value(value, &mut out);
        }
        Err(error) => {
            out.push_str(concat!(
                "<value><struct><member><name>Status</name><value>Failure</value></member>",
                "<member><name>ErrorDescription</name><value><array><data>"
            ));
            push_string_value(&mut out, &error.code);
            for param in &error.params {
                push_string_value(&mut out, param);
            }
            out.push_str("</data></array></value>");
        }
    }
    out.push_str("</member></struct></value>");
    out.push_str(RESPONSE_TAIL);
    out.into_bytes()
}

/// [`encode_response`] of a successful `value` in pieces of about `piece_bytes` or more, cut
/// between the entries of a top-level map or set (a `get_all_records` reply), each handed to
/// `emit` as it is made; `emit` answers false to stop (the reader went away). The pieces put
/// together are the bytes `encode_response` makes, but never all held at once.
pub fn encode_response_pieces(value: &Value, piece_bytes: usize, emit: &mut dyn FnMut(String) -> bool) {
    let mut out = String::with_capacity(piece_bytes + piece_bytes / 4);
    out.push_str(RESPONSE_HEAD);
    out.push_str(SUCCESS_OPEN);
    let mut cut = |out: &mut String| out.len() < piece_bytes || emit(std::mem::take(out));
    match value {
        Value::Map(entries) => {
            out.push_str("<value><struct>");
            for (key, item) in entries {
                push_member(&mut out, &key_text(key), item);
                if !cut(&mut out) {
                    return;
                }
            }
            out.push_str("</struct></value>");
        }
        Value::Set(items) => {
            out.push_str("<value><array><data>");
            for item in items {
                encode_value(item, &mut out);
                if !cut(&mut out) {
                    return;
                }
            }
            out.push_str("</data></array></value>");
        }
        other => encode_value(other, &mut out),
    }
    out.push_str("</member></struct></value>");
    out.push_str(RESPONSE_TAIL);
    emit(out);
}

/// Encodes a bare value inside `<param>`, without the Status struct: the reply xapi gives to
/// `system.listMethods` (docs/xenapi-semantics.md §a.3).
pub fn encode_bare(value: &Value) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str(RESPONSE_HEAD);
    encode_value(value, &mut out);
    out.push_str(RESPONSE_TAIL);
    out.into_bytes()
}

/// Appends one `<value>…</value>` element. Also the form of a task's `result` field, which
/// clients parse as XML-RPC whatever protocol they use (docs/clients.md §2, §4.4).
pub fn encode_value(value: &Value, out: &mut String) {
    match value {
        Value::String(s) | Value::Enum(s) | Value::Ref(s) => push_string_value(out, s),
        Value::Int(i) => {
            out.push_str("<value>");
            push_int(out, *i);
            out.push_str("</value>");
        }
        Value::Float(x) => {
            out.push_str("<value><double>");
            push_float_g16(out, *x);
            out.push_str("</double></value>");
        }
        Value::Bool(b) => {
            out.push_str(if *b { "<value><boolean>1</boolean></value>" } else { "<value><boolean>0</boolean></value>" })
        }
        Value::DateTime(t) => {
            out.push_str("<value><dateTime.iso8601>");
            crate::value::push_datetime(out, *t);
            out.push_str("</dateTime.iso8601></value>");
        }
        Value::Set(items) => {
            out.push_str("<value><array><data>");
            for item in items {
                encode_value(item, out);
            }
            out.push_str("</data></array></value>");
        }
        Value::Map(entries) => {
            out.push_str("<value><struct>");
            for (key, item) in entries {
                push_member(out, &key_text(key), item);
            }
            out.push_str("</struct></value>");
        }
        Value::Record(members) => {
            out.push_str("<value><struct>");
            for (name, item) in members {
                push_member(out, name, item);
            }
            out.push_str("</struct></value>");
        }
        Value::Null => out.push_str("<value><nil/></value>"),
        Value::Int32(i) => {
            out.push_str("<value><i4>");
            out.push_str(&i.to_string());
            out.push_str("</i4></value>");
        }
        Value::Lazy(source) => {
            let encode = |out: &mut String| {
                out.push_str("<value><struct>");
                source.for_each_member(&mut |name, item| push_member(out, name, item));
                out.push_str("</struct></value>");
            };
            match source.encoding_cache() {
                Some(cache) => cache.push_xml(out, encode),
                None => encode(out),
            }
        }
    }
}

/// Encodes a `methodCall` in the same style as responses: for clients, tests and benches.
pub fn encode_call(method: &str, params: &[Value]) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\"?><methodCall><methodName>");
    push_escaped(&mut out, method);
    out.push_str("</methodName><params>");
    for param in params {
        out.push_str("<param>");
        encode_value(param, &mut out);
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>");
    out.into_bytes()
}

const RESPONSE_HEAD: &str = "<?xml version=\"1.0\"?><methodResponse><params><param>";
/// What a successful reply's value follows: the Status member and the Value member's name.
const SUCCESS_OPEN: &str =
    concat!("<value><struct><member><name>Status</name><value>Success</value></member>", "<member><name>Value</name>");
const RESPONSE_TAIL: &str = "</param></params></methodResponse>";

fn push_string_value(out: &mut String, s: &str) {
    out.push_str("<value>");
    push_escaped(out, s);
    out.push_str("</value>");
}

fn push_member(out: &mut String, name: &str, value: &Value) {
    out.push_str("<member><name>");
    push_escaped(out, name);
    out.push_str("</name>");
    encode_value(value, out);
    out.push_str("</member>");
}

/// Appends `s` escaped as ocaml-rpc's `Xmlrpc.encode` does: `< > & "` become entities, control
/// characters other than TAB, LF and CR are dropped (XML 1.0 cannot carry them), all else is
/// copied.
fn push_escaped(out: &mut String, s: &str) {
    // Most text needs no escaping: copy it whole.
    if !s.bytes().any(|b| matches!(b, b'<' | b'>' | b'&' | b'"') || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))) {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let replacement = match byte {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            b'\t' | b'\n' | b'\r' => continue,
            0..=0x1f => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a character boundary.
        out.push_str(&s[start..i]);
        out.push_str(replacement);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// The elements of XML-RPC that the decoder knows, by local name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Element {
    MethodCall,
    MethodName,
    Params,
    Param,
    Value,
    String,
    /// `<int>`, `<i4>` or `<i8>`.
    Int,
    Boolean,
    Double,
    DateTime,
    Base64,
    Nil,
    Array,
    Data,
    Struct,
    Member,
    Name,
    /// Any other element; its name is kept for the error message.
    Other(Box<str>),
}

impl Element {
    fn of(tag: &str) -> Element {
        // The most frequent names first: the arms are tried in order.
        match tag {
            "value" => Element::Value,
            "member" => Element::Member,
            "name" => Element::Name,
            "string" => Element::String,
            "param" => Element::Param,
            "struct" => Element::Struct,
            "array" => Element::Array,
            "data" => Element::Data,
            "int" | "i4" | "i8" => Element::Int,
            "boolean" => Element::Boolean,
            "double" => Element::Double,
            "dateTime.iso8601" => Element::DateTime,
            "nil" => Element::Nil,
            "params" => Element::Params,
            "methodName" => Element::MethodName,
            "methodCall" => Element::MethodCall,
            "base64" => Element::Base64,
            other => Element::Other(other.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Element::MethodCall => "methodCall",
            Element::MethodName => "methodName",
            Element::Params => "params",
            Element::Param => "param",
            Element::Value => "value",
            Element::String => "string",
            Element::Int => "int",
            Element::Boolean => "boolean",
            Element::Double => "double",
            Element::DateTime => "dateTime.iso8601",
            Element::Base64 => "base64",
            Element::Nil => "nil",
            Element::Array => "array",
            Element::Data => "data",
            Element::Struct => "struct",
            Element::Member => "member",
            Element::Name => "name",
            Element::Other(name) => name,
        }
    }
}

/// A markup event as the decoder sees it. quick-xml has already checked that every end tag
/// closes the innermost open element, so `End` never needs its name checked.
#[derive(Debug)]
enum Tag {
    Start(Element),
    /// A self-closing element, `<value/>`.
    Empty(Element),
    End(Element),
    Eof,
}

impl Tag {
    fn describe(&self) -> String {
        match self {
            Tag::Start(name) => format!("<{}>", name.as_str()),
            Tag::Empty(name) => format!("<{}/>", name.as_str()),
            Tag::End(name) => format!("</{}>", name.as_str()),
            Tag::Eof => "end of input".to_string(),
        }
    }
}

/// A recursive-descent parser over quick-xml's event stream. Text is borrowed from the body
/// unless entities or CR line ends force a copy.
struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    /// Whether the body contains a CR, so that text needs XML's line-end normalisation. Most
    /// bodies have none, and then text is taken as it is.
    has_cr: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        // Whitespace is significant inside an untyped `<value>`, so the parser skips it itself.
        config.trim_text(false);
        config.check_end_names = true;
        config.expand_empty_elements = false;
        Parser { reader, has_cr: text.contains('\r') }
    }

    fn call(&mut self) -> Result<Request, DecodeError> {
        match self.tag("<methodCall>")? {
            Tag::Start(Element::MethodCall) => {}
            other => return Err(self.unexpected("<methodCall>", &other)),
        }
        let method = match self.tag("<methodName>")? {
            Tag::Start(Element::MethodName) => trim_blank(&self.scalar_text("</methodName>")?).to_string(),
            Tag::Empty(Element::MethodName) => String::new(),
            other => return Err(self.unexpected("<methodName>", &other)),
        };
        let mut params = Vec::new();
        match self.tag("<params> or </methodCall>")? {
            Tag::Start(Element::Params) => {
                loop {
                    match self.tag("<param> or </params>")? {
                        Tag::Start(Element::Param) => {
                            params.push(self.value(1)?);
                            self.end("</param>")?;
                        }
                        Tag::End(_) => break,
                        other => return Err(self.unexpected("<param> or </params>", &other)),
                    }
                }
                self.end("</methodCall>")?;
            }
            Tag::Empty(Element::Params) => self.end("</methodCall>")?,
            Tag::End(_) => {}
            other => return Err(self.unexpected("<params> or </methodCall>", &other)),
        }
        match self.tag("end of input")? {
            Tag::Eof => Ok(Request { method, params }),
            other => Err(self.unexpected("end of input", &other)),
        }
    }

    /// Reads one `<value>` element at nesting `depth` (a parameter is at depth 1).
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let tag = self.tag("<value>")?;
        self.value_from(tag, depth)
    }

    /// Reads the rest of a `<value>` element whose opening `tag` has been read.
    fn value_from(&mut self, tag: Tag, depth: usize) -> Result<Value, DecodeError> {
        if depth > NESTING_DEPTH_MAX {
            return Err(DecodeError::TooDeep { depth_max: NESTING_DEPTH_MAX });
        }
        match tag {
            Tag::Empty(Element::Value) => Ok(Value::String(String::new())),
            Tag::Start(Element::Value) => {
                // ocaml-rpc: text followed by `</value>` is an untyped string, whitespace
                // included; whitespace followed by an element is indentation.
                let (text, tag) = self.text_then_tag()?;
                let (name, empty) = match tag {
                    Tag::End(_) => return Ok(Value::String(text.into_owned())),
                    Tag::Start(name) if is_blank(&text) => (name, false),
                    Tag::Empty(name) if is_blank(&text) => (name, true),
                    Tag::Start(_) | Tag::Empty(_) => {
                        return Err(self.unexpected_text("a typed value without surrounding text", &text));
                    }
                    Tag::Eof => return Err(self.unexpected("</value>", &Tag::Eof)),
                };
                let value = self.typed(name, empty, depth)?;
                self.end("</value>")?;
                Ok(value)
            }
            other => Err(self.unexpected("<value>", &other)),
        }
    }

    /// Reads the typed element inside a `<value>`; `empty` if it was self-closing.
    fn typed(&mut self, name: Element, empty: bool, depth: usize) -> Result<Value, DecodeError> {
        match name {
            Element::String | Element::Base64 if empty => Ok(Value::String(String::new())),
            Element::String => Ok(Value::String(self.scalar_text("</string>")?.into_owned())),
            Element::Base64 => Ok(Value::String(self.scalar_text("</base64>")?.into_owned())),
            Element::Int => {
                let text = self.required_text(empty, "int", "</int>")?;
                match trim_blank(&text).parse::<i64>() {
                    Ok(i) => Ok(Value::Int(i)),
                    Err(_) => Err(self.bad_scalar("int")),
                }
            }
            Element::Double => {
                let text = self.required_text(empty, "double", "</double>")?;
                // A NaN or an infinity (`nan`, `inf`, `1e999999`) is refused: JSON has no number
                // for it, and what one wire accepts the other must read back the same.
                match trim_blank(&text).parse::<f64>() {
                    Ok(x) if x.is_finite() => Ok(Value::Float(x)),
                    _ => Err(self.bad_scalar("double")),
                }
            }
            // ocaml-rpc `make_bool`: only the exact text `1` is true.
            Element::Boolean => Ok(Value::Bool(self.required_text(empty, "boolean", "</boolean>")? == "1")),
            Element::DateTime => {
                let text = self.required_text(empty, "dateTime.iso8601", "</dateTime.iso8601>")?;
                Ok(match parse_datetime(&text) {
                    Some(secs) => Value::DateTime(secs),
                    None => Value::String(text.into_owned()),
                })
            }
            Element::Nil => {
                if !empty {
                    let text = self.scalar_text("</nil>")?;
                    if !is_blank(&text) {
                        return Err(self.unexpected_text("</nil>", &text));
                    }
                }
                Ok(Value::Null)
            }
            Element::Array if empty => Ok(Value::Set(Vec::new())),
            Element::Array => self.array(depth),
            Element::Struct if empty => Ok(Value::Record(Vec::new())),
            Element::Struct => self.members(depth),
            other => Err(self.unexpected("a value type", &Tag::Start(other))),
        }
    }

    /// Reads `<data>…</data></array>` after `<array>`.
    fn array(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let mut items = Vec::new();
        match self.tag("<data>")? {
            Tag::Start(Element::Data) => {
                loop {
                    match self.tag("<value> or </data>")? {
                        Tag::End(_) => break,
                        tag => items.push(self.value_from(tag, depth + 1)?),
                    }
                }
                self.end("</array>")?;
            }
            Tag::Empty(Element::Data) => self.end("</array>")?,
            // `<array></array>`, which ocaml-rpc reads as an empty array.
            Tag::End(_) => {}
            other => return Err(self.unexpected("<data>", &other)),
        }
        Ok(Value::Set(items))
    }

    /// Reads `<member><name>…</name><value>…</value></member>…</struct>` after `<struct>`.
    fn members(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let mut members = Vec::new();
        loop {
            match self.tag("<member> or </struct>")? {
                Tag::Start(Element::Member) => {}
                Tag::End(_) => break,
                other => return Err(self.unexpected("<member> or </struct>", &other)),
            }
            let name = match self.tag("<name>")? {
                Tag::Start(Element::Name) => self.scalar_text("</name>")?.into_owned(),
                Tag::Empty(Element::Name) => String::new(),
                other => return Err(self.unexpected("<name>", &other)),
            };
            let value = self.value(depth + 1)?;
            self.end("</member>")?;
            members.push((name, value));
        }
        Ok(Value::Record(members))
    }

    /// The text of a scalar element that cannot be empty (ocaml-rpc rejects `<int/>` and
    /// `<int></int>` alike).
    fn required_text(
        &mut self,
        empty: bool,
        tag: &'static str,
        closing: &'static str,
    ) -> Result<Cow<'a, str>, DecodeError> {
        let text = if empty { Cow::Borrowed("") } else { self.scalar_text(closing)? };
        if text.is_empty() {
            return Err(self.bad_scalar(tag));
        }
        Ok(text)
    }

    /// The text of an element with no children, up to its end tag.
    fn scalar_text(&mut self, expected: &'static str) -> Result<Cow<'a, str>, DecodeError> {
        match self.text_then_tag()? {
            (text, Tag::End(_)) => Ok(text),
            (_, other) => Err(self.unexpected(expected, &other)),
        }
    }

    /// Consumes the end tag of the current element, skipping whitespace before it.
    fn end(&mut self, expected: &'static str) -> Result<(), DecodeError> {
        match self.tag(expected)? {
            Tag::End(_) => Ok(()),
            other => Err(self.unexpected(expected, &other)),
        }
    }

    /// The next tag, after nothing but whitespace.
    fn tag(&mut self, expected: &'static str) -> Result<Tag, DecodeError> {
        let (text, tag) = self.text_then_tag()?;
        if !is_blank(&text) {
            return Err(self.unexpected_text(expected, &text));
        }
        Ok(tag)
    }

    /// Reads character data (text, CDATA, references) up to the next tag and returns both.
    /// Comments, processing instructions and declarations are skipped.
    fn text_then_tag(&mut self) -> Result<(Cow<'a, str>, Tag), DecodeError> {
        let mut text: Cow<'a, str> = Cow::Borrowed("");
        loop {
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(error) => return Err(self.xml_error(error.to_string())),
            };
            match event {
                Event::Text(t) if self.has_cr => append(&mut text, t.xml10_content()),
                Event::Text(t) => append(&mut text, t.into_inner()),
                Event::CData(c) if self.has_cr => append(&mut text, c.xml10_content()),
                Event::CData(c) => append(&mut text, c.into_inner()),
                Event::GeneralRef(r) => self.append_reference(&mut text, &r)?,
                Event::Start(e) => return Ok((text, Tag::Start(Element::of(e.local_name().as_ref())))),
                Event::Empty(e) => return Ok((text, Tag::Empty(Element::of(e.local_name().as_ref())))),
                Event::End(e) => return Ok((text, Tag::End(Element::of(e.local_name().as_ref())))),
                Event::Eof => return Ok((text, Tag::Eof)),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {}
            }
        }
    }

    /// Resolves the five predefined entities and character references. Any other entity is an
    /// error: a DTD could declare it, but expanding DTD entities invites entity-expansion bombs.
    fn append_reference(&self, text: &mut Cow<'a, str>, reference: &BytesRef<'_>) -> Result<(), DecodeError> {
        let predefined = match &**reference {
            "lt" => "<",
            "gt" => ">",
            "amp" => "&",
            "quot" => "\"",
            "apos" => "'",
            _ => "",
        };
        if !predefined.is_empty() {
            append(text, Cow::Borrowed(predefined));
            return Ok(());
        }
        match reference.resolve_char_ref() {
            Ok(Some(c)) => {
                text.to_mut().push(c);
                Ok(())
            }
            // The entity's name is not shown: it sits inside a value.
            Ok(None) => Err(self.xml_error("unknown entity".to_string())),
            Err(error) => Err(self.xml_error(error.to_string())),
        }
    }

    fn xml_error(&self, message: String) -> DecodeError {
        DecodeError::Xml { offset: self.reader.error_position(), message }
    }

    fn unexpected(&self, expected: &'static str, found: &Tag) -> DecodeError {
        DecodeError::XmlRpc { offset: self.reader.buffer_position(), expected, found: found.describe() }
    }

    /// The text itself is never shown: it may be a secret in the wrong place.
    fn unexpected_text(&self, expected: &'static str, text: &str) -> DecodeError {
        let found = format!("text ({} characters)", text.chars().count());
        DecodeError::XmlRpc { offset: self.reader.buffer_position(), expected, found }
    }

    fn bad_scalar(&self, tag: &'static str) -> DecodeError {
        DecodeError::XmlRpcScalar { offset: self.reader.buffer_position(), tag }
    }
}

/// Appends a piece of character data, copying only when there is already text.
fn append<'a>(text: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if text.is_empty() {
        *text = piece;
    } else {
        text.to_mut().push_str(&piece);
    }
}

/// `text` without leading and trailing XML whitespace.
fn trim_blank(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r'])
}

/// True if `text` is only XML whitespace.
fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::value::parse_datetime;

    /// Pieces of `value`'s reply, each at least `piece_bytes` but the last; `stop_after` pieces
    /// and the reader goes away.
    fn pieces(value: &Value, piece_bytes: usize, stop_after: usize) -> Vec<String> {
        let mut out = Vec::new();
        encode_response_pieces(value, piece_bytes, &mut |piece| {
            out.push(piece);
            out.len() < stop_after
        });
        out
    }

    /// A large reply sent in pieces is the reply encoded whole, cut between entries.
    #[test]
    fn pieces_put_together_are_the_whole_reply() {
        for value in crate::wire::replies_to_cut() {
            let whole = String::from_utf8(encode_response(&Ok(value.clone()))).unwrap();
            let cut = pieces(&value, 1000, usize::MAX);
            assert_eq!(cut.concat(), whole);
            assert!(cut[..cut.len() - 1].iter().all(|p| p.len() >= 1000));
            if whole.len() > 10_000 {
                assert!(cut.len() > 10, "{} pieces", cut.len());
                assert_eq!(pieces(&value, 1000, 3).len(), 3, "the encoding stops when the reader goes");
            }
        }
    }

    fn decode(xml: &str) -> Request {
        decode_call(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{xml}"))
    }

    fn decode_err(xml: &str) -> DecodeError {
        decode_call(xml.as_bytes()).expect_err(xml)
    }

    /// Decodes `<value>…</value>` as the only parameter of a call.
    fn param(value_xml: &str) -> Value {
        let xml =
            format!("<methodCall><methodName>m</methodName><params><param>{value_xml}</param></params></methodCall>");
        let mut request = decode(&xml);
        assert_eq!(request.params.len(), 1);
        request.params.remove(0)
    }

    fn fragment(value: &Value) -> String {
        let mut out = String::new();
        encode_value(value, &mut out);
        out
    }

    fn response(result: Result<Value, ApiError>) -> String {
        String::from_utf8(encode_response(&result)).unwrap()
    }

    fn s(text: &str) -> Value {
        Value::str(text)
    }

    // docs/xenapi-semantics.md §a.2: the constructed compact request.
    #[test]
    fn decodes_xapi_style_compact_call() {
        let request = decode(concat!(
            r#"<?xml version="1.0"?><methodCall><methodName>VM.get_power_state</methodName><params>"#,
            "<param><value>OpaqueRef:3b1c2f2e-6a7d-4c55-9d3e-1f0a9b8c7d6e</value></param>",
            "<param><value>OpaqueRef:9e8d7c6b-5a49-4382-9170-0f1e2d3c4b5a</value></param>",
            "</params></methodCall>"
        ));
        assert_eq!(request.method, "VM.get_power_state");
        assert_eq!(
            request.params,
            vec![
                s("OpaqueRef:3b1c2f2e-6a7d-4c55-9d3e-1f0a9b8c7d6e"),
                s("OpaqueRef:9e8d7c6b-5a49-4382-9170-0f1e2d3c4b5a")
            ]
        );
    }

    // docs/clients.md §1 (Python SDK): pretty-printed with newlines, `<?xml version='1.0'?>`,
    // `<string>` strings, `<int>` small ints, int64 sent as `<string>`, `<nil/>`, `<boolean>`,
    // `<double>`, and `<dateTime.iso8601>` without `Z`. This is xmlrpc.client's exact layout.
    #[test]
    fn decodes_python_sdk_pretty_printed_call() {
        let xml = "<?xml version='1.0'?>\n<methodCall>\n<methodName>VM.set_memory_limits</methodName>\n\
            <params>\n<param>\n<value><string>OpaqueRef:s</string></value>\n</param>\n\
            <param>\n<value><int>42</int></value>\n</param>\n\
            <param>\n<value><string>4294967296</string></value>\n</param>\n\
            <param>\n<value><nil/></value></param>\n\
            <param>\n<value><boolean>1</boolean></value>\n</param>\n\
            <param>\n<value><double>1.5</double></value>\n</param>\n\
            <param>\n<value><dateTime.iso8601>20250319T04:16:24</dateTime.iso8601></value>\n</param>\n\
            <param>\n<value><array><data>\n<value><string>a</string></value>\n<value><int>1</int></value>\n\
            </data></array></value>\n</param>\n\
            <param>\n<value><struct>\n<member>\n<name>key</name>\n<value><string>v</string></value>\n</member>\n\
            <member>\n<name>n</name>\n<value><int>-7</int></value>\n</member>\n</struct></value>\n</param>\n\
            </params>\n</methodCall>\n";
        let request = decode(xml);
        assert_eq!(request.method, "VM.set_memory_limits");
        assert_eq!(
            request.params,
            vec![
                s("OpaqueRef:s"),
                Value::Int(42),
                s("4294967296"),
                Value::Null,
                Value::Bool(true),
                Value::Float(1.5),
                Value::DateTime(parse_datetime("20250319T04:16:24Z").unwrap()),
                Value::Set(vec![s("a"), Value::Int(1)]),
                Value::Record(vec![("key".into(), s("v")), ("n".into(), Value::Int(-7))]),
            ]
        );
    }

    // docs/clients.md §1: Python calls `event.from` as `event_from` and login without a session.
    #[test]
    fn keeps_method_name_spelling() {
        let xml = "<?xml version='1.0'?>\n<methodCall>\n<methodName>event_from</methodName>\n<params>\n\
            <param>\n<value><string>OpaqueRef:s</string></value>\n</param>\n\
            <param>\n<value><array><data>\n<value><string>*</string></value>\n</data></array></value>\n</param>\n\
            <param>\n<value><string></string></value>\n</param>\n\
            <param>\n<value><double>30.0</double></value>\n</param>\n</params>\n</methodCall>\n";
        let request = decode(xml);
        assert_eq!(request.method, "event_from");
        assert_eq!(request.params, vec![s("OpaqueRef:s"), Value::Set(vec![s("*")]), s(""), Value::Float(30.0)]);
    }

    // docs/clients.md §2 ("XML-RPC request shape" of the xen-api npm client): strings as bare
    // `<value>`, ints as strings, `<nil />` with a space, encoding in the declaration, one line.
    #[test]
    fn decodes_xen_api_npm_call() {
        let request = decode(concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>VM.set_VCPUs_max</methodName>"#,
            "<params><param><value>OpaqueRef:s</value></param><param><value>4</value></param>",
            "<param><value><nil /></value></param></params></methodCall>"
        ));
        assert_eq!(request.params, vec![s("OpaqueRef:s"), s("4"), Value::Null]);
    }

    // docs/clients.md §3 (C SDK): ints and enums as `<string>`, datetimes as `%Y%m%dT%H:%M:%S`.
    #[test]
    fn decodes_c_sdk_call() {
        let request = decode(concat!(
            "<?xml version=\"1.0\"?><methodCall><methodName>task.set_created</methodName><params>",
            "<param><value><string>12</string></value></param>",
            "<param><value><dateTime.iso8601>20250319T04:16:24</dateTime.iso8601></value></param>",
            "</params></methodCall>"
        ));
        assert_eq!(request.params, vec![s("12"), Value::DateTime(parse_datetime("20250319T04:16:24Z").unwrap())]);
    }

    // docs/xenapi-semantics.md §a.4, "Accepted on input" column: every int tag is an Int.
    #[test]
    fn decodes_every_int_tag() {
        assert_eq!(param("<value><int>7</int></value>"), Value::Int(7));
        assert_eq!(param("<value><i4>-2147483648</i4></value>"), Value::Int(-2_147_483_648));
        assert_eq!(param("<value><i8>9223372036854775807</i8></value>"), Value::Int(i64::MAX));
        assert_eq!(param("<value><i8> 12 </i8></value>"), Value::Int(12));
        assert!(matches!(
            decode_err("<methodCall><methodName>m</methodName><params><param><value><int>1.5</int></value></param></params></methodCall>"),
            DecodeError::XmlRpcScalar { tag: "int", .. }
        ));
        assert!(matches!(
            decode_err("<methodCall><methodName>m</methodName><params><param><value><int/></value></param></params></methodCall>"),
            DecodeError::XmlRpcScalar { tag: "int", .. }
        ));
    }

    // docs/xenapi-semantics.md §a.4: in XML-RPC only the text `1` is true (ocaml-rpc `make_bool`).
    #[test]
    fn boolean_is_true_only_for_1() {
        assert_eq!(param("<value><boolean>1</boolean></value>"), Value::Bool(true));
        assert_eq!(param("<value><boolean>0</boolean></value>"), Value::Bool(false));
        assert_eq!(param("<value><boolean>true</boolean></value>"), Value::Bool(false));
        assert_eq!(param("<value><boolean> 1</boolean></value>"), Value::Bool(false));
    }

    // docs/xenapi-semantics.md §a.4: `<double>`; the text of the §a.4 examples.
    #[test]
    fn decodes_doubles() {
        assert_eq!(param("<value><double>1</double></value>"), Value::Float(1.0));
        assert_eq!(param("<value><double>0.0125</double></value>"), Value::Float(0.0125));
        assert_eq!(param("<value><double>-1e+20</double></value>"), Value::Float(-1e20));
        assert!(matches!(
            decode_err("<methodCall><methodName>m</methodName><params><param><value><double>x</double></value></param></params></methodCall>"),
            DecodeError::XmlRpcScalar { tag: "double", .. }
        ));
    }

    // docs/xenapi-semantics.md §a.4: datetimes in basic or extended form, with `Z`, an offset, or no
    // zone (then UTC). Unparsable text stays a string for the unmarshaller to reject.
    #[test]
    fn decodes_datetimes_in_every_accepted_form() {
        let t = parse_datetime("20250319T04:16:24Z").unwrap();
        for text in ["20250319T04:16:24Z", "20250319T04:16:24", "2025-03-19T04:16:24Z", "2025-03-19T05:16:24+01:00"] {
            let xml = format!("<value><dateTime.iso8601>{text}</dateTime.iso8601></value>");
            assert_eq!(param(&xml), Value::DateTime(t), "{text}");
        }
        assert_eq!(param("<value><dateTime.iso8601>soon</dateTime.iso8601></value>"), s("soon"));
    }

    // docs/xenapi-semantics.md §a.4: `<string>`, untyped `<value>`, and empty `<value/>` = "".
    // ocaml-rpc `empty_tag`: `<string/>` = "", `<array/>` = [], `<struct/>` = {}, `<nil/>` = null.
    #[test]
    fn decodes_empty_forms() {
        assert_eq!(param("<value/>"), s(""));
        assert_eq!(param("<value></value>"), s(""));
        assert_eq!(param("<value><string/></value>"), s(""));
        assert_eq!(param("<value><string></string></value>"), s(""));
        assert_eq!(param("<value><array/></value>"), Value::Set(vec![]));
        assert_eq!(param("<value><array></array></value>"), Value::Set(vec![]));
        assert_eq!(param("<value><array><data/></array></value>"), Value::Set(vec![]));
        assert_eq!(param("<value><array><data></data></array></value>"), Value::Set(vec![]));
        assert_eq!(param("<value><struct/></value>"), Value::Record(vec![]));
        assert_eq!(param("<value><struct></struct></value>"), Value::Record(vec![]));
        assert_eq!(param("<value><nil></nil></value>"), Value::Null);
        assert_eq!(param("<value><base64>aGk=</base64></value>"), s("aGk="));
        assert_eq!(
            param("<value><struct><member><name/><value/></member></struct></value>"),
            Value::Record(vec![(String::new(), s(""))])
        );
    }

    // ocaml-rpc `Parser.value` (docs/xenapi-semantics.md §a.4 codec): text up to `</value>` is the
    // string, whitespace included; whitespace before a typed element is indentation.
    #[test]
    fn untyped_text_keeps_whitespace_but_indentation_is_skipped() {
        assert_eq!(param("<value>  a b  </value>"), s("  a b  "));
        assert_eq!(param("<value>\n</value>"), s("\n"));
        assert_eq!(param("<value>\n  <string> x </string>\n</value>"), s(" x "));
        assert_eq!(param("<value>\r\n<i4>3</i4>\r\n</value>"), Value::Int(3));
        // XML normalises line ends inside text.
        assert_eq!(param("<value>a\r\nb\rc</value>"), s("a\nb\nc"));
        assert!(matches!(
            decode_err("<methodCall><methodName>m</methodName><params><param><value>x<int>1</int></value></param></params></methodCall>"),
            DecodeError::XmlRpc { .. }
        ));
    }

    // docs/xenapi-semantics.md §a.4: `< > & "` travel as entities; character references and CDATA
    // are ordinary XML that clients may send.
    #[test]
    fn resolves_entities_character_references_and_cdata() {
        assert_eq!(param("<value>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;</value>"), s("a & b <c> \"d\" 'e'"));
        assert_eq!(param("<value>&#10;&#x41;&#233;</value>"), s("\nAé"));
        assert_eq!(param("<value><string>x<![CDATA[<&>]]>y</string></value>"), s("x<&>y"));
        assert_eq!(param("<value><![CDATA[]]></value>"), s(""));
        assert_eq!(param("<value>&amp;</value>"), s("&"));
        assert_eq!(param("<value>caf\u{e9} \u{1F600}</value>"), s("caf\u{e9} \u{1F600}"));
        assert!(matches!(
            decode_err("<methodCall><methodName>m</methodName><params><param><value>&nbsp;</value></param></params></methodCall>"),
            DecodeError::Xml { .. }
        ));
    }

    // Comments, PIs and a DOCTYPE are legal XML around and between elements.
    #[test]
    fn skips_comments_and_processing_instructions() {
        let request = decode(
            "<!-- c --><methodCall><?pi x?><methodName>m</methodName><!-- c --><params><param><value><!-- c -->x</value></param></params></methodCall><!-- c -->\n",
        );
        assert_eq!(request.params, vec![s("x")]);
    }

    // The brief: `<params/>` and a missing `<params>` both mean no parameters (system.listMethods
    // is sent that way); the declaration is optional; a byte-order mark is tolerated.
    #[test]
    fn decodes_calls_without_params() {
        for xml in [
            "<methodCall><methodName>system.listMethods</methodName><params/></methodCall>",
            "<methodCall><methodName>system.listMethods</methodName><params></params></methodCall>",
            "<methodCall><methodName>system.listMethods</methodName></methodCall>",
            "\u{feff}<?xml version=\"1.0\"?>\n<methodCall>\n<methodName>system.listMethods</methodName>\n<params>\n</params>\n</methodCall>",
        ] {
            assert_eq!(decode(xml), Request { method: "system.listMethods".into(), params: vec![] }, "{xml}");
        }
    }

    #[test]
    fn rejects_malformed_calls() {
        let cases = [
            "",
            "<methodResponse/>",
            "<methodCall></methodCall>",
            "<methodCall><methodName>m</methodName><params><param></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><blob/></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value>a</param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params>text<param><value/></param></params></methodCall>",
            "<methodCall><methodName>m</methodName></methodCall><extra/>",
            "<methodCall><methodName>m</methodName></methodCall>trailing",
            "<methodCall><methodName>m</methodName><params><param><value/><value/></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><struct><member><value/></member></struct></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><array><value/></array></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params><param><value><nil>x</nil></value></param></params></methodCall>",
            "<methodCall><methodName>m</methodName><params>",
        ];
        for xml in cases {
            assert!(decode_call(xml.as_bytes()).is_err(), "{xml}");
        }
    }

    #[test]
    fn refuses_what_the_other_wire_could_not_carry() {
        let call = |v: &str| {
            format!(
                "<methodCall><methodName>m</methodName><params><param><value>{v}</value></param></params></methodCall>"
            )
        };
        for v in ["<double>nan</double>", "<double>-inf</double>", "<double>1e999999</double>", "a\u{0}b", "a\u{1b}b"] {
            assert!(decode_call(call(v).as_bytes()).is_err(), "{v:?}");
        }
        assert_eq!(param("<value>a\tb\nc</value>"), s("a\tb\nc"));
    }

    #[test]
    fn decodes_by_the_declared_encoding() {
        let body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodCall><methodName>m</methodName><params><param><value>caf\xe9</value></param></params></methodCall>";
        assert_eq!(decode_call(body).unwrap().params, [s("café")]);
        let utf16 = b"<?xml version='1.0' encoding='UTF-16'?><methodCall/>";
        assert!(matches!(decode_call(utf16), Err(DecodeError::Xml { .. })));
    }

    // docs/xenapi-semantics.md §a.2: strings must be UTF-8; the codec refuses other bytes outright.
    #[test]
    fn rejects_invalid_utf8() {
        let body = b"<methodCall><methodName>m</methodName><params><param><value>\xc3\x28</value></param></params></methodCall>";
        assert!(matches!(decode_call(body), Err(DecodeError::InvalidUtf8 { offset: 60 })));
    }

    #[test]
    fn enforces_nesting_depth() {
        let nest = |depth: usize| {
            let mut xml = String::from("<methodCall><methodName>m</methodName><params><param>");
            for _ in 1..depth {
                xml.push_str("<value><array><data>");
            }
            xml.push_str("<value>leaf</value>");
            for _ in 1..depth {
                xml.push_str("</data></array></value>");
            }
            xml.push_str("</param></params></methodCall>");
            xml
        };
        assert!(decode_call(nest(NESTING_DEPTH_MAX).as_bytes()).is_ok());
        assert_eq!(
            decode_call(nest(NESTING_DEPTH_MAX + 1).as_bytes()),
            Err(DecodeError::TooDeep { depth_max: NESTING_DEPTH_MAX })
        );
        // A very deep body fails the same way, without exhausting the stack.
        assert_eq!(decode_call(nest(5_000).as_bytes()), Err(DecodeError::TooDeep { depth_max: NESTING_DEPTH_MAX }));
    }

    // docs/xenapi-semantics.md §a.3: the constructed success reply, byte for byte: no newline after
    // the declaration, no whitespace (docs/clients.md §2, xen-api fails on either), Status first and
    // exactly two members (docs/clients.md §3, C SDK).
    #[test]
    fn encodes_success_exactly_as_xapi() {
        assert_eq!(
            response(Ok(Value::Enum("Halted".into()))),
            concat!(
                r#"<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name>"#,
                "<value>Success</value></member><member><name>Value</name><value>Halted</value></member></struct>",
                "</value></param></params></methodResponse>"
            )
        );
    }

    // docs/xenapi-semantics.md §a.3: the constructed failure reply, byte for byte.
    #[test]
    fn encodes_failure_exactly_as_xapi() {
        let error = ApiError::new(
            ErrorCode::VmBadPowerState,
            ["OpaqueRef:9e8d7c6b-5a49-4382-9170-0f1e2d3c4b5a", "halted", "running"],
        );
        assert_eq!(
            response(Err(error)),
            concat!(
                r#"<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name>"#,
                "<value>Failure</value></member><member><name>ErrorDescription</name><value><array><data>",
                "<value>VM_BAD_POWER_STATE</value><value>OpaqueRef:9e8d7c6b-5a49-4382-9170-0f1e2d3c4b5a</value>",
                "<value>halted</value><value>running</value></data></array></value></member></struct></value>",
                "</param></params></methodResponse>"
            )
        );
        // docs/clients.md §4.1: an error with no params is still an array with the code.
        assert!(response(Err(ApiError::new(ErrorCode::MessageRemoved, Vec::<String>::new()))).contains(
            "<name>ErrorDescription</name><value><array><data><value>MESSAGE_REMOVED</value></data></array>"
        ));
    }

    // docs/xenapi-semantics.md §a.4, "Constructed examples", one per type.
    #[test]
    fn encodes_each_type_as_xapi() {
        assert_eq!(fragment(&Value::Int(4_294_967_296)), "<value>4294967296</value>");
        assert_eq!(fragment(&Value::Int(i64::MIN)), "<value>-9223372036854775808</value>");
        assert_eq!(fragment(&Value::Float(1.0)), "<value><double>1</double></value>");
        assert_eq!(fragment(&Value::Float(0.0125)), "<value><double>0.0125</double></value>");
        assert_eq!(fragment(&Value::Float(1e20)), "<value><double>1e+20</double></value>");
        assert_eq!(fragment(&Value::Bool(false)), "<value><boolean>0</boolean></value>");
        assert_eq!(fragment(&Value::Bool(true)), "<value><boolean>1</boolean></value>");
        assert_eq!(
            fragment(&Value::DateTime(0)),
            "<value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value>"
        );
        assert_eq!(fragment(&Value::str("")), "<value></value>");
        assert_eq!(fragment(&Value::null_ref()), "<value>OpaqueRef:NULL</value>");
        assert_eq!(fragment(&Value::Enum("balance-slb".into())), "<value>balance-slb</value>");
        assert_eq!(fragment(&Value::Null), "<value><nil/></value>");
        assert_eq!(
            fragment(&Value::Set(vec![s("a"), Value::Int(1)])),
            "<value><array><data><value>a</value><value>1</value></data></array></value>"
        );
        assert_eq!(fragment(&Value::Set(vec![])), "<value><array><data></data></array></value>");
        assert_eq!(
            fragment(&Value::string_map([("mac_seed", "6a0c")])),
            "<value><struct><member><name>mac_seed</name><value>6a0c</value></member></struct></value>"
        );
        assert_eq!(
            fragment(&Value::Map(vec![(Value::Int(0), Value::Float(0.0125))])),
            "<value><struct><member><name>0</name><value><double>0.0125</double></value></member></struct></value>"
        );
        assert_eq!(
            fragment(&Value::Map(vec![(Value::Ref("OpaqueRef:a".into()), Value::Enum("RO".into()))])),
            "<value><struct><member><name>OpaqueRef:a</name><value>RO</value></member></struct></value>"
        );
        assert_eq!(
            fragment(&Value::Record(vec![("name_label".into(), s("vm")), ("VCPUs_max".into(), Value::Int(2))])),
            concat!(
                "<value><struct><member><name>name_label</name><value>vm</value></member>",
                "<member><name>VCPUs_max</name><value>2</value></member></struct></value>"
            )
        );
        assert_eq!(fragment(&Value::Record(vec![])), "<value><struct></struct></value>");
    }

    // docs/xenapi-semantics.md §a.4: int64 is untyped text, never `<i8>` (docs/clients.md §2: xen-api
    // cannot parse `<i8>`) nor `<i4>` (docs/clients.md §3: the C SDK wants strings).
    #[test]
    fn ints_are_never_typed() {
        let xml = response(Ok(Value::Set(vec![Value::Int(1), Value::Int(-5_000_000_000)])));
        assert!(!xml.contains("<i8>") && !xml.contains("<i4>") && !xml.contains("<int>"), "{xml}");
    }

    // docs/xenapi-semantics.md §a.4: `< > & "` escaped, control bytes other than TAB/LF/CR dropped.
    #[test]
    fn escapes_and_drops_control_characters() {
        assert_eq!(fragment(&s("a<b>&\"c'")), "<value>a&lt;b&gt;&amp;&quot;c'</value>");
        assert_eq!(fragment(&s("t\tl\nr\r\u{0}\u{1}\u{1b}\u{1f}x\u{7f}é")), "<value>t\tl\nr\rx\u{7f}é</value>");
        // A member name is escaped too (ocaml-rpc writes it raw, producing broken XML).
        assert_eq!(
            fragment(&Value::string_map([("a<&", "v")])),
            "<value><struct><member><name>a&lt;&amp;</name><value>v</value></member></struct></value>"
        );
    }

    // docs/xenapi-semantics.md §a.4: a void result is `<value></value>`; callers pass String("").
    // docs/clients.md §1: Python needs `Value` present even for void.
    #[test]
    fn void_result_has_an_empty_value() {
        assert!(response(Ok(s(""))).contains("<member><name>Value</name><value></value></member>"));
    }

    // docs/xenapi-semantics.md §a.3: `system.listMethods` returns the bare array, no Status struct.
    #[test]
    fn encodes_bare_list_methods_reply() {
        let xml = String::from_utf8(encode_bare(&Value::Set(vec![s("VM.start"), s("VM.get_all_records")]))).unwrap();
        assert_eq!(
            xml,
            concat!(
                r#"<?xml version="1.0"?><methodResponse><params><param><value><array><data>"#,
                "<value>VM.start</value><value>VM.get_all_records</value></data></array></value>",
                "</param></params></methodResponse>"
            )
        );
    }

    // docs/clients.md §2: xen-api parses `task.result` as `<value>…</value>`; a bare ref fails.
    #[test]
    fn task_result_fragment_is_a_value_element() {
        assert_eq!(fragment(&Value::Ref("OpaqueRef:1".into())), "<value>OpaqueRef:1</value>");
    }

    #[test]
    fn encode_call_round_trips_through_decode_call() {
        let params = vec![
            s("OpaqueRef:s"),
            Value::Float(2.5),
            Value::Bool(true),
            Value::DateTime(1_742_357_784),
            Value::Null,
            Value::Set(vec![s("<&>\"'")]),
            Value::Record(vec![("k".into(), Value::Set(vec![]))]),
        ];
        let bytes = encode_call("VM.set_<odd>", &params);
        assert_eq!(decode_call(&bytes), Ok(Request { method: "VM.set_<odd>".into(), params }));
        // Int comes back as the untyped string it was sent as.
        let bytes = encode_call("m", &[Value::Int(-3)]);
        assert_eq!(decode_call(&bytes).unwrap().params, vec![s("-3")]);
    }

    #[test]
    fn int32_goes_out_as_i4() {
        // docs/xenapi-semantics.md §a.4: event.from's valid_ref_counts is the one <i4> on the wire.
        let mut out = String::new();
        encode_value(&Value::Int32(53), &mut out);
        assert_eq!(out, "<value><i4>53</i4></value>");
    }
}
