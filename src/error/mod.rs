//! `ApiError`: a XenAPI failure exactly as it goes on the wire, `[CODE, param1, param2, …]`.
//!
//! Codes are [`ErrorCode`]s, generated from schema/xenapi.json (`errors`, with the parameters the
//! datamodel declares) into `codes.rs` by `tests/schema_generated.rs`, so a misspelt code does not
//! compile. The constructors here are typed so that the parameter order cannot drift between call
//! sites. Only a failure that arrives as text (a logged outcome) is built from a string
//! ([`ApiError::from_wire`]).

#[rustfmt::skip] // generated: tests/schema_generated.rs writes it
mod codes;

use std::fmt;

pub use codes::ErrorCode;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub params: Vec<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for p in &self.params {
            write!(f, " {p:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(code: ErrorCode, params: impl IntoIterator<Item = impl Into<String>>) -> ApiError {
        ApiError { code: code.as_str().to_string(), params: params.into_iter().map(Into::into).collect() }
    }

    /// A failure as it came over the wire or out of the log (a task's `error_info`, an
    /// operation's logged outcome): its code is whatever was sent.
    pub fn from_wire(code: String, params: Vec<String>) -> ApiError {
        ApiError { code, params }
    }

    /// `HANDLE_INVALID [class, ref]`.
    pub fn handle_invalid(class: &str, reference: &str) -> ApiError {
        ApiError::new(ErrorCode::HandleInvalid, [class, reference])
    }

    /// `UUID_INVALID [class, uuid]`.
    pub fn uuid_invalid(class: &str, uuid: &str) -> ApiError {
        ApiError::new(ErrorCode::UuidInvalid, [class, uuid])
    }

    /// `MAP_DUPLICATE_KEY [table, field, ref, key]` (xapi db_cache_impl.ml).
    pub fn map_duplicate_key(class: &str, field: &str, reference: &str, key: &str) -> ApiError {
        ApiError::new(ErrorCode::MapDuplicateKey, [class, field, reference, key])
    }

    /// `FIELD_TYPE_ERROR [param]`: a parameter or struct member of the wrong type (xapi's generated
    /// unmarshallers, ocaml/idl/ocaml_backend/gen_api.ml `ty_of_xmlrpc`).
    pub fn field_type_error(field: &str) -> ApiError {
        ApiError::new(ErrorCode::FieldTypeError, [field])
    }

    /// `INVALID_VALUE [field, value]`.
    pub fn invalid_value(field: &str, value: &str) -> ApiError {
        ApiError::new(ErrorCode::InvalidValue, [field, value])
    }

    /// `INTERNAL_ERROR [text]`.
    pub fn internal(text: impl Into<String>) -> ApiError {
        ApiError { code: "INTERNAL_ERROR".to_string(), params: vec![text.into()] }
    }

    /// `MESSAGE_METHOD_UNKNOWN [method]`.
    pub fn method_unknown(method: &str) -> ApiError {
        ApiError::new(ErrorCode::MessageMethodUnknown, [method])
    }

    /// `MESSAGE_PARAMETER_COUNT_MISMATCH [method, expected, received]` (xapi gen_server.ml).
    pub fn parameter_count_mismatch(method: &str, expected: usize, received: usize) -> ApiError {
        ApiError::new(
            ErrorCode::MessageParameterCountMismatch,
            [method.to_string(), expected.to_string(), received.to_string()],
        )
    }

    /// `SESSION_INVALID [session]`.
    pub fn session_invalid(session: &str) -> ApiError {
        ApiError::new(ErrorCode::SessionInvalid, [session])
    }

    /// `OPERATION_NOT_ALLOWED [reason]`.
    pub fn operation_not_allowed(reason: &str) -> ApiError {
        ApiError::new(ErrorCode::OperationNotAllowed, [reason])
    }

    /// `NOT_IMPLEMENTED [function]`: a message this server does not carry out (never a silent success).
    pub fn not_implemented(function: &str) -> ApiError {
        ApiError::new(ErrorCode::NotImplemented, [function])
    }

    /// The wire list `[code, params…]`.
    pub fn to_wire(&self) -> Vec<String> {
        std::iter::once(self.code.clone()).chain(self.params.iter().cloned()).collect()
    }
}
