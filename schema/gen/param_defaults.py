#!/usr/bin/env python3
"""Extracts the default values of trailing message parameters from xapi's IDL.

xapi's generated server lets callers leave out trailing parameters that carry a
`param_default` in the IDL (e.g. VM.snapshot(session, vm, new_name), with
ignore_vdis defaulting to the empty set). The datamodel export that
schema/xenapi.json was generated from does not carry these defaults, so this
one-off tool recovers them from the OCaml sources.

Reads, from a xapi checkout (working tree) or a bare git mirror of
xapi-project/xen-api:
  ocaml/idl/datamodel*.ml             messages (`call ~name ~versioned_params`),
                                      parameter records (`param_default= ...`),
                                      classes (`create_obj ~name ~messages`) and
                                      the class-name constants (`let _vm = "VM"`)
  ocaml/xapi-consts/constants.ml      constants used inside some defaults
                                      (e.g. Constants.default_token_timeout_s)

Only interface facts are kept: class, message and parameter names and default
values. No description text is copied.

The parser is not a full OCaml parser. It relies on the sources being
ocamlformat-formatted (structure items start at the module's indentation) and
on messages being built with `call` / `{ msg with ... }` and parameter lists
with record literals, `::`, `@` and let-bound names or functions.

Usage: param_defaults.py XAPI_CHECKOUT_OR_GIT_DIR [OUT] [--rev REV]
  OUT defaults to schema/facts/param_defaults.json (relative to the repo root).
  REV (default HEAD) is used when reading from git.

Output shape (keys sorted, "_source"/"_revision" first):
  {"_source": "...", "_revision": "<commit>",
   "VM.snapshot": [{"name": "ignore_vdis", "default": []}], ...}
Defaults as JSON: VSet -> list, VMap -> object, VString/VEnum/VRef -> string
(null_ref -> "OpaqueRef:NULL"), VBool -> bool, VInt/VFloat -> number,
VDateTime -> string in xapi's wire format ("19700101T00:00:00Z").
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "facts", "param_defaults.json"))
SOURCE_NOTE = "xapi ocaml/idl/datamodel*.ml param_default"
CONSTANTS_PATH = "ocaml/xapi-consts/constants.ml"

# Date.epoch in xapi (ocaml/libs/clock/date.ml) rendered by Date.to_rfc3339.
KNOWN_VALUES = {("Date", "epoch"): ("datetime", "19700101T00:00:00Z")}

KEYWORDS = {
    "and", "as", "assert", "begin", "class", "constraint", "do", "done",
    "downto", "else", "end", "exception", "external", "false", "for", "fun",
    "function", "functor", "if", "in", "include", "inherit", "initializer",
    "lazy", "let", "match", "method", "module", "mutable", "new", "nonrec",
    "object", "of", "open", "or", "private", "rec", "sig", "struct", "then",
    "to", "true", "try", "type", "val", "virtual", "when", "while", "with",
}


# --------------------------------------------------------------------------
# Source access
# --------------------------------------------------------------------------
class Source:
    def __init__(self, path, rev):
        self.path = path
        self.rev = rev
        self.use_files = rev is None and os.path.isdir(os.path.join(path, "ocaml", "idl"))
        if not self.use_files:
            self.rev = rev or "HEAD"

    def _git(self, *args):
        # Works for both bare repositories and working trees.
        cmd = ["git", "--git-dir", self._git_dir()] + list(args)
        return subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout.decode("utf-8")

    def _git_dir(self):
        dot = os.path.join(self.path, ".git")
        return dot if os.path.exists(dot) else self.path

    def revision(self):
        try:
            return self._git("rev-parse", self.rev or "HEAD").strip()
        except Exception:
            return None

    def list_idl(self):
        if self.use_files:
            names = os.listdir(os.path.join(self.path, "ocaml", "idl"))
        else:
            out = self._git("ls-tree", "--name-only", self.rev, "ocaml/idl/")
            names = [os.path.basename(n) for n in out.split()]
        return sorted(
            "ocaml/idl/" + n for n in names if re.match(r"datamodel.*\.ml$", n)
        )

    def read(self, rel):
        if self.use_files:
            with open(os.path.join(self.path, rel), encoding="utf-8") as f:
                return f.read()
        return self._git("show", "%s:%s" % (self.rev, rel))


# --------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------
class Tok:
    __slots__ = ("kind", "val", "line", "col", "bol")

    def __init__(self, kind, val, line, col):
        self.kind, self.val, self.line, self.col, self.bol = kind, val, line, col, False

    def is_(self, kind, val=None):
        return self.kind == kind and (val is None or self.val == val)

    def __repr__(self):
        return "%s:%r@%d:%d" % (self.kind, self.val, self.line, self.col)


SYMBOL_CHARS = set("!$%&*+-./:<=>?@^|~#")
ESCAPES = {"n": "\n", "t": "\t", "b": "\b", "r": "\r", " ": " ", "\\": "\\", '"': '"', "'": "'"}


def lex(text):
    toks = []
    i, n, line, line_start = 0, len(text), 1, 0

    def add(kind, val, start, sline, sstart):
        toks.append(Tok(kind, val, sline, start - sstart))

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            line_start = i
            continue
        if c in " \t\r":
            i += 1
            continue
        start, sline, sstart = i, line, line_start
        if text.startswith("(*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("(*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*)", i):
                    depth, i = depth - 1, i + 2
                elif text[i] == '"':
                    i, line, line_start, _ = lex_string(text, i, line, line_start)
                else:
                    if text[i] == "\n":
                        line += 1
                        line_start = i + 1
                    i += 1
            continue
        if c == '"':
            i, line, line_start, s = lex_string(text, i, line, line_start)
            add("str", s, start, sline, sstart)
            continue
        m = re.compile(r"\{([a-z_]*)\|").match(text, i)
        if m:
            close = "|" + m.group(1) + "}"
            j = text.index(close, m.end())
            s = text[m.end():j]
            line += s.count("\n")
            if "\n" in s:
                line_start = m.end() + s.rindex("\n") + 1
            i = j + len(close)
            add("str", s, start, sline, sstart)
            continue
        if c == "'":
            m = re.compile(r"'(\\(?:[\\'\"ntbr ]|[0-9]{3}|x[0-9a-fA-F]{2})|[^\\'\n])'").match(text, i)
            if m:
                add("char", m.group(1), start, sline, sstart)
                i = m.end()
                continue
            add("sym", "'", start, sline, sstart)
            i += 1
            continue
        m = re.compile(r"[~?]([a-z_][A-Za-z0-9_']*)(:?)").match(text, i)
        if m and (start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "_')]}")):
            if not (m.group(2) and text.startswith("::", m.end() - 1)):
                add("label" if m.group(2) else "pun", m.group(1), start, sline, sstart)
                i = m.end()
                continue
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_']*").match(text, i)
        if m:
            add("kw" if m.group(0) in KEYWORDS else "id", m.group(0), start, sline, sstart)
            i = m.end()
            continue
        m = re.compile(r"-?(?:0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9]+)?)[lLn]?").match(text, i)
        if m and (c != "-" or (toks and toks[-1].kind == "sym" and toks[-1].val in "([;,")):
            add("num", m.group(0), start, sline, sstart)
            i = m.end()
            continue
        if c in "()[]{};,":
            add("sym", c, start, sline, sstart)
            i += 1
            continue
        if c in SYMBOL_CHARS:
            j = i
            while j < n and text[j] in SYMBOL_CHARS:
                j += 1
            add("op", text[i:j], start, sline, sstart)
            i = j
            continue
        add("sym", c, start, sline, sstart)
        i += 1
    last_line = 0
    for t in toks:
        t.bol = t.line != last_line
        last_line = t.line
    return toks


def lex_string(text, i, line, line_start):
    out, i, n = [], i + 1, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1, line, line_start, "".join(out)
        if c == "\\":
            d = text[i + 1]
            if d == "\n":  # line continuation: skip newline and leading blanks
                i += 2
                line += 1
                line_start = i
                while i < n and text[i] in " \t":
                    i += 1
                continue
            if d in ESCAPES:
                out.append(ESCAPES[d])
                i += 2
                continue
            if d.isdigit():
                out.append(chr(int(text[i + 1:i + 4])))
                i += 4
                continue
            if d == "x":
                out.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append(d)
            i += 2
            continue
        if c == "\n":
            line += 1
            line_start = i + 1
        out.append(c)
        i += 1
    raise ValueError("unterminated string")


# --------------------------------------------------------------------------
# Structure: modules and let-bindings (by ocamlformat indentation)
# --------------------------------------------------------------------------
OPEN = {"(": ")", "[": "]", "{": "}"}


def match_close(toks, i):
    """Index of the token closing the group opened at toks[i]."""
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j]
        if t.kind == "sym" and t.val in "([{":
            depth += 1
        elif t.kind == "sym" and t.val in ")]}":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced group at %r" % (toks[i],))


class Binding:
    def __init__(self, unit, name, scope, start, end, local_of=None):
        self.unit, self.name, self.scope = unit, name, scope
        self.start, self.end = start, end  # body token range [start, end)
        self.local_of = local_of  # (item_start, item_end) for local lets

    def __repr__(self):
        return "<%s %s.%s>" % (self.unit.name, ".".join(self.scope), self.name)


class Unit:
    """One source file: tokens, module scopes and let-bindings."""

    def __init__(self, name, text):
        self.name = name  # OCaml module name, e.g. Datamodel_vm
        self.toks = lex(text)
        self.items = {}  # scope tuple -> list of Binding (source order)
        self.locals = []  # Binding with local_of
        self.modules = []  # (scope tuple, start, end)
        self._structure()

    def _find_eq(self, i, stop):
        """Index of the '=' ending a let head starting at i, or None."""
        j = i
        while j < stop:
            t = self.toks[j]
            if t.kind == "sym" and t.val in "([{":
                j = match_close(self.toks, j) + 1
                continue
            if t.is_("op", "="):
                return j
            if t.kind == "kw" and t.val in ("let", "in"):
                return None
            j += 1
        return None

    def _structure(self):
        toks, n = self.toks, len(self.toks)
        stack = [((), -2, 0)]  # (scope, col of 'module', token index)
        item_ranges = []
        for i, t in enumerate(toks):
            if not t.bol:
                continue
            scope, mcol, _ = stack[-1]
            if t.is_("kw", "end") and t.col == mcol and len(stack) > 1:
                self.modules.append((scope, stack[-1][2], i))
                stack.pop()
                continue
            if t.col != mcol + 2:
                continue
            if t.is_("kw", "module") and i + 3 < n and toks[i + 1].kind == "id":
                k = i + 2
                if toks[k].is_("op", "=") and toks[k + 1].is_("kw", "struct"):
                    stack.append((scope + (toks[i + 1].val,), t.col, i))
                continue
            if t.kind == "kw" and t.val in ("let", "and"):
                k = i + 1
                if toks[k].is_("kw", "rec"):
                    k += 1
                if toks[k].kind != "id":
                    continue
                end = i + 1
                while end < n and not (toks[end].bol and toks[end].col <= t.col):
                    end += 1
                eq = self._find_eq(k + 1, end)
                if eq is None:
                    continue
                b = Binding(self, toks[k].val, scope, eq + 1, end)
                self.items.setdefault(scope, []).append(b)
                item_ranges.append((i, end))
        while len(stack) > 1:
            self.modules.append((stack[-1][0], stack[-1][2], n))
            stack.pop()
        # Local `let x ... = e in` bindings inside structure items.
        for (s, e) in item_ranges:
            for i in range(s + 1, e):
                t = toks[i]
                if not t.is_("kw", "let") or i + 1 >= e:
                    continue
                k = i + 1
                if toks[k].is_("kw", "rec"):
                    k += 1
                if toks[k].kind != "id":
                    continue
                eq = self._find_eq(k + 1, e)
                if eq is None:
                    continue
                j, lets, depth = eq + 1, 0, 0
                while j < e:
                    u = toks[j]
                    if u.kind == "sym" and u.val in "([{":
                        depth += 1
                    elif u.kind == "sym" and u.val in ")]}":
                        depth -= 1
                    elif u.is_("kw", "let") and depth == 0:
                        lets += 1
                    elif u.is_("kw", "in") and depth == 0:
                        if lets == 0:
                            break
                        lets -= 1
                    j += 1
                self.locals.append(Binding(self, toks[k].val, None, eq + 1, j, local_of=(i, e)))

    def scope_at(self, pos):
        best = ()
        for scope, s, e in self.modules:
            if s <= pos < e and len(scope) > len(best):
                best = scope
        return best


# --------------------------------------------------------------------------
# Evaluation of the small subset of OCaml the IDL uses
# --------------------------------------------------------------------------
class Param:
    def __init__(self, name, default):
        self.name, self.default = name, default  # default: None or token list


class Msg:
    def __init__(self, name, params, where):
        self.name, self.params, self.where = name, params, where  # params: list[Param] or None


class Str:
    def __init__(self, val):
        self.val = val


class Model:
    def __init__(self, units):
        self.units = {u.name: u for u in units}
        self.memo = {}
        self.warnings = []

    # ---- name resolution -------------------------------------------------
    def lookup_in_scope(self, unit, scope, name, before=None):
        cands = [b for b in unit.items.get(scope, []) if b.name == name]
        if before is not None:
            earlier = [b for b in cands if b.start < before]
            if earlier:
                return earlier[-1]
        return cands[-1] if cands else None

    def resolve(self, unit, pos, path):
        *mods, name = path
        if mods:
            # Module-qualified: a module of this unit, or another unit.
            for u in [unit] + list(self.units.values()):
                if u is unit:
                    for scope, _, _ in u.modules:
                        if scope[-len(mods):] == tuple(mods):
                            b = self.lookup_in_scope(u, scope, name)
                            if b:
                                return b
                elif u.name == mods[0]:
                    b = self.lookup_in_scope(u, tuple(mods[1:]), name)
                    if b:
                        return b
            return None
        locs = [b for b in unit.locals
                if b.name == name and b.local_of[0] <= pos < b.local_of[1] and b.start <= pos]
        if locs:
            return locs[-1]
        scope = unit.scope_at(pos)
        while True:
            b = self.lookup_in_scope(unit, scope, name, before=pos)
            if b:
                return b
            if not scope:
                break
            scope = scope[:-1]
        for u in self.units.values():
            if u is not unit:
                b = self.lookup_in_scope(u, (), name)
                if b:
                    return b
        return None

    # ---- token helpers ----------------------------------------------------
    @staticmethod
    def simple_expr_end(toks, k):
        """End (exclusive) of a label argument / simple expression at k."""
        t = toks[k]
        if t.kind == "sym" and t.val in "([{":
            return match_close(toks, k) + 1
        j = k
        while j + 2 < len(toks) and toks[j].kind == "id" and toks[j].val[:1].isupper() \
                and toks[j + 1].is_("op", ".") and toks[j + 2].kind == "id":
            j += 2
        return j + 1

    def labelled_args(self, toks, i):
        """Parse `f ~a:x ~b ?c:y ... ()` starting after f; returns (args, end)."""
        args, j = {}, i
        while j < len(toks):
            t = toks[j]
            if t.kind == "label":
                e = self.simple_expr_end(toks, j + 1)
                args[t.val] = (j + 1, e)
                j = e
            elif t.kind == "pun":
                args[t.val] = None
                j += 1
            elif t.is_("sym", "(") and j + 1 < len(toks) and toks[j + 1].is_("sym", ")"):
                return args, j + 2
            elif t.kind == "sym" and t.val in "([{" or t.kind in ("id", "str", "num"):
                j = self.simple_expr_end(toks, j)  # positional argument
            else:
                return args, j
        return args, j

    # ---- collection -------------------------------------------------------
    def expand(self, b, visiting):
        key = id(b)
        if key in self.memo:
            return self.memo[key]
        if key in visiting:
            return []
        res = self.collect(b.unit, b.start, b.end, visiting | {key})
        self.memo[key] = res
        return res

    def collect(self, unit, start, end, visiting=frozenset()):
        toks, out, i = unit.toks, [], start
        while i < end:
            t = toks[i]
            if t.is_("sym", "{"):
                j = match_close(toks, i)
                out.extend(self.record(unit, i, j, visiting))
                i = j + 1
            elif t.is_("id", "call") and i + 1 < end and toks[i + 1].kind == "label":
                args, j = self.labelled_args(toks, i + 1)
                out.append(self.call(unit, i, args, visiting))
                i = j
            elif t.kind == "str":
                out.append(Str(t.val))
                i += 1
            elif t.kind == "id" and (t.val[:1].islower() or t.val[:1] == "_" or t.val[:1].isupper()):
                j = self.simple_expr_end(toks, i)
                path = [toks[k].val for k in range(i, j, 2)]
                prev = toks[i - 1] if i > 0 else None
                is_field = (j < end and toks[j].is_("op", "=")) or (prev is not None and prev.is_("op", "."))
                if not is_field and not path[-1][:1].isupper():
                    b = self.resolve(unit, i, path)
                    if b is not None:
                        out.extend(self.expand(b, visiting))
                i = j
            else:
                i += 1
        return out

    def record(self, unit, i, j, visiting):
        toks = unit.toks
        fields = {}
        k, depth = i + 1, 0
        with_at = None
        while k < j:
            t = toks[k]
            if t.kind == "sym" and t.val in "([{":
                k = match_close(toks, k) + 1
                continue
            if t.is_("kw", "with") and with_at is None and not fields:
                with_at = k
            if t.kind == "id" and k + 1 < j and toks[k + 1].is_("op", "=") and \
                    (toks[k - 1].is_("sym", "{") or toks[k - 1].is_("sym", ";") or toks[k - 1].is_("kw", "with")):
                e = k + 2
                while e < j and not toks[e].is_("sym", ";"):
                    if toks[e].kind == "sym" and toks[e].val in "([{":
                        e = match_close(toks, e)
                    e += 1
                fields[t.val] = (k + 2, e)
                k = e
                continue
            k += 1
        if "param_name" in fields:
            s, e = fields["param_name"]
            name = toks[s].val if toks[s].kind == "str" else None
            if name is None:
                return []  # generic code building params (datamodel_utils etc.)
            dflt = None
            if "param_default" in fields:
                s, e = fields["param_default"]
                if not (e == s + 1 and toks[s].is_("id", "None")):
                    dflt = (unit, s, e)
            return [Param(name, dflt)]
        if with_at is not None and "msg_name" in fields:
            base = [x for x in self.collect(unit, i + 1, with_at, visiting) if isinstance(x, Msg)]
            s, e = fields["msg_name"]
            newname = [x.val for x in self.collect(unit, s, e, visiting) if isinstance(x, Str)]
            params = None
            if "msg_params" in fields:
                s, e = fields["msg_params"]
                params = [x for x in self.collect(unit, s, e, visiting) if isinstance(x, Param)]
            if len(base) == 1 and newname:
                return [Msg(newname[0], params if params is not None else base[0].params,
                            "%s:%d" % (unit.name, toks[i].line))]
        return []

    def call(self, unit, i, args, visiting):
        toks = unit.toks
        where = "%s:%d" % (unit.name, toks[i].line)
        name = None
        if args.get("name"):
            s, e = args["name"]
            strs = [x.val for x in self.collect(unit, s, e, visiting) if isinstance(x, Str)]
            name = strs[0] if strs else None
        params = None
        if args.get("versioned_params"):
            s, e = args["versioned_params"]
            params = [x for x in self.collect(unit, s, e, visiting) if isinstance(x, Param)]
        if name is None:
            self.warnings.append("%s: call without a resolvable ~name" % where)
        return Msg(name, params, where)

    # ---- classes ----------------------------------------------------------
    def classes(self):
        """Yields (class_name, [Msg]) for every create_obj in the sources."""
        for unit in self.units.values():
            toks = unit.toks
            for i, t in enumerate(toks):
                if not t.is_("id", "create_obj") or (i > 0 and toks[i - 1].is_("kw", "let")):
                    continue
                args, _ = self.labelled_args(toks, i + 1)
                if not args.get("name") or not args.get("messages"):
                    continue
                s, e = args["name"]
                strs = [x.val for x in self.collect(unit, s, e) if isinstance(x, Str)]
                if not strs:
                    self.warnings.append("%s:%d: class name unresolved" % (unit.name, t.line))
                    continue
                s, e = args["messages"]
                msgs = [x for x in self.collect(unit, s, e) if isinstance(x, Msg)]
                yield strs[0], msgs

    # ---- default values -----------------------------------------------------
    def value(self, unit, s, e):
        """Converts `Some (V... ...)` tokens to a JSON value."""
        toks = unit.toks[s:e]
        p = ValueParser(self, unit, s, toks)
        if not toks[0].is_("id", "Some"):
            raise ValueError("unexpected default %r" % toks)
        p.i = 1
        v = p.value()
        if p.i != len(toks):
            raise ValueError("trailing tokens in default %r" % toks)
        return v


class ValueParser:
    def __init__(self, model, unit, base, toks):
        self.model, self.unit, self.base, self.toks, self.i = model, unit, base, toks, 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, kind, val):
        t = self.take()
        if not t.is_(kind, val):
            raise ValueError("expected %s, got %r" % (val, t))

    def value(self):
        t = self.peek()
        if t.is_("sym", "("):
            self.take()
            v = self.value()
            self.expect("sym", ")")
            return v
        ctor = self.take()
        if ctor.kind != "id":
            raise ValueError("expected a value constructor, got %r" % ctor)
        c = ctor.val
        if c == "VSet":
            return [self.value() for _ in self.items()]
        if c == "VMap":
            out = {}
            for _ in self.items(pairs=True):
                pass
            for k, v in self.pairs:
                out[str(k)] = v
            return dict(sorted(out.items()))
        if c in ("VString", "VEnum", "VRef", "VBool", "VInt", "VFloat", "VDateTime"):
            kind, v = self.atom()
            want = {"VString": "str", "VEnum": "str", "VRef": "str", "VBool": "bool",
                    "VInt": "int", "VFloat": "float", "VDateTime": "datetime"}[c]
            if kind == "int" and want == "float":
                kind, v = "float", float(v)
            if kind != want:
                raise ValueError("%s applied to %s %r" % (c, kind, v))
            return v
        raise ValueError("unknown value constructor %s" % c)

    def items(self, pairs=False):
        """Iterates over the elements of a list literal; with pairs, fills self.pairs."""
        self.expect("sym", "[")
        self.pairs = []
        while not self.peek().is_("sym", "]"):
            if pairs:
                self.expect("sym", "(")
                k = self.value()
                self.expect("sym", ",")
                v = self.value()
                self.expect("sym", ")")
                self.pairs.append((k, v))
                yield None
            else:
                save = self.i
                yield None
                if self.i == save:
                    raise ValueError("empty list element")
            if self.peek().is_("sym", ";"):
                self.take()
        self.take()

    def atom(self):
        t = self.peek()
        if t.is_("sym", "("):
            self.take()
            r = self.atom()
            self.expect("sym", ")")
            return r
        return literal_of(self.model, self.unit, self.base + self.i, self.toks, self)


def literal_of(model, unit, pos, toks, parser, depth=0):
    t = parser.take()
    if t.kind == "str":
        return "str", t.val
    if t.kind == "num":
        return number(t.val)
    if t.is_("kw", "true") or t.is_("kw", "false"):
        return "bool", t.val == "true"
    if t.kind == "id":
        path = [t.val]
        while parser.peek() is not None and parser.peek().is_("op", ".") and t.val[:1].isupper():
            parser.take()
            t = parser.take()
            path.append(t.val)
        if tuple(path) in KNOWN_VALUES:
            return KNOWN_VALUES[tuple(path)]
        b = model.resolve(unit, pos, path)
        if b is None or depth > 5:
            raise ValueError("cannot resolve %s" % ".".join(path))
        sub = ValueParser(model, b.unit, b.start, b.unit.toks[b.start:b.end])
        r = literal_of(model, b.unit, b.start, sub.toks, sub, depth + 1)
        if sub.i != len(sub.toks):
            raise ValueError("%s is not a plain literal" % ".".join(path))
        return r
    raise ValueError("unexpected token %r" % t)


def number(s):
    s = s.replace("_", "")
    if s[-1] in "lLn":
        return "int", int(s[:-1], 0)
    if re.match(r"-?0[xX]", s):
        return "int", int(s, 16)
    if re.search(r"[.eE]", s):
        return "float", float(s)
    return "int", int(s)


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------
def module_name(path):
    base = os.path.splitext(os.path.basename(path))[0]
    return base[:1].upper() + base[1:]


def extract(src):
    units = [Unit(module_name(p), src.read(p)) for p in src.list_idl()]
    try:
        units.append(Unit("Constants", src.read(CONSTANTS_PATH)))
    except Exception:
        pass
    model = Model(units)
    result, trailing_issues, seen = {}, [], {}
    for cls, msgs in model.classes():
        for m in msgs:
            if m.name is None or not m.params:
                continue
            key = "%s.%s" % (cls, m.name)
            defaults, seen_default = [], False
            for p in m.params:
                if p.default is None:
                    if seen_default:
                        trailing_issues.append("%s: %s has no default after a defaulted param" % (key, p.name))
                    defaults = []
                    seen_default = False
                    continue
                seen_default = True
                try:
                    v = model.value(*p.default)
                except ValueError as ex:
                    model.warnings.append("%s.%s: %s" % (key, p.name, ex))
                    v = None
                defaults.append({"name": p.name, "default": v})
            if not defaults:
                continue
            entry = {"defaults": defaults, "params": [p.name for p in m.params], "where": m.where}
            if key in seen and seen[key]["defaults"] != defaults:
                model.warnings.append("%s defined twice with different defaults" % key)
            seen[key] = entry
            result[key] = defaults
    return result, seen, trailing_issues, model.warnings


def main(argv):
    args, rev = [], None
    it = iter(argv[1:])
    for a in it:
        if a == "--rev":
            rev = next(it)
        else:
            args.append(a)
    if not args or len(args) > 2:
        sys.stderr.write(__doc__)
        return 2
    src = Source(args[0], rev)
    out = args[1] if len(args) > 1 else DEFAULT_OUT
    result, _, issues, warnings = extract(src)
    for w in issues + warnings:
        sys.stderr.write("warning: %s\n" % w)
    doc = {"_source": SOURCE_NOTE}
    revision = None if src.use_files else src.revision()
    if revision:
        doc["_revision"] = revision
    for k in sorted(result):
        doc[k] = result[k]
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    sys.stderr.write("%d messages with defaulted parameters written to %s\n" % (len(result), out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
