//! xapi's row-filter expression language (`get_all_records_where`, `get_all_where`): lexer, parser
//! and evaluator. docs/xenapi-semantics.md §d.4 is the contract; the xapi sources it renders
//! (xapi-project/xen-api) are:
//!
//! * `ocaml/database/db_filter_lex.mll` (ocamllex, longest match): whitespace `[' ' '\t' '\n']` is
//!   skipped; `=`, `true`, `false`, `(`, `)`, `field`, `and`, `or`, `not`; a string literal is
//!   `'"' [^ '"']* '"'` (no escapes); `eof`. There is no identifier rule, so keywords need no word
//!   boundary (`field"a"="b"and true` lexes fine) and anything else (`TRUE`, `\r`, `1`, an
//!   unterminated `"`) makes the generated lexer fail with `Failure "lexing: empty token"`.
//! * `ocaml/database/db_filter_parse.mly` (ocamlyacc): `%right LNOT` then `%left LAND LOR`;
//!   `value: IDENT | FIELD IDENT`; `expr: value EQ value | expr LAND expr | expr LOR expr | LNOT expr
//!   | TRUE | FALSE | LPAREN expr RPAREN`; `exprstr: expr EOF`. Hence `and`/`or` share one
//!   left-associative level (`A or B and C` = `(A or B) and C`) and `not` takes everything to its
//!   right up to the closing parenthesis or the end (`not A and B` = `not (A and B)`,
//!   `A and not B or C` = `A and not (B or C)`).
//! * `ocaml/database/db_filter.ml`: `eval_expr lookup_val`: `Eq (a, b) -> lookup_val a =
//!   lookup_val b`, `And (a, b) -> f a && f b`, `Or (a, b) -> f a || f b` (short-circuit), `Not`;
//!   `expr_of_string` wraps any parser/lexer exception in `Expression_error (text, exn)`, which
//!   `ocaml/xapi/exnHelper.ml` turns into `INVALID_VALUE [text; Printexc.to_string exn]`.
//! * `ocaml/database/db_cache_impl.ml` `find_refs_with_filter_internal`: `Literal x -> x`,
//!   `Field x -> Schema.Value.marshal (Row.find x row)`; `Row.find` of an unknown column raises
//!   `DBCache_NotFound ("missing field", x, "")` → `INTERNAL_ERROR ["missing field", x, ""]`, only when
//!   a row is actually evaluated.
//!
//! Robustness: `and`/`or` chains are stored flat ([`Expr::Chain`]), so chain length adds no depth;
//! parentheses and `not` nest, and their nesting is limited to [`MAX_DEPTH`] so that hostile input
//! cannot overflow the stack in the parser, the evaluator, `Display` or `Drop`. (xapi's table-driven
//! parser has no such limit; this is the one deliberate deviation.)

use std::borrow::Cow;
use std::fmt;

/// Deepest nesting of `(` and `not` accepted by [`parse`].
pub const MAX_DEPTH: usize = 256;

/// Parser message for a syntax error: `Printexc.to_string Parsing.Parse_error`.
pub const PARSE_ERROR: &str = "Parsing.Parse_error";

/// Parser message for text the lexer cannot tokenise:
/// `Printexc.to_string (Failure "lexing: empty token")`.
pub const LEXING_ERROR: &str = "Failure(\"lexing: empty token\")";

/// Parser message when nesting exceeds [`MAX_DEPTH`] (xenledger-specific; xapi has no limit).
pub const TOO_DEEP_ERROR: &str = "Failure(\"where expression nested too deeply\")";

/// One side of `=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    /// `"text"`.
    Literal(String),
    /// `field "column"`: the database column name (`name__label`, `power_state`, `_ref`).
    Field(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
}

/// A parsed expression (`Db_filter_types.expr`, with `and`/`or` chains flattened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    True,
    False,
    Eq(Operand, Operand),
    Not(Box<Expr>),
    /// `first op1 e1 op2 e2 …`, grouped to the left: `((first op1 e1) op2 e2) …`. Never empty.
    Chain(Box<Expr>, Vec<(BinOp, Expr)>),
}

