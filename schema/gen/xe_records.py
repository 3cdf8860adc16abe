#!/usr/bin/env python3
"""Extracts the xe CLI's per-class record definitions from xapi's CLI server.

`xe <class>-list`, `-param-list`, `-param-get`, `-param-set`, `-param-add`,
`-param-remove` and `-param-clear` are generic: they are driven by a table of
fields per class. Each field has a CLI name, a getter that renders one string,
and optional setters / set and map accessors. This one-off tool recovers that
table so the Rust xe client can reproduce the names, kinds (RO/RW/SRO/SRW/MRO/
MRW), the datamodel field behind each xe field, how the value is rendered and
which API message each write goes to.

Reads, from a xapi checkout (working tree) or a bare git mirror of
xapi-project/xen-api:
  ocaml/xapi-cli-server/records.ml        `let X_record rpc session_id x = ...`
                                          functions and their `fields = [
                                          make_field ~name ~get ~set ... ]`
  ocaml/xapi-cli-server/cli_operations.ml `gen_cmds`: the Client module, record
                                          function, xe class name, default
                                          filters and default *-list fields
  ocaml/xapi-cli-server/record_util.ml    hand-written enum-to-string functions
                                          (the others are generated from the
                                          datamodel by gen_api.ml and print the
                                          datamodel value name unchanged)
and, from this repository, schema/xenapi.json (classes, field types, enums),
used to map OCaml record fields (`API.vM_metrics_VCPUs_number`: the class name
with its first letter lowercased, `_`, the field name) back to (class, field):
the prefix of the class the value is read from (the record's own class, or the
target class of the ref field a companion record is fetched through) is tried
first, then a matching class that has the field, then the longest prefix.

Only interface facts are kept: names, kinds, flags, field/message names and the
strings xe prints for enum values. No description or help text is copied; the
"note" strings are written by this tool.

The parser is not a full OCaml parser. It relies on the files being
ocamlformat-formatted (record functions and `let gen_cmds` start in column 0),
splits the `fields=` list on top-level `;`, and classifies each getter/setter
by normalising whitespace and matching a small set of shapes (see GETTER_SHAPES
and CONVERSIONS). Fields it cannot classify get format "other" with a note;
the OVERRIDES table below fixes up fields where the shape matcher would be
wrong or too vague.

Usage: xe_records.py XAPI_CHECKOUT_OR_GIT_DIR [OUT] [--rev REV] [--datamodel F]
                     [--report]
  OUT defaults to schema/facts/xe_records.json (relative to the repo root).
  REV (default HEAD) is used when reading from git.
  F defaults to schema/xenapi.json.

Output shape (keys sorted, indent=1):
  {"_source": "...", "_revision": "<commit>",
   "_not_in_datamodel": ["VM_group", ...],   # gen_cmds classes skipped: no
                                             # such class in schema/xenapi.json
   "_enum_fns_not_in_datamodel": [...],      # enum functions used only by
                                             # fields newer than the datamodel
   "classes": {"VM": {
       "cli": "vm", "record_fn": "vm_record",
       "list_defaults": [...], "def_filters": [["is-a-template", "false"]],
       "list_where": "subroles<>[]",          # only role: fixed where-clause
       "other_cli": [{"cli": "template", "list_defaults", "def_filters"}],
                                             # more xe classes, same record
       "fields": [...]}},                    # records.ml order
   "enum_strings": {"vm_power_state_to_lowercase_string": {
       "enum": "vm_power_state", "how": "...",
       "map": {"Halted": "halted", ...}}}}

Field keys (always present): name, kind, hidden, expensive, deprecated,
case_insensitive, source, format, set, set_arg, add_to_set, remove_from_set,
add_to_map, remove_from_map, set_in_map, set_map, clear_map.
  kind     as cli_operations.ml print_field: get_set -> SRO/SRW (add_to_set);
           get_map -> MRO/MRW (add_to_map); else RO/RW (set).
  source   {"class", "field"} of the one datamodel field the getter reads, plus
           "via" (a ref field of the record's class) when it is read from a
           companion record (VM.metrics -> VM_metrics, PGPU.PCI -> PCI ...),
           and "in_datamodel": false when the field is missing from
           schema/xenapi.json (the xapi sources may be newer). null when the
           getter calls other messages, combines fields or reads none.
  format   plain | uuid | uuid_or_null | name | uuids | uuids_comma | map |
           uuid_map | enum (+enum_fn) | bool | int | float (%.3f) |
           date (+date_fn) | set ("; "-joined strings) | other (+note), and
           these extra shapes: set_comma (strings joined ", "), enum_set
           (each element through enum_fn, joined "; "; for a
           (ref -> enum) map field, its values), enum_set_comma (joined ", "),
           int_set (int64 elements joined "; "), enum_key_map (map whose keys
           go through enum_fn, printed "k: v; ...").
           enum_fn names a key of enum_strings ("inline:<Class>.<field>" for
           tables written inside records.ml).
  set      "Class.message" the ~set calls; set_arg: string | int | bytes
           (Record_util.bytes_of_string: integer with an optional
           KiB/MiB/GiB/TiB suffix) | bool | float | enum (+set_enum_fn) |
           ref_by_uuid (+set_ref_class, set_empty_is_null when "" means
           OpaqueRef:NULL) | string_list / int_list / ref_list_by_uuid
           (comma-separated) | other. null when there is no ~set.
Optional field keys:
  missing              printed instead when the companion record can't be read
  message              for computed getters: the one API message whose result
                       is rendered in `format`; message_error_value: printed
                       instead when that call fails
  consistent_over_hosts  pool fields that show the value of `message` when it
                       is the same on every host, else this string
  note                 what a computed getter does (written by this tool)
  elem_arg (+elem_enum_fn, elem_ref_class)  conversion of add/remove_from_set
                       arguments, when not a plain string
  map_key_enum_fn      add/remove_from_map keys go through this function
  accessor_notes       accessors that are not a single API call, e.g.
                       read-modify-write emulations
  set_note             a ~set that is not a single API call
enum_strings "how": generated (the datamodel value printed unchanged, from
gen_api.ml), rpc (same, via the rpc marshaller), hand-written / inline
(a table in record_util.ml / records.ml), "same as F" or "uncapitalize of F"
(derived from another function). "default": printed for values missing from a
hand-written table ("unmapped" lists them); "unknown_constructors": table
entries that are not values of the datamodel enum.

Fields with source null at e2ee48d (2026-08); * = format "other" (see "note"),
the rest render a known shape from "message" or have a hand-written note:
  GPU_group: enabled-VGPU-types, supported-VGPU-types
  PCI: dependencies*
  PGPU: dependencies*
  PIF: io_read_kbs, io_write_kbs, duplex*
  SR: host*
  VBD: vdi-name-label*, attachable*, io_read_kbs, io_write_kbs
  VDI: metadata-of-pool*
  VGPU: type-model-name
  VGPU_type: max-resolution*
  VIF: io_read_kbs, io_write_kbs
  VM: memory-target, allowed-VBD-devices, allowed-VIF-devices, possible-hosts,
      VCPUs-utilisation, cooperative
  VMSS: VMs
  VTPM: secret*
  host: memory-free-computed, patches
  host_cpu: utilisation
  network_sriov: remaining-capacity
  pool: supported-sr-types, license-state, https-only, ssh-enabled,
        ssh-enabled-timeout, ssh-expiry, console-idle-timeout, ssh-auto-mode
  pool_patch: hosts
  subject: roles
Format "other" with a source: PIF speed, VGPU compatibility-metadata,
VM last-boot-record, pool vswitch-controller.
Run with --report to print the current list.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_OUT = os.path.join(ROOT, "schema", "facts", "xe_records.json")
DEFAULT_DM = os.path.join(ROOT, "schema", "xenapi.json")
SOURCE_NOTE = "xapi ocaml/xapi-cli-server/records.ml and cli_operations.ml gen_cmds"
RECORDS = "ocaml/xapi-cli-server/records.ml"
CLI_OPS = "ocaml/xapi-cli-server/cli_operations.ml"
RECORD_UTIL = "ocaml/xapi-cli-server/record_util.ml"

# String constants defined at the top of records.ml (nid, unknown_time, ...),
# filled by parse_records.
CONSTS = {}


# --------------------------------------------------------------------------
# Source access
# --------------------------------------------------------------------------
class Source:
    def __init__(self, path, rev):
        self.path = path
        self.rev = rev
        self.use_files = rev is None and os.path.isfile(os.path.join(path, RECORDS))
        if not self.use_files:
            self.rev = rev or "HEAD"

    def _git_dir(self):
        dot = os.path.join(self.path, ".git")
        return dot if os.path.exists(dot) else self.path

    def _git(self, *args):
        cmd = ["git", "--git-dir", self._git_dir()] + list(args)
        return subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout.decode("utf-8")

    def revision(self):
        try:
            return self._git("rev-parse", self.rev or "HEAD").strip()
        except Exception:
            return None

    def read(self, rel):
        if self.use_files:
            with open(os.path.join(self.path, rel), encoding="utf-8") as f:
                return f.read()
        return self._git("show", "%s:%s" % (self.rev, rel))


# --------------------------------------------------------------------------
# Lexical helpers: comments, strings, balanced groups, top-level splitting
# --------------------------------------------------------------------------
def _skip_string(text, i):
    """i at an opening '"'; returns index after the closing quote."""
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise ValueError("unterminated string")


def _char_literal_end(text, i):
    """If text[i] starts an OCaml char literal, return its end, else None."""
    m = re.compile(r"'(?:\\(?:[\\'\"ntbr ]|[0-9]{3}|x[0-9a-fA-F]{2})|[^\\'\n])'").match(text, i)
    if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
        return m.end()
    return None


def strip_comments(text):
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("(*", i) and not text.startswith("(*)", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("(*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*)", j):
                    depth, j = depth - 1, j + 2
                elif text[j] == '"':
                    j = _skip_string(text, j)
                else:
                    j += 1
            # keep line structure so column-0 detection still works
            out.append("\n" * text.count("\n", i, j) or " ")
            i = j
            continue
        c = text[i]
        if c == '"':
            j = _skip_string(text, i)
            out.append(text[i:j])
            i = j
            continue
        if c == "'":
            j = _char_literal_end(text, i)
            if j:
                out.append(text[i:j])
                i = j
                continue
        out.append(c)
        i += 1
    return "".join(out)


def scan(text, i=0, end=None):
    """Yield (index, char, depth) for code chars, skipping strings/char literals.
    depth counts (), [] and {} opened before index."""
    end = len(text) if end is None else end
    depth = 0
    while i < end:
        c = text[i]
        if c == '"':
            yield i, c, depth
            i = _skip_string(text, i)
            continue
        if c == "'":
            j = _char_literal_end(text, i)
            if j:
                yield i, c, depth
                i = j
                continue
        if c in "([{":
            yield i, c, depth
            depth += 1
        elif c in ")]}":
            depth -= 1
            yield i, c, depth
        else:
            yield i, c, depth
        i += 1


def match_close(text, i):
    """Index of the bracket closing the one at text[i]."""
    for j, c, d in scan(text, i):
        if c in ")]}" and d == 0:
            return j
    raise ValueError("unbalanced group at %d" % i)


def split_top(text, sep=";"):
    """Split text on `sep` chars at bracket depth 0."""
    parts, start = [], 0
    for j, c, d in scan(text):
        if c == sep and d == 0:
            parts.append(text[start:j])
            start = j + 1
    parts.append(text[start:])
    return [p for p in (x.strip() for x in parts) if p]


def norm(s):
    return re.sub(r"\s+", " ", s).strip()


def unparen(s):
    s = s.strip()
    while s.startswith("(") and match_close(s, 0) == len(s) - 1:
        s = s[1:-1].strip()
    return s


STRING_RE = r'"((?:[^"\\]|\\.)*)"'


def ocaml_string(s):
    return json.loads('"%s"' % s.replace("\\'", "'"))


# --------------------------------------------------------------------------
# Datamodel
# --------------------------------------------------------------------------
class Datamodel:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        self.classes = {c["name"]: {fl["name"]: fl for fl in c["fields"]} for c in d["classes"]}
        self.messages = {c["name"]: {m["name"] for m in c.get("messages", [])} for c in d["classes"]}
        self.enums = d["enums"]
        self.by_lower = {n.lower(): n for n in self.classes}
        # OCaml record-field prefixes, longest first: VM_metrics -> "vM_metrics_"
        self.prefixes = sorted(((n[0].lower() + n[1:] + "_", n) for n in self.classes),
                               key=lambda p: -len(p[0]))

    def resolve(self, ocaml_field, expect=None):
        """`vM_metrics_VCPUs_number` -> ("VM_metrics", "VCPUs_number") or None.

        With `expect` (the class of the record the field is read from) that
        class's prefix is used; otherwise a class whose prefix matches and has
        the field wins, then the longest matching prefix."""
        if expect:
            pre = expect[0].lower() + expect[1:] + "_"
            if ocaml_field.startswith(pre) and len(ocaml_field) > len(pre):
                return expect, ocaml_field[len(pre):]
        cands = [(cls, ocaml_field[len(pre):]) for pre, cls in self.prefixes
                 if ocaml_field.startswith(pre) and len(ocaml_field) > len(pre)]
        for cls, fld in cands:
            if fld in self.classes[cls]:
                return cls, fld
        return cands[0] if cands else None

    def ref_target(self, cls, field):
        m = re.fullmatch(r"(\w+) ref", self.field_type(cls, field) or "")
        return m.group(1) if m else None

    def class_of_module(self, module):
        return self.by_lower.get(module.lower())

    def field_type(self, cls, field):
        f = self.classes.get(cls, {}).get(field)
        return f["type"] if f else None


# --------------------------------------------------------------------------
# gen_cmds
# --------------------------------------------------------------------------
def toplevel_binding(text, name):
    m = re.search(r"^let %s\b" % re.escape(name), text, re.M)
    if not m:
        raise ValueError("no top-level `let %s`" % name)
    nxt = re.compile(r"^(?:let|and|type|module|exception|open)\b", re.M).search(text, m.end())
    return text[m.start(): nxt.start() if nxt else len(text)]


def split_words(text):
    """Split an application `f a (b c) [d] "e"` into its top-level words."""
    words, i, n = [], 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] in "([{":
            j = match_close(text, i) + 1
        elif text[i] == '"':
            j = _skip_string(text, i)
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "([{":
                j += 1
        words.append(text[i:j])
        i = j
    return words


def parse_gen_cmds(cli_ops):
    body = strip_comments(toplevel_binding(cli_ops, "gen_cmds"))
    out = []
    for m in re.finditer(r"Client\.(\w+)\.\(", body):
        close = match_close(body, m.end() - 1)
        inner = body[m.end():close].strip()
        words = split_words(inner)
        if not words or words[0] != "mk":
            raise ValueError("unexpected gen_cmds entry for %s" % m.group(1))
        getall, _byuuid, record_fn, cli, filters, defaults = words[1:7]
        entry = {
            "module": m.group(1),
            "record_fn": record_fn,
            "cli": ocaml_string(cli[1:-1]),
            "def_filters": [[ocaml_string(a), ocaml_string(b)] for a, b in
                            re.findall(r"\(\s*%s\s*,\s*%s\s*\)" % (STRING_RE, STRING_RE), filters)],
            "list_defaults": [ocaml_string(s) for s in re.findall(STRING_RE, defaults)],
        }
        if getall != "get_all_records_where":
            w = re.search(r"~expr:%s" % STRING_RE, getall)
            if not w:
                raise ValueError("unexpected get_all function for %s" % cli)
            entry["list_where"] = ocaml_string(w.group(1))
        out.append(entry)
    return out


# --------------------------------------------------------------------------
# records.ml
# --------------------------------------------------------------------------
class Record:
    def __init__(self, name, preamble, items):
        self.name, self.preamble, self.items = name, preamble, items


def parse_records(text):
    text = strip_comments(text)
    for m in re.finditer(r"^let (\w+) = %s\s*$" % STRING_RE, text, re.M):
        CONSTS[m.group(1)] = ocaml_string(m.group(2))
    heads = list(re.finditer(r"^let (\w+_record) rpc session_id (\w+) =", text, re.M))
    recs = {}
    for m in heads:
        nxt = re.compile(r"^\S", re.M).search(text, m.end())
        end = nxt.start() if nxt else len(text)
        body = text[m.end():end]
        f = re.search(r"\bfields\s*=\s*\[", body)
        if not f:
            continue
        lb = f.end() - 1
        rb = match_close(body, lb)
        if body[rb + 1:].strip() not in ("}", ""):
            raise ValueError("%s: fields list is not a plain list literal" % m.group(1))
        items = split_top(body[lb + 1:rb])
        for it in items:
            if not it.startswith("make_field"):
                raise ValueError("%s: unexpected fields item %r" % (m.group(1), it[:60]))
        pre = body[:f.start()]
        brace = re.search(r"^  \{", pre, re.M)  # the record literal itself
        recs[m.group(1)] = Record(m.group(1), pre[:brace.start()] if brace else pre, items)
    return recs


def parse_make_field(item):
    """Labelled arguments of one `make_field ... ()` application."""
    s = item[len("make_field"):]
    args, i, n = {}, 0, len(s)
    while i < n:
        if s[i].isspace():
            i += 1
            continue
        m = re.compile(r"~(\w+)(:?)").match(s, i)
        if m:
            label, i = m.group(1), m.end()
            if not m.group(2):
                args[label] = label
                continue
            if s[i] == "(":
                j = match_close(s, i) + 1
            elif s[i] == '"':
                j = _skip_string(s, i)
            else:
                j = i
                while j < n and not s[j].isspace() and s[j] not in "()":
                    j += 1
            args[label] = s[i:j]
            i = j
            continue
        if s.startswith("()", i) and not s[i + 2:].strip():
            break
        raise ValueError("make_field: cannot parse at %r" % s[i:i + 60])
    return args


def fun_body(expr):
    """`(fun a b -> body)` -> (["a", "b"], body)."""
    e = unparen(expr)
    m = re.match(r"fun\s+(.*?)\s*->", e, re.S)
    if not m:
        return [], e
    params = re.findall(r"\(\)|\([^)]*\)|\w+", m.group(1))
    return params, e[m.end():].strip()


# --------------------------------------------------------------------------
# Companion records: `let xm () = lzy_get metrics` etc.
# --------------------------------------------------------------------------
def preamble_bindings(pre):
    """name -> text of each `let name ... = ... in` directly in the preamble."""
    out = {}
    starts = [m for m in re.finditer(r"^  let (\w+)\b", pre, re.M)]
    for k, m in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(pre)
        out[m.group(1)] = pre[m.start():end]
    return out


def find_companions(rec, own_cls, dm):
    """fn name -> via field (a ref field of own_cls), or "" for the record itself."""
    binds = preamble_bindings(rec.preamble)

    def closure(name, seen):
        if name in seen or name not in binds:
            return ""
        seen.add(name)
        t = binds[name]
        body = t.split("=", 1)[1] if "=" in t else t
        extra = "".join(closure(w, seen) for w in set(re.findall(r"\b\w+\b", body)) if w != name)
        return t + extra

    comps = {}
    for name, t in binds.items():
        if not re.search(r"\blzy_get\b|\bxp0\b", t):
            continue
        if re.search(r"lzy_get record\b", t):
            comps[name] = ""
            continue
        full = closure(name, set())
        m = re.search(r"\(x \(\)\)\.(?:API\.)?(\w+)", full)
        if m:
            r = dm.resolve(m.group(1), own_cls)
            if r and r[0] == own_cls:
                comps[name] = r[1]
    return comps


# --------------------------------------------------------------------------
# Getter classification
# --------------------------------------------------------------------------
FIELD_PH = "@F"

# normalised getter text (field reference replaced by @F) -> format
GETTER_SHAPES = [
    (r"@F", "plain"),
    (r"get_uuid_from_ref @F", "uuid"),
    (r"get_uuid_from_ref_or_null @F", "uuid_or_null"),
    (r"get_name_from_ref @F", "name"),
    (r"get_uuids_from_refs @F", "uuids"),
    (r"map_and_concat get_uuid_from_ref @F", "uuids"),
    (r"map_and_concat_compat get_uuid_from_ref @F", "uuids_comma"),
    (r"get_from_map @F", "map"),
    (r"get_uuid_map_from_ref_map @F", "uuid_map"),
    (r"Int64\.to_string @F|@F \|> Int64\.to_string|string_of_int \(Int64\.to_int @F\)", "int"),
    (r"(?:string_of_bool|Bool\.to_string) @F|@F \|> string_of_bool", "bool"),
    (r"string_of_float @F|@F \|> string_of_float", "float"),
    (r"(?P<date>Date\.to_rfc3339|Date\.to_string) @F|@F \|> (?P<date2>Date\.to_rfc3339|Date\.to_string)", "date"),
    (r"Record_util\.(?P<enum>\w+) @F|@F \|> Record_util\.(?P<enum2>\w+)", "enum"),
    (r"concat_with_semi @F|@F \|> concat_with_semi|map_and_concat Fun\.id @F", "set"),
    (r"concat_with_comma @F|@F \|> concat_with_comma", "set_comma"),
    (r"map_and_concat Record_util\.(?P<enum>\w+) @F"
     r"|map_and_concat \(fun \((?:_|\w+), (?P<v>\w+)\) -> Record_util\.(?P<enum2>\w+) (?P=v)\) @F"
     r"|@F \|> map_and_concat Record_util\.(?P<enum3>\w+)", "enum_set"),
    (r"map_and_concat_compat Record_util\.(?P<enum>\w+) @F", "enum_set_comma"),
    (r"map_and_concat Int64\.to_string @F", "int_set"),
    (r"get_from_map \(List\.map \(fun \((?P<k>\w+), (?P<v>\w+)\) -> \(Record_util\.(?P<enum>\w+) (?P=k), (?P=v)\)\) @F\)",
     "enum_key_map"),
]


def _strip_error_wrappers(e):
    e = unparen(e)
    m = re.fullmatch(r"try (.*) with _ -> (nid|\"[^\"]*\")", e)
    if m:
        e = unparen(m.group(1))
    return e


class FieldRefs:
    """Replace field references in a normalised expression by @F."""

    def __init__(self, dm, own_cls, comps, helpers):
        self.dm, self.own, self.comps = dm, own_cls, comps
        self.helpers = helpers  # other preamble bindings: name -> text

    def uses_helper(self, e):
        return [h for h in self.helpers if re.search(r"(?<![\w.~])%s\b" % re.escape(h), e)]

    def target(self, via):
        return self.own if via == "" else self.dm.ref_target(self.own, via)

    def sub(self, e, var_comp=None):
        refs = []

        def repl_call(m):
            fn, fld = m.group(1), m.group(2)
            if fn not in self.comps:
                return m.group(0)
            r = self.dm.resolve(fld, self.target(self.comps[fn]))
            if not r:
                return m.group(0)
            refs.append((r, self.comps[fn]))
            return FIELD_PH

        e = re.sub(r"\((\w+) \(\)\)\.(?:API\.)?(\w+)", repl_call, e)
        if var_comp:
            var, via = var_comp

            def repl_var(m):
                r = self.dm.resolve(m.group(1), self.target(via))
                if not r:
                    return m.group(0)
                refs.append((r, via))
                return FIELD_PH

            e = re.sub(r"\b%s\.(?:API\.)?(\w+)" % re.escape(var), repl_var, e)
        return e, refs


def classify_getter(get_expr, fr):
    """Returns dict with format (+enum_fn/date_fn/missing/note) and refs list."""
    _, body = fun_body(get_expr)
    e = _strip_error_wrappers(norm(body))
    res = {}
    var_comp = None
    m = re.fullmatch(r"Option\.fold ~none:(nid|\"(?:[^\"\\]|\\.)*\"|\w+) ~some:\(fun (\w+) -> (.*)\) \((\w+) \(\)\)", e)
    if m and m.group(4) in fr.comps:
        none = m.group(1)
        res["missing"] = ocaml_string(none[1:-1]) if none.startswith('"') else CONSTS.get(none, none)
        var_comp = (m.group(2), fr.comps[m.group(4)])
        e = unparen(m.group(3))
    e, refs = fr.sub(e, var_comp)
    # spacing-insensitive form for matching; `@F |> f` -> `f @F`
    t = re.sub(r"\s+\)", ")", re.sub(r"\(\s+", "(", e))
    t = re.sub(r"^@F \|> ([\w.]+)$", r"\1 @F", t)
    inline = re.fullmatch(r"match @F with (?:\| )?((?:`\w+ -> %s(?: \| )?)+)" % STRING_RE, t)
    if inline and len(refs) == 1:
        res["format"] = "enum"
        res["inline_enum"] = {c: ocaml_string(v) for c, v in
                              re.findall(r"`(\w+) -> %s" % STRING_RE, inline.group(1))}
    elif FIELD_PH in t and t.count(FIELD_PH) == 1 and "Client." not in t and not fr.uses_helper(t):
        match_shape(t, res)
    elif len(client_calls(t)) == 1 and not fr.uses_helper(t):
        # the rendered value is the result of one API call, e.g.
        # get_uuids_from_refs (Client.VM.get_possible_hosts ~rpc ~session_id ~vm)
        mod, msg = client_calls(t)[0]
        cons = re.fullmatch(r"get_consistent_field_or_default ~rpc ~session_id ~getter:Client\.\w+\.\w+ "
                            r"~transform:([\w.]+) ~default:(\w+)", t)
        if cons:
            if match_shape("%s @F" % cons.group(1), res):
                res["message"] = "%s.%s" % (fr.dm.class_of_module(mod) or mod, msg)
                res["consistent_over_hosts"] = CONSTS.get(cons.group(2), cons.group(2))
        else:
            c = CALL_RE.search(t)
            if c and (c.group(0) == t or (t[c.start() - 1:c.start()] == "(" and t[c.end():c.end() + 1] == ")")):
                u = FIELD_PH if c.group(0) == t else t[:c.start() - 1] + FIELD_PH + t[c.end() + 1:]
                if u.count(FIELD_PH) == 1 and match_shape(u, res):
                    res["message"] = "%s.%s" % (fr.dm.class_of_module(mod) or mod, msg)
                    if c.group(3):
                        fb = c.group(3)
                        res["message_error_value"] = ("" if fb == "[]" else ocaml_string(fb[1:-1])
                                                      if fb.startswith('"') else CONSTS.get(fb, fb))
    if "format" not in res:
        res["format"] = "other"
    return res, refs, e


# one `Client.M.msg ~rpc ~session_id ~a:b ...` call, optionally in try ... with _ -> v
CALL_RE = re.compile(r"(?:try )?Client\.(\w+)\.(\w+)(?: ~\w+(?::(?:[\w.]+|\([^()]*\)))?)*"
                     r"(?: with _ -> (\[\]|\w+|\"[^\"]*\"|true|false))?")


def match_shape(t, res):
    for pat, fmt in GETTER_SHAPES:
        mm = re.fullmatch(pat, t)
        if mm:
            res["format"] = fmt
            g = {k: v for k, v in mm.groupdict().items() if v}
            if fmt == "date":
                res["date_fn"] = g.get("date") or g.get("date2")
            elif "enum" in fmt:
                res["enum_fn"] = [v for k, v in sorted(g.items()) if k.startswith("enum")][0]
            return True
    return False


CONVERSIONS = [
    # (regex over the setter body, set_arg)
    (r"List\.map \(fun \w+ -> Client\.(\w+)\.get_by_uuid[^)]*\) \(get_words|get_by_uuid.*get_words|get_words.*get_by_uuid", "ref_list_by_uuid"),
    (r"(safe_i64_of_string|Int64\.of_string).*get_words|get_words.*(safe_i64_of_string|Int64\.of_string)", "int_list"),
    (r"get_words|String\.split_on_char ','", "string_list"),
    (r"Record_util\.bytes_of_string", "bytes"),
    (r"safe_i64_of_string|Int64\.of_string", "int"),
    (r"safe_bool_of_string|(?:Stdlib\.|Record_util\.)?\bbool_of_string\b", "bool"),
    (r"float_of_string", "float"),
    (r"Record_util\.(\w+_of_string|string_to_\w+)", "enum"),
    (r"Client\.\w+\.get_by_uuid", "ref_by_uuid"),
]

LOOKUP_MSG = re.compile(r"get_by_uuid|get_by_name_label|get_record|get_all\w*|get_\w+")


def client_calls(body):
    return re.findall(r"Client\.(\w+)\.(\w+)", body)


def primary_call(body, dm):
    """The single non-lookup Client message a setter calls, as Class.msg."""
    calls = [(mod, msg) for mod, msg in client_calls(body) if not LOOKUP_MSG.fullmatch(msg)]
    calls = sorted(set(calls))
    if len(calls) != 1:
        return None
    mod, msg = calls[0]
    return "%s.%s" % (dm.class_of_module(mod) or mod, msg)


def classify_arg(fun_expr, dm):
    """How the CLI string argument of a setter is converted."""
    params, body = fun_body(fun_expr)
    b = norm(body)
    out = {}
    for pat, kind in CONVERSIONS:
        m = re.search(pat, b)
        if m:
            out["arg"] = kind
            if kind == "enum":
                out["enum_fn"] = m.group(1)
            if kind in ("ref_by_uuid", "ref_list_by_uuid"):
                c = re.search(r"Client\.(\w+)\.get_by_uuid", b)
                out["ref_class"] = dm.class_of_module(c.group(1)) or c.group(1)
                if re.search(r'if \w+ = "" then .*Ref\.null', b):
                    out["empty_is_null"] = True
            return out
    # plain string: the parameter is passed straight through as ~value
    p = params[-1] if params else None
    if p and re.search(r"(?<![\w.])%s\b(?!:)" % re.escape(p), b):
        out["arg"] = "string"
    else:
        out["arg"] = "other"
    return out


# --------------------------------------------------------------------------
# Overrides: hand fixes where the shape matcher is wrong or too vague.
# (record fn, xe field name) -> keys to replace in the emitted field.
# --------------------------------------------------------------------------
def _ds(cls, name_fmt, on, scale=True):
    return {"format": "float", "note": "%s.query_data_source of data source %s on %s%s; "
            "'<unknown>' on error" % (cls, name_fmt, on, ", divided by 1024" if scale else "")}


_AAG = {"restartHVM": "restartHVM", "restartPV": "restartPV",
        "restartHost": "restartHost", "restartXAPI": "restartXAPI"}

OVERRIDES = {
    ("pif_record", "io_read_kbs"): _ds("host", "'pif_<PIF.device>_rx'", "PIF.host"),
    ("pif_record", "io_write_kbs"): _ds("host", "'pif_<PIF.device>_tx'", "PIF.host"),
    ("vif_record", "io_read_kbs"): _ds("VM", "'vif_<VIF.device>_rx'", "VIF.VM"),
    ("vif_record", "io_write_kbs"): _ds("VM", "'vif_<VIF.device>_tx'", "VIF.VM"),
    ("vbd_record", "io_read_kbs"): _ds("VM", "'vbd_<VBD.device>_read'", "VBD.VM"),
    ("vbd_record", "io_write_kbs"): _ds("VM", "'vbd_<VBD.device>_write'", "VBD.VM"),
    ("host_cpu_record", "utilisation"): _ds("host", "'cpu<host_cpu.number>'", "host_cpu.host", False),
    ("pif_record", "speed"): {"note": "decimal value followed by ' Mbit/s'"},
    ("pif_record", "duplex"): {
        "note": "'full' if PIF_metrics.duplex, else 'half' if PIF_metrics.carrier, else 'unknown'"},
    ("sm_record", "features"): {"format": "map", "note": "int64 values printed in decimal"},
    ("sr_record", "host"): {
        "note": "'<shared>' if SR.PBDs has more than one entry; else the name-label of the "
                "host of its only PBD (PBD.get_host), '<not in database>' when there is none"},
    ("vbd_record", "vdi-name-label"): {
        "note": "'<EMPTY>' if VBD.empty, else the name-label of VBD.VDI"},
    ("vbd_record", "attachable"): {
        "note": "'true' if VBD.assert_attachable succeeds, else 'false (error: <exception>)'"},
    ("vdi_record", "metadata-of-pool"): {
        "note": "uuid of the local pool if VDI.metadata_of_pool is that pool, else "
                "VDI.read_database_pool_uuid ('<not in database>' if it returns '')"},
    ("vgpu_record", "type-model-name"): {
        "format": "plain", "message": "VGPU_type.get_model_name",
        "note": "VGPU_type.get_model_name called on VGPU.type"},
    ("vgpu_record", "compatibility-metadata"): {
        "note": "each entry printed as '<key>:(<byte length of value> bytes)', joined '; '"},
    ("vgpu_type_record", "max-resolution"): {
        "note": "'<max_resolution_x>x<max_resolution_y>' in decimal"},
    ("vm_record", "memory-target"): {
        "format": "int",
        "note": "VM.query_data_source 'memory_target' truncated to int64; 0 if that fails with "
                "VM_BAD_POWER_STATE, '<unknown>' on other errors"},
    ("vm_record", "numa-node-memory"): {
        "format": "map", "note": "int64 keys and values printed in decimal"},
    ("vm_record", "last-boot-record"): {"note": "the value wrapped in single quotes"},
    ("vm_record", "VCPUs-utilisation"): {
        "format": "map",
        "note": "keys 0..VM_metrics.VCPUs_number-1, values VM.query_data_source 'cpu<n>' "
                "(%.3f); empty on error"},
    ("vtpm_record", "secret"): {
        "note": "'MD5=<hex md5 of VTPM.get_contents> size=<its length> bytes'"},
    ("host_record", "patches"): {
        "format": "uuids_comma",
        "note": "for each of host.patches, the uuid of its host_patch.pool_patch "
                "(host_patch.get_pool_patch, pool_patch.get_uuid)"},
    ("host_record", "updates"): {
        "format": "uuids_comma", "source": {"class": "host", "field": "updates"},
        "note": "uuids looked up with pool_update.get_uuid"},
    ("host_record", "ha-statefiles"): {
        "format": "uuids", "note": "elements are reference strings; each printed as its uuid"},
    ("pool_record", "ha-statefiles"): {
        "format": "uuids", "note": "elements are reference strings; each printed as its uuid"},
    ("pool_record", "vswitch-controller"): {"note": "'<not set>' when empty, else the value"},
    ("pool_record", "https-only"): {
        "format": "bool", "note": "true iff host.get_https_only is true on every host"},
    ("pool_patch_record", "hosts"): {
        "format": "uuids_comma",
        "note": "for each of pool_patch.host_patches, the uuid of its host_patch.host "
                "(host_patch.get_host, host.get_uuid)"},
    ("pool_update_record", "hosts"): {
        "format": "uuids_comma", "source": {"class": "pool_update", "field": "hosts"},
        "note": "uuids looked up with host.get_uuid"},
    ("pool_patch_record", "after-apply-guidance"): {
        "format": "enum_set_comma",
        "source": {"class": "pool_patch", "field": "after_apply_guidance"},
        "_inline_enum": _AAG},
    ("pool_update_record", "after-apply-guidance"): {
        "format": "enum_set_comma",
        "source": {"class": "pool_update", "field": "after_apply_guidance"},
        "_inline_enum": _AAG},
    ("subject_record", "roles"): {
        "format": "set", "message": "subject.get_roles",
        "note": "each role printed by its name (role.get_name_label, '<not in database>' on "
                "error); empty on error"},
    ("vmss_record", "VMs"): {
        "format": "uuids", "message": "VMSS.get_VMs",
        "note": "uuids looked up with VM.get_uuid; empty on error"},
    ("pgpu_record", "dependencies"): {
        "note": "pci_id of each PCI in PCI.dependencies of the PGPU's PCI, joined '; '"},
    ("pci_record", "dependencies"): {
        "note": "pci_id of each PCI in PCI.dependencies, joined '; '"},
}

USED_OVERRIDES = set()

# `match field with `A -> "a" | ...` written inline in a getter, registered in
# enum_strings as "inline:<Class>.<field>".
INLINE_TABLES = {}


def calls_in(e, fr, seen=None):
    """Client messages called by e, including through preamble helpers."""
    seen = set() if seen is None else seen
    calls = set("%s.%s" % (fr.dm.class_of_module(m) or m, msg) for m, msg in client_calls(e))
    for h in fr.uses_helper(e):
        if h not in seen:
            seen.add(h)
            calls |= calls_in(norm(fr.helpers[h]), fr, seen)
    return calls


def auto_note(e, refs, fr):
    calls = sorted(calls_in(e, fr))
    fields = sorted(set("%s.%s" % r for r, _ in refs))
    parts = []
    if calls:
        parts.append("calls " + ", ".join(calls))
    if len(fields) > 1 or (fields and calls):
        parts.append("reads " + ", ".join(fields))
    return "; ".join(parts) if parts else "computed by the CLI"


# --------------------------------------------------------------------------
# Building the output
# --------------------------------------------------------------------------
ACCESSORS = ["add_to_set", "remove_from_set", "add_to_map", "remove_from_map",
             "set_in_map", "set_map", "clear_map"]


def kind_of(args):
    if "get_set" in args:
        return "SRW" if "add_to_set" in args else "SRO"
    if "get_map" in args:
        return "MRW" if "add_to_map" in args else "MRO"
    return "RW" if "set" in args else "RO"


def flag(args, name):
    v = args.get(name)
    if v is None:
        return False
    if v not in ("true", "false"):
        raise ValueError("non-literal ~%s:%s" % (name, v))
    return v == "true"


def build_field(rec, args, own_cls, comps, dm, used_enum_fns):
    name = ocaml_string(args["name"][1:-1])
    helpers = {k: v for k, v in preamble_bindings(rec.preamble).items() if k not in comps}
    fr = FieldRefs(dm, own_cls, comps, helpers)
    g, refs, e = classify_getter(args["get"], fr)
    f = {
        "name": name,
        "kind": kind_of(args),
        "hidden": flag(args, "hidden"),
        "expensive": flag(args, "expensive"),
        "deprecated": flag(args, "deprecated"),
        "case_insensitive": flag(args, "case_insensitive"),
    }
    inline = g.pop("inline_enum", None)
    f.update(g)
    distinct = sorted(set((r, via) for r, via in refs))
    src = None
    if len(distinct) == 1 and not calls_in(e, fr):
        (cls, field), via = distinct[0]
        src = {"class": cls, "field": field}
        if via:
            src["via"] = via
        if field not in dm.classes.get(cls, {}):
            src["in_datamodel"] = False
    f["source"] = src
    if inline is not None:
        if src is None:
            raise ValueError("%s %s: inline enum match without a source" % (rec.name, name))
        f["enum_fn"] = "inline:%s.%s" % (src["class"], src["field"])
        INLINE_TABLES[f["enum_fn"]] = inline
    if f["format"] == "other":
        f["note"] = auto_note(e, refs, fr)
    # setter
    f["set"] = None
    f["set_arg"] = None
    if "set" in args:
        _, body = fun_body(args["set"])
        f["set"] = primary_call(body, dm)
        a = classify_arg(args["set"], dm)
        f["set_arg"] = a["arg"]
        if "enum_fn" in a:
            f["set_enum_fn"] = a["enum_fn"]
        if "ref_class" in a:
            f["set_ref_class"] = a["ref_class"]
        if a.get("empty_is_null"):
            f["set_empty_is_null"] = True
        if f["set"] is None:
            f["set_note"] = "setter calls %s" % (", ".join(sorted(set(
                "%s.%s" % c for c in client_calls(norm(body))))) or "no API message directly")
    for acc in ACCESSORS:
        f[acc] = None
        if acc in args:
            _, body = fun_body(args[acc])
            f[acc] = primary_call(body, dm)
            reads = sorted(set("%s.%s" % (dm.class_of_module(m) or m, msg)
                               for m, msg in client_calls(norm(body))
                               if LOOKUP_MSG.fullmatch(msg) and msg != "get_by_uuid"))
            if f[acc] and reads:
                f.setdefault("accessor_notes", {})[acc] = (
                    "read-modify-write: reads %s, then calls %s" % (", ".join(reads), f[acc]))
            if f[acc] is None:
                f.setdefault("accessor_notes", {})[acc] = "calls %s" % (", ".join(sorted(set(
                    "%s.%s" % c for c in client_calls(norm(body))))) or "no API message directly")
    if "add_to_set" in args:
        a = classify_arg(args["add_to_set"], dm)
        if a["arg"] != "string":
            f["elem_arg"] = a["arg"]
            if "enum_fn" in a:
                f["elem_enum_fn"] = a["enum_fn"]
            if "ref_class" in a:
                f["elem_ref_class"] = a["ref_class"]
    if "add_to_map" in args:
        _, body = fun_body(args["add_to_map"])
        m = re.search(r"~key:\(?Record_util\.(\w+)", norm(body))
        if m:
            f["map_key_enum_fn"] = m.group(1)
    ov = dict(OVERRIDES.get((rec.name, name), {}))
    if ov:
        USED_OVERRIDES.add((rec.name, name))
        inline = ov.pop("_inline_enum", None)
        f.update(ov)
        if inline is not None:
            f["enum_fn"] = "inline:%s.%s" % (f["source"]["class"], f["source"]["field"])
            INLINE_TABLES[f["enum_fn"]] = inline
        if f["format"] != "other" and "note" in f and ("note" not in ov):
            del f["note"]
    # collect enum functions whose tables we emit
    src = f["source"]
    if f.get("enum_fn") and src:
        used_enum_fns.setdefault(f["enum_fn"], set()).add((src["class"], src["field"]))
    return f


def build_classes(cli_ops, records, dm):
    cmds = parse_gen_cmds(cli_ops)
    recs = parse_records(records)
    classes, skipped, used = {}, [], {}
    for c in cmds:
        cls = dm.class_of_module(c["module"])
        if cls is None:
            skipped.append(c["module"])
            continue
        view = {k: c[k] for k in ("cli", "list_defaults", "def_filters")}
        if "list_where" in c:
            view["list_where"] = c["list_where"]
        if cls in classes:
            if classes[cls]["record_fn"] != c["record_fn"]:
                raise ValueError("%s: two record functions" % cls)
            classes[cls].setdefault("other_cli", []).append(view)
            continue
        rec = recs[c["record_fn"]]
        comps = find_companions(rec, cls, dm)
        fields = [build_field(rec, parse_make_field(it), cls, comps, dm, used) for it in rec.items]
        entry = dict(view)
        entry["record_fn"] = c["record_fn"]
        entry["fields"] = fields
        classes[cls] = entry
    unused = set(OVERRIDES) - USED_OVERRIDES
    if unused:  # e.g. when run against an older revision
        sys.stderr.write("warning: overrides that matched no field: %r\n" % sorted(unused))
    return classes, sorted(set(skipped)), used


# --------------------------------------------------------------------------
# record_util.ml: enum -> string tables
# --------------------------------------------------------------------------
def constructor_of(value):
    """ocaml_utils.ml constructor_of, without the backquote."""
    keywords = {"mod", "type", "class", "ref", "and"}
    pre = "_" if value in keywords or value[0].isdigit() else ""
    return pre + re.sub(r"[^A-Za-z0-9_]", "", value)


def enum_of_type(ty):
    """The enum a field of this datamodel type carries (element/value/key)."""
    m = re.search(r"enum (\w+)", ty or "")
    return m.group(1) if m else None


def parse_record_util(text):
    """name -> ("table", {constructor: string}, default) | ("alias", fn, post)."""
    text = strip_comments(text)
    defs = {}
    tables = {}
    for m in re.finditer(r"^let (\w+)\b(.*?)(?=^\S)", text, re.M | re.S):
        name, body = m.group(1), m.group(2)
        pairs = re.findall(r"\(\s*`(\w+)\s*,\s*%s\s*\)" % STRING_RE, body)
        if name.endswith("_table") and pairs:
            tables[name] = {k: ocaml_string(v) for k, v in pairs}
            continue
        if not name.endswith("_to_string") and not name.endswith("_to_lowercase_string"):
            continue
        b = norm(body)
        arms = re.findall(r"`(\w+)(?: \| `\w+)* -> %s" % STRING_RE, b)
        if arms:
            # or-patterns map several constructors to one string
            table = {}
            for arm in re.finditer(r"((?:`\w+ ?\| ?)*`\w+) -> %s" % STRING_RE, b):
                for ctor in re.findall(r"`(\w+)", arm.group(1)):
                    table[ctor] = ocaml_string(arm.group(2))
            dflt = re.search(r"\| _ -> %s" % STRING_RE, b)
            defs[name] = ("table", table, ocaml_string(dflt.group(1)) if dflt else None)
            continue
        t = re.search(r"List\.assoc \w+ (\w+_table)", b)
        if t and t.group(1) in tables:
            dflt = re.search(r"then %s" % STRING_RE, b)
            defs[name] = ("table", tables[t.group(1)], ocaml_string(dflt.group(1)) if dflt else None)
            continue
        a = re.fullmatch(r"(?:\w+ )?= (\w+) \w+ \|> String\.uncapitalize_ascii", b)
        if a:
            defs[name] = ("alias", a.group(1), "uncapitalize")
            continue
        a = re.fullmatch(r"\w+ = (\w+_to_string) \w+", b)
        if a:
            defs[name] = ("alias", a.group(1), None)
            continue
        a = re.fullmatch(r"\w+ = API\.rpc_of_(\w+) \w+ \|> to_str", b)
        if a:
            defs[name] = ("rpc", a.group(1), None)
            continue
        defs[name] = ("unknown", None, None)
    return defs


def enum_table(fn, enum, defs, dm):
    """{datamodel value: printed string} for one Record_util function."""
    values = dm.enums.get(enum)
    if values is None:
        raise ValueError("%s: no enum %s in the datamodel" % (fn, enum))
    by_ctor = {constructor_of(v): v for v in values}
    d = ("table", INLINE_TABLES[fn], None) if fn in INLINE_TABLES else defs.get(fn)
    out = {"enum": enum}
    if d is None or d[0] == "rpc":
        if d is None and fn != enum + "_to_string":
            # generated for another enum (reached through an alias): the
            # polymorphic variants must be the same
            other = dm.enums.get(fn[:-len("_to_string")], [])
            if not set(values) <= set(other):
                raise ValueError("%s: not in record_util.ml and not named after enum %s" % (fn, enum))
        # generated by gen_api.ml (or the rpc marshaller): the value name itself
        out["map"] = {v: v for v in values}
        out["how"] = "generated" if d is None else "rpc"
        return out
    kind, arg, extra = d
    if kind == "alias":
        sub = enum_table(arg, enum, defs, dm)
        mp = sub["map"]
        if extra == "uncapitalize":
            mp = {k: (v[:1].lower() + v[1:]) for k, v in mp.items()}
        out["map"] = mp
        out["how"] = "%s of %s" % (extra or "same as", arg) if extra else "same as %s" % arg
        for k in ("default", "unknown_constructors", "unmapped"):
            if k in sub:
                out[k] = sub[k]
        return out
    if kind == "table":
        mp, extra_ctors = {}, {}
        for ctor, s in arg.items():
            if ctor in by_ctor:
                mp[by_ctor[ctor]] = s
            else:
                extra_ctors[ctor] = s
        out["map"] = mp
        out["how"] = "inline" if fn in INLINE_TABLES else "hand-written"
        if extra:
            out["default"] = extra
        if extra_ctors:
            out["unknown_constructors"] = extra_ctors
        unmapped = [v for v in values if v not in mp]
        if unmapped:
            out["unmapped"] = unmapped
        return out
    raise ValueError("%s: unrecognised definition in record_util.ml" % fn)


def build_enum_strings(used, record_util, dm):
    defs = parse_record_util(record_util)
    out, skipped = {}, []
    for fn, srcs in sorted(used.items()):
        enums = sorted(set(filter(None, (enum_of_type(dm.field_type(c, f)) for c, f in srcs))))
        if not enums:
            # only used on fields newer than the datamodel: guess from the name
            guess = re.sub(r"_to(_lowercase)?_string$", "", fn)
            enums = [guess] if guess in dm.enums else []
        if len(enums) > 1:
            raise ValueError("%s: used for enums %r" % (fn, enums))
        if not enums:
            skipped.append(fn)
            continue
        out[fn] = enum_table(fn, enums[0], defs, dm)
    return out, skipped


# --------------------------------------------------------------------------
def main(argv):
    args, rev, dm_path, report = [], None, DEFAULT_DM, False
    it = iter(argv[1:])
    for a in it:
        if a == "--rev":
            rev = next(it)
        elif a == "--datamodel":
            dm_path = next(it)
        elif a == "--report":
            report = True
        else:
            args.append(a)
    if not args:
        usage = [b for b in __doc__.split("\n\n") if b.startswith("Usage:")]
        sys.stderr.write((usage[0] if usage else "Usage: xe_records.py XAPI_DIR [OUT]") + "\n")
        return 2
    src = Source(args[0], rev)
    out_path = args[1] if len(args) > 1 else DEFAULT_OUT
    dm = Datamodel(dm_path)
    classes, skipped, used = build_classes(src.read(CLI_OPS), src.read(RECORDS), dm)
    enum_strings, enum_skipped = build_enum_strings(used, src.read(RECORD_UTIL), dm)
    # also the enum functions used only for setters' element/key conversions are
    # not emitted: their inverse (of_string) accepts the lowercase value names.
    result = {
        "_source": SOURCE_NOTE,
        "_revision": src.revision() if not src.use_files else None,
        "_not_in_datamodel": skipped,
        "_enum_fns_not_in_datamodel": enum_skipped,
        "classes": classes,
        "enum_strings": enum_strings,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    if report:
        for cls, c in sorted(classes.items()):
            bad = [x["name"] + ("(other)" if x["format"] == "other" else "")
                   for x in c["fields"] if x["source"] is None or x["format"] == "other"]
            if bad:
                print("%s: %s" % (cls, ", ".join(bad)))
    nf = sum(len(c["fields"]) for c in classes.values())
    nn = sum(1 for c in classes.values() for x in c["fields"] if x["source"] is None)
    print("wrote %s: %d classes, %d fields, %d without source, %d enum tables"
          % (out_path, len(classes), nf, nn, len(enum_strings)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
