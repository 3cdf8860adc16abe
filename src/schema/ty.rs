//! `Ty`: a XenAPI type, parsed from the datamodel's spelling (`VM ref set`, `(string -> enum vm_operations) map`).

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    String,
    Int,
    Float,
    Bool,
    DateTime,
    /// Enum by name; its values live in `Schema::enums`.
    Enum(String),
    /// Reference to an object of the named class.
    Ref(String),
    Set(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    /// The record of the named class.
    Record(String),
    Option(Box<Ty>),
    /// The result of `event.from`: a struct `{events, valid_ref_counts, token}`.
    EventBatch,
    Void,
}

impl Ty {
    /// Parses the datamodel's spelling of a type.
    pub fn parse(text: &str) -> Result<Ty, String> {
        let t = text.trim();
        if t.starts_with('(') && t.ends_with(" map") {
            let inner = t[..t.len() - " map".len()].trim();
            let inner = inner.strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(|| text.to_string())?;
            let (k, v) = split_arrow(inner).ok_or_else(|| text.to_string())?;
            return Ok(Ty::Map(Box::new(Ty::parse(k)?), Box::new(Ty::parse(v)?)));
        }
        if let Some(inner) = t.strip_suffix(" set") {
            return Ok(Ty::Set(Box::new(Ty::parse(inner)?)));
        }
        if let Some(inner) = t.strip_suffix(" option") {
            return Ok(Ty::Option(Box::new(Ty::parse(inner)?)));
        }
        if let Some(class) = t.strip_suffix(" ref") {
            return Ok(Ty::Ref(class.to_string()));
        }
        if let Some(class) = t.strip_suffix(" record") {
            return Ok(Ty::Record(class.to_string()));
        }
        if let Some(name) = t.strip_prefix("enum ") {
            return Ok(Ty::Enum(name.to_string()));
        }
        Ok(match t {
            "string" => Ty::String,
            "int" => Ty::Int,
            "float" => Ty::Float,
            "bool" => Ty::Bool,
            "datetime" => Ty::DateTime,
            "void" => Ty::Void,
            "an event batch" => Ty::EventBatch,
            _ => return Err(text.to_string()),
        })
    }

    pub fn is_ref(&self) -> bool {
        matches!(self, Ty::Ref(_))
    }
}

/// Splits `K -> V` at the arrow that is not inside parentheses.
fn split_arrow(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    let bytes = s.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'-' if depth == 0 && bytes.get(i + 1) == Some(&b'>') => return Some((&s[..i], &s[i + 2..])),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_types() {
        assert_eq!(Ty::parse("VM ref set").unwrap(), Ty::Set(Box::new(Ty::Ref("VM".into()))));
        assert_eq!(
            Ty::parse("(string -> enum vm_operations) map").unwrap(),
            Ty::Map(Box::new(Ty::String), Box::new(Ty::Enum("vm_operations".into())))
        );
        assert_eq!(
            Ty::parse("(VM ref -> (string -> string) map) map").unwrap(),
            Ty::Map(Box::new(Ty::Ref("VM".into())), Box::new(Ty::Map(Box::new(Ty::String), Box::new(Ty::String))))
        );
        assert_eq!(Ty::parse("sr_stat record option").unwrap(), Ty::Option(Box::new(Ty::Record("sr_stat".into()))));
        assert!(Ty::parse("nonsense").is_err());
    }
}