/// A `field "name"` whose column does not exist in the row being evaluated. xapi answers
/// `INTERNAL_ERROR ["missing field", name, ""]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingField(pub String);

impl fmt::Display for MissingField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "missing field {}", self.0)
    }
}

impl std::error::Error for MissingField {}

/// Maps a database column name to the wire field name: namespaces are joined with `__` in the
/// database (`name__label`, `Escaping.escape_id`) and with `_` on the wire (`name_label`).
pub fn column_to_field(column: &str) -> String {
    column.replace("__", "_")
}

impl Operand {
    fn value<'a>(&'a self, field: &mut dyn FnMut(&str) -> Option<String>) -> Result<Cow<'a, str>, MissingField> {
        match self {
            Operand::Literal(s) => Ok(Cow::Borrowed(s)),
            Operand::Field(name) => field(name).map(Cow::Owned).ok_or_else(|| MissingField(name.clone())),
        }
    }
}

impl Expr {
    /// Evaluates the expression for one row. `field(column)` returns the db string
    /// ([`crate::engine::db_string::db_string`]) of that column, or `None` if the row has no such
    /// column, which fails the evaluation with [`MissingField`].
    ///
    /// Evaluation order follows xapi's: `and`/`or` left to right with short-circuit (a missing
    /// field in a skipped operand is not an error), and for `=` the right operand is looked up
    /// first (OCaml evaluates the arguments of `f (lookup_val a) (lookup_val b)` right to left), so
    /// when both sides are missing fields the right one is reported.
    pub fn eval(&self, field: &mut dyn FnMut(&str) -> Option<String>) -> Result<bool, MissingField> {
        match self {
            Expr::True => Ok(true),
            Expr::False => Ok(false),
            Expr::Not(e) => Ok(!e.eval(field)?),
            Expr::Eq(a, b) => {
                let right = b.value(field)?;
                let left = a.value(field)?;
                Ok(left == right)
            }
            Expr::Chain(first, rest) => {
                let mut acc = first.eval(field)?;
                for (op, e) in rest {
                    acc = match op {
                        BinOp::And => acc && e.eval(field)?,
                        BinOp::Or => acc || e.eval(field)?,
                    };
                }
                Ok(acc)
            }
        }
    }
}

/// Renders like xapi's `Db_filter.string_of_expr` (`And (Eq (Field a, Literal b), True)`,
/// `Not ( True )`), with chains expanded into left-nested binary nodes.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::True => f.write_str("True"),
            Expr::False => f.write_str("False"),
            Expr::Not(e) => write!(f, "Not ( {e} )"),
            Expr::Eq(a, b) => write!(f, "Eq ({a}, {b})"),
            Expr::Chain(first, rest) => {
                for (op, _) in rest.iter().rev() {
                    f.write_str(match op {
                        BinOp::And => "And (",
                        BinOp::Or => "Or (",
                    })?;
                }
                write!(f, "{first}")?;
                for (_, e) in rest {
                    write!(f, ", {e})")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Literal(s) => write!(f, "Literal {s}"),
            Operand::Field(s) => write!(f, "Field {s}"),
        }
    }
}

/// Parses an expression. The error is the parser message xapi puts second in
/// `INVALID_VALUE [<expr>, <message>]`: [`PARSE_ERROR`], [`LEXING_ERROR`] or [`TOO_DEEP_ERROR`].
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser { lexer: Lexer { rest: text }, look: None };
    let e = p.expr(0)?;
    match p.bump()? {
        Tok::Eof => Ok(e),
        _ => Err(PARSE_ERROR.to_string()),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Eq,
    True,
    False,
    Field,
    And,
    Or,
    Not,
    LParen,
    RParen,
    Str(String),
    Eof,
}

/// Tokens are produced on demand, as the ocamlyacc parser pulls them, so text after a syntax
/// error is never lexed (a syntax error before a lexing error reports the syntax error).
struct Lexer<'a> {
    rest: &'a str,
}

impl Lexer<'_> {
    fn next_token(&mut self) -> Result<Tok, String> {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\n']);
        const FIXED: [(&str, Tok); 9] = [
            ("=", Tok::Eq),
            ("true", Tok::True),
            ("false", Tok::False),
            ("(", Tok::LParen),
            (")", Tok::RParen),
            ("field", Tok::Field),
            ("and", Tok::And),
            ("or", Tok::Or),
            ("not", Tok::Not),
        ];
        if self.rest.is_empty() {
            return Ok(Tok::Eof);
        }
        for (text, tok) in FIXED {
            if let Some(after) = self.rest.strip_prefix(text) {
                self.rest = after;
                return Ok(tok);
            }
        }
        if let Some(body) = self.rest.strip_prefix('"') {
            if let Some(end) = body.find('"') {
                let lit = body[..end].to_string();
                self.rest = &body[end + 1..];
                return Ok(Tok::Str(lit));
            }
        }
        Err(LEXING_ERROR.to_string())
    }
}

/// Recursive descent equivalent of the ocamlyacc grammar (see the module docs):
///
/// ```text
/// expr    ::= "not" expr | primary (("and" | "or") operand)*
/// operand ::= "not" expr | primary
/// primary ::= "true" | "false" | "(" expr ")" | value "=" value
/// value   ::= STRING | "field" STRING
/// ```
struct Parser<'a> {
    lexer: Lexer<'a>,
    look: Option<Tok>,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Tok, String> {
        if self.look.is_none() {
            self.look = Some(self.lexer.next_token()?);
        }
        Ok(self.look.as_ref().expect("lookahead was just filled"))
    }

    fn bump(&mut self) -> Result<Tok, String> {
        match self.look.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, String> {
        if depth > MAX_DEPTH {
            return Err(TOO_DEEP_ERROR.to_string());
        }
        if *self.peek()? == Tok::Not {
            self.bump()?;
            return Ok(Expr::Not(Box::new(self.expr(depth + 1)?)));
        }
        let first = self.primary(depth)?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek()? {
                Tok::And => BinOp::And,
                Tok::Or => BinOp::Or,
                _ => break,
            };
            self.bump()?;
            let rhs = if *self.peek()? == Tok::Not {
                self.bump()?;
                // `not` binds loosest: it swallows the rest of this chain, so the loop ends next.
                Expr::Not(Box::new(self.expr(depth + 1)?))
            } else {
                self.primary(depth)?
            };
            rest.push((op, rhs));
        }
        Ok(if rest.is_empty() { first } else { Expr::Chain(Box::new(first), rest) })
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, String> {
        match self.bump()? {
            Tok::True => Ok(Expr::True),
            Tok::False => Ok(Expr::False),
            Tok::LParen => {
                let e = self.expr(depth + 1)?;
                match self.bump()? {
                    Tok::RParen => Ok(e),
                    _ => Err(PARSE_ERROR.to_string()),
                }
            }
            tok @ (Tok::Str(_) | Tok::Field) => {
                let left = self.value_from(tok)?;
                match self.bump()? {
                    Tok::Eq => {}
                    _ => return Err(PARSE_ERROR.to_string()),
                }
                let tok = self.bump()?;
                let right = self.value_from(tok)?;
                Ok(Expr::Eq(left, right))
            }
            _ => Err(PARSE_ERROR.to_string()),
        }
    }

    /// `value` starting with the already consumed token `tok`.
    fn value_from(&mut self, tok: Tok) -> Result<Operand, String> {
        match tok {
            Tok::Str(s) => Ok(Operand::Literal(s)),
            Tok::Field => match self.bump()? {
                Tok::Str(s) => Ok(Operand::Field(s)),
                _ => Err(PARSE_ERROR.to_string()),
            },
            _ => Err(PARSE_ERROR.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Parses and renders in xapi's `Db_filter.string_of_expr` form.
    fn tree(text: &str) -> String {
        parse(text).unwrap_or_else(|e| panic!("{text:?} should parse, got {e}")).to_string()
    }

    fn row(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn eval_on(text: &str, r: &HashMap<String, String>) -> Result<bool, MissingField> {
        parse(text).unwrap().eval(&mut |name: &str| r.get(name).cloned())
    }

    const A: &str = "field \"a\" = \"1\"";
    const B: &str = "field \"b\" = \"1\"";
    const C: &str = "field \"c\" = \"1\"";

    // docs/xenapi-semantics.md §d.4: "`and` and `or` have equal precedence and are left-associative, so
    // `A or B and C` means `(A or B) and C`" (db_filter_parse.mly `%left LAND LOR`).
    #[test]
    fn and_or_equal_precedence_left_assoc() {
        let t = tree(&format!("{A} or {B} and {C}"));
        assert_eq!(t, tree(&format!("({A} or {B}) and {C}")));
        assert_eq!(t, "And (Or (Eq (Field a, Literal 1), Eq (Field b, Literal 1)), Eq (Field c, Literal 1))");
        assert_ne!(t, tree(&format!("{A} or ({B} and {C})")));
        assert_eq!(tree("true and false or true"), "Or (And (True, False), True)");
        assert_eq!(tree("true or false and false"), "And (Or (True, False), False)");
        // Semantics: A=1, B=0, C=0 → (A or B) and C = false, whereas A or (B and C) would be true.
        let r = row(&[("a", "1"), ("b", "0"), ("c", "0")]);
        assert_eq!(eval_on(&format!("{A} or {B} and {C}"), &r), Ok(false));
        assert_eq!(eval_on(&format!("{A} or ({B} and {C})"), &r), Ok(true));
    }

    // docs/xenapi-semantics.md §d.4: "`not` binds loosest, so `not A and B` means `not (A and B)`"
    // (db_filter_parse.mly `%right LNOT` declared before `%left LAND LOR`).
    #[test]
    fn not_binds_loosest() {
        assert_eq!(tree(&format!("not {A} and {B}")), tree(&format!("not ({A} and {B})")));
        assert_eq!(tree("not true and false"), "Not ( And (True, False) )");
        assert_eq!(tree("(not true) and false"), "And (Not ( True ), False)");
        // In the middle of a chain `not` takes the rest of it.
        assert_eq!(tree("true and not false or true"), "And (True, Not ( Or (False, True) ))");
        assert_eq!(tree("not not true"), "Not ( Not ( True ) )");
        assert_eq!(tree("(not true or false) and true"), "And (Not ( Or (True, False) ), True)");
        // A=1, B=0: not (A and B) = true, (not A) and B = false.
        let r = row(&[("a", "1"), ("b", "0")]);
        assert_eq!(eval_on(&format!("not {A} and {B}"), &r), Ok(true));
        assert_eq!(eval_on(&format!("(not {A}) and {B}"), &r), Ok(false));
    }

    // docs/xenapi-semantics.md §d.4 "Constructed examples", evaluated on matching / non-matching rows.
    #[test]
    fn contract_examples() {
        let vm = row(&[
            ("power_state", "Running"),
            ("is_a_template", "false"),
            ("name__label", "Debian 12"),
            ("is_control_domain", "true"),
        ]);
        let halted = row(&[
            ("power_state", "Halted"),
            ("is_a_template", "false"),
            ("name__label", "Debian 11"),
            ("is_control_domain", "false"),
        ]);
        let e1 = "field \"power_state\" = \"Running\" and field \"is_a_template\" = \"false\"";
        assert_eq!(eval_on(e1, &vm), Ok(true));
        assert_eq!(eval_on(e1, &halted), Ok(false));
        let e2 = "field \"name__label\" = \"Debian 12\"";
        assert_eq!(eval_on(e2, &vm), Ok(true));
        assert_eq!(eval_on(e2, &halted), Ok(false));
        let e4 = "field \"is_control_domain\" = \"true\"";
        assert_eq!(eval_on(e4, &vm), Ok(true));
        assert_eq!(eval_on(e4, &halted), Ok(false));

        let e3 =
            "(field \"type\" = \"user\" or field \"type\" = \"system\") and not (field \"SR\" = \"OpaqueRef:NULL\")";
        assert_eq!(
            tree(e3),
            "And (Or (Eq (Field type, Literal user), Eq (Field type, Literal system)), \
             Not ( Eq (Field SR, Literal OpaqueRef:NULL) ))"
        );
        let vdi = |ty: &str, sr: &str| row(&[("type", ty), ("SR", sr)]);
        assert_eq!(eval_on(e3, &vdi("user", "OpaqueRef:1")), Ok(true));
        assert_eq!(eval_on(e3, &vdi("system", "OpaqueRef:1")), Ok(true));
        assert_eq!(eval_on(e3, &vdi("user", "OpaqueRef:NULL")), Ok(false));
        assert_eq!(eval_on(e3, &vdi("ephemeral", "OpaqueRef:1")), Ok(false));

        // "the always-true query is `true`"; `field "current_operations" = "()"` (xapi_vdi.ml).
        assert_eq!(eval_on("true", &vm), Ok(true));
        assert_eq!(eval_on("false", &vm), Ok(false));
        let ops = row(&[("current_operations", "()")]);
        assert_eq!(eval_on("field \"current_operations\" = \"()\"", &ops), Ok(true));
    }

    // docs/xenapi-semantics.md §d.4: "`=` is exact, case-sensitive string equality. Both sides may be
    // literals or fields (`field "a" = field "b"`)" (db_filter.ml `compare ( = )`).
    #[test]
    fn equality_is_exact_and_sides_are_free() {
        let r = row(&[("a", "x"), ("b", "x"), ("c", "X"), ("empty", "")]);
        assert_eq!(eval_on("field \"a\" = field \"b\"", &r), Ok(true));
        assert_eq!(eval_on("field \"a\" = field \"c\"", &r), Ok(false));
        assert_eq!(eval_on("\"x\" = field \"a\"", &r), Ok(true));
        assert_eq!(eval_on("\"x\" = \"x\"", &r), Ok(true));
        assert_eq!(eval_on("\"x\" = \"x \"", &r), Ok(false));
        assert_eq!(eval_on("field \"empty\" = \"\"", &r), Ok(true));
        assert_eq!(tree("\"lit\" = field \"f\""), "Eq (Literal lit, Field f)");
    }

    // db_filter_lex.mll: whitespace is only ' ', '\t', '\n'; keywords are plain lexemes with no
    // identifier rule, so they need no separating space; string literals have no escapes.
    #[test]
    fn lexer_details() {
        assert_eq!(tree("field\"a\"=\"b\"and(true)or\tfalse\n"), tree("field \"a\" = \"b\" and (true) or false"));
        assert_eq!(tree("nottrue"), "Not ( True )");
        assert_eq!(tree("field \"a\\\" = \"b\""), "Eq (Field a\\, Literal b)");
        assert_eq!(
            tree("field \"with space\" = \"multi\nline (and) 'q'\""),
            "Eq (Field with space, Literal multi\nline (and) 'q')"
        );
        assert_eq!(tree("\"\" = \"\""), "Eq (Literal , Literal )");
    }

    // docs/xenapi-semantics.md §d.4: "Empty expression is a syntax error"; syntax errors →
    // INVALID_VALUE [<expr>, <parser exception>] (exnHelper.ml `Printexc.to_string exc`).
    #[test]
    fn syntax_errors() {
        for text in [
            "",
            "   \n\t",
            "true true",
            "true)",
            "(true",
            "()",
            "true and",
            "and true",
            "not",
            "field \"a\"",
            "\"a\"",
            "field \"a\" =",
            "field \"a\" = \"b\" = \"c\"",
            "field field \"a\" = \"b\"",
            "field \"a\" = true",
            "true = true",
            "= \"a\"",
            "true $", // trailing token: the parser reads it as the next token, and it does not lex
        ] {
            let want = if text.ends_with('$') { LEXING_ERROR } else { PARSE_ERROR };
            assert_eq!(parse(text), Err(want.to_string()), "input {text:?}");
        }
    }

    // db_filter_lex.mll has no rule for these, so ocamllex raises Failure "lexing: empty token".
    #[test]
    fn lexing_errors() {
        for text in [
            "field \"a\" = \"unterminated",
            "\"",
            "TRUE",
            "True",
            "true\r\n",
            "field 'a' = 'b'",
            "field \"a\" != \"b\"",
            "1 = 1",
        ] {
            assert_eq!(parse(text), Err(LEXING_ERROR.to_string()), "input {text:?}");
        }
        // A syntax error before the bad text wins: tokens are pulled lazily, as ocamlyacc does.
        assert_eq!(parse("true true $"), Err(PARSE_ERROR.to_string()));
        assert_eq!(parse(") \"unterminated"), Err(PARSE_ERROR.to_string()));
        assert_eq!(parse("field \"a\" == \"b\"x"), Err(PARSE_ERROR.to_string()));
    }

    // docs/xenapi-semantics.md §d.4: "A field name that does not exist fails only if a row is actually
    // evaluated: INTERNAL_ERROR ["missing field", <name>, ""]" (db_cache_types Row.find').
    #[test]
    fn missing_field() {
        let e = parse("field \"nope\" = \"x\"").unwrap();
        let r = row(&[("a", "1")]);
        assert_eq!(e.eval(&mut |n: &str| r.get(n).cloned()), Err(MissingField("nope".into())));
        // Parsing alone never checks field names, and a table with no rows never evaluates.
        assert!(parse("field \"nope\" = \"x\" and field \"other\" = \"y\"").is_ok());
        // Short-circuit (db_filter.ml `f a && f b`, `f a || f b`): a skipped operand is not read.
        assert_eq!(eval_on("false and field \"nope\" = \"x\"", &r), Ok(false));
        assert_eq!(eval_on("true or field \"nope\" = \"x\"", &r), Ok(true));
        assert_eq!(eval_on("true and field \"nope\" = \"x\"", &r), Err(MissingField("nope".into())));
        // Left-assoc: `A or B and M` is `(A or B) and M`, so M is read even though A holds …
        assert_eq!(
            eval_on("field \"a\" = \"1\" or field \"b\" = \"x\" and field \"nope\" = \"x\"", &r),
            Err(MissingField("nope".into()))
        );
        // … while in `(F and M) or true` it is skipped.
        assert_eq!(eval_on("field \"a\" = \"0\" and field \"nope\" = \"x\" or true", &r), Ok(true));
        // `=` looks its right operand up first (OCaml right-to-left argument evaluation).
        assert_eq!(eval_on("field \"x\" = field \"y\"", &r), Err(MissingField("y".into())));
        assert_eq!(MissingField("nope".into()).to_string(), "missing field nope");
    }

    // Nesting limit (xenledger robustness, see module docs); long flat chains are unlimited.
    #[test]
    fn depth_is_bounded_and_chains_are_flat() {
        let ok = format!("{}true{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(parse(&ok).unwrap(), Expr::True);
        let deep = format!("{}true{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deep), Err(TOO_DEEP_ERROR.to_string()));
        let hostile = "(".repeat(1_000_000);
        assert_eq!(parse(&hostile), Err(TOO_DEEP_ERROR.to_string()));
        assert_eq!(parse(&"not ".repeat(100_000)), Err(TOO_DEEP_ERROR.to_string()));
        assert!(parse(&format!("{}true", "not ".repeat(MAX_DEPTH))).is_ok());

        // 100k-operand chain: parse, evaluate, render and drop without deep recursion.
        let mut text = String::from("field \"a\" = \"0\"");
        for i in 1..100_000 {
            text.push_str(if i % 2 == 0 { " and " } else { " or " });
            text.push_str(&format!("field \"a\" = \"{i}\""));
        }
        let e = parse(&text).unwrap();
        let r = row(&[("a", "99999")]);
        assert_eq!(e.eval(&mut |n: &str| r.get(n).cloned()), Ok(true));
        assert!(e.to_string().starts_with("Or (And (Or ("));
        drop(e);
    }

    // Db names join namespaces with `__` (Escaping.escape_id), wire names with `_`.
    #[test]
    fn column_names_to_wire_names() {
        assert_eq!(column_to_field("name__label"), "name_label");
        assert_eq!(column_to_field("name__description"), "name_description");
        assert_eq!(column_to_field("power_state"), "power_state");
        assert_eq!(column_to_field("SR"), "SR");
    }
}
