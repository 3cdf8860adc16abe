#!/usr/bin/env python3
"""Regenerates schema/xenapi.json from the reference datamodel.

This script is a one-off tool: it reads the reference datamodel and error list
(paths given on the command line) plus the facts in schema/facts/, and writes
the project's own schema format. Nothing in the build, the tests or the server
runs it; once written, schema/xenapi.json is the source of truth.

Only interface facts are kept (names, types, qualifiers, defaults, roles,
declared errors, error parameter names). Description text is dropped.

Usage: generate.py DATAMODEL.json ERRORS.json > schema/xenapi.json
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FACTS = os.path.join(HERE, "..", "facts")

QUALIFIERS = {"RW": "rw", "RO/constructor": "ro_constructor", "RO/runtime": "ro_runtime"}

# Parameters with a default value in xapi's IDL (they may be omitted by callers).
# The datamodel export does not carry these, so they are listed by hand, from
# ocaml/idl/datamodel.ml (session.login_with_password: version="1.1", originator="").
PARAM_DEFAULTS = {
    ("session", "login_with_password", "version"): "1.1",
    ("session", "login_with_password", "originator"): "",
}


def load_fact(name, default):
    path = os.path.join(FACTS, name)
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def split_top(s, sep):
    """Splits s on sep at parenthesis depth 0."""
    parts, depth, cur = [], 0, ""
    i = 0
    while i < len(s):
        if s[i] == "(":
            depth += 1
        elif s[i] == ")":
            depth -= 1
        if depth == 0 and s.startswith(sep, i):
            parts.append(cur)
            cur = ""
            i += len(sep)
            continue
        cur += s[i]
        i += 1
    parts.append(cur)
    return parts


def strip_parens(t):
    t = t.strip()
    if t.startswith("(") and t.endswith(")"):
        depth = 0
        for i, ch in enumerate(t):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i != len(t) - 1:
                return t
        return t[1:-1].strip()
    return t


def elem_type(t):
    """Element type of a 'X set' or value type of a map, as a string."""
    t = t.strip()
    if t.endswith(" set"):
        return t[: -len(" set")]
    raise ValueError(t)


def typed_default(ty, text):
    """Converts the datamodel's OCaml-ish default text into typed JSON."""
    ty = ty.strip()
    if ty.endswith(" map"):
        body = text.strip()
        assert body.startswith("{") and body.endswith("}"), text
        body = body[1:-1].strip()
        if not body:
            return []
        kt, vt = [strip_parens(x) for x in split_top(strip_parens(ty[: -len(" map")]), "->")]
        pairs = []
        for item in body.split(","):
            k, v = [x.strip() for x in item.split("->")]
            pairs.append([typed_default(kt, k), typed_default(vt, v)])
        return pairs
    if ty.endswith(" set"):
        body = text.strip()
        assert body.startswith("{") and body.endswith("}"), text
        body = body[1:-1].strip()
        if not body:
            return []
        et = elem_type(ty)
        return [typed_default(et, x.strip()) for x in body.split(",")]
    if ty == "string":
        if text.startswith('"') and text.endswith('"'):
            return text[1:-1]
        return text
    if ty == "int":
        return int(text.strip('"'))
    if ty == "float":
        return float(text.strip('"'))
    if ty == "bool":
        return text.strip('"') == "true"
    if ty.endswith(" ref"):
        return "OpaqueRef:NULL" if text in ("Null", "OpaqueRef:NULL") else text
    return text.strip('"')


def newest_release(classes):
    order = []
    for c in classes:
        for t in c.get("lifecycle", {}).get("transitions", []):
            order.append(t["release"])
    return order


def main():
    datamodel = json.load(open(sys.argv[1]))
    errors = json.load(open(sys.argv[2]))
    no_async = load_fact("no_async.json", {})
    relations = load_fact("relations.json", [])
    # Classes all of whose messages lack an Async variant (datamodel.ml `no_async_messages_for`).
    no_async_classes = {"session", "event", "task", "data_source", "blob"}
    version = load_fact("version.json", {})

    fields_of = {c["name"]: {f["name"] for f in c["fields"]} for c in datamodel}

    def known(pair):
        return pair[0] in fields_of and pair[1] in fields_of[pair[0]]

    kept = []
    for r in relations:
        pairs = r["many_to_many"] if "many_to_many" in r else [r["one"], r["many"]]
        # Self-pairs (subject.roles, role.subroles) name one field twice: nothing to keep in step.
        if all(known(p) for p in pairs) and pairs[0] != pairs[1]:
            kept.append(r)
    relations = kept

    enums = {}
    classes = []
    for c in datamodel:
        fields = []
        for f in c["fields"]:
            out = {"name": f["name"], "type": f["type"], "qual": QUALIFIERS[f["qualifier"]]}
            if "default" in f:
                out["default"] = typed_default(f["type"], f["default"])
            fields.append(out)
        messages = []
        for m in c["messages"]:
            params = []
            for p in m["params"]:
                out = {"name": p["name"], "type": p["type"]}
                key = (c["name"], m["name"], p["name"])
                if key in PARAM_DEFAULTS:
                    out["default"] = PARAM_DEFAULTS[key]
                params.append(out)
            implicit = bool(m.get("implicit"))
            if implicit:
                is_async = m["name"] in ("create", "destroy")
            else:
                is_async = (c["name"] not in no_async_classes
                            and m["name"] not in no_async.get(c["name"], []))
            messages.append({
                "name": m["name"],
                "params": params,
                "result": m["result"][0],
                "errors": [e["name"] for e in m["errors"]],
                "roles": m["roles"],
                "implicit": implicit,
                "async": is_async,
            })
        for e in c.get("enums", []):
            enums[e["name"]] = [v["name"] for v in e["values"]]
        classes.append({"name": c["name"], "fields": fields, "messages": messages})

    release = None
    for c in datamodel:
        for f in c["fields"] + c["messages"] + [c]:
            for t in f.get("lifecycle", {}).get("transitions", []):
                r = t["release"]
                if re.match(r"^\d+\.\d+\.\d+$", r) and (release is None or
                        tuple(map(int, r.split("."))) > tuple(map(int, release.split(".")))):
                    release = r

    out = {
        "format": 1,
        "api_release": release,
        "api_version": version,
        "classes": classes,
        "enums": dict(sorted(enums.items())),
        "relations": relations,
        "errors": {e["name"]: e["params"] for e in sorted(errors, key=lambda e: e["name"])},
    }
    write_compact(out, sys.stdout)


def write_compact(out, w):
    """One JSON object per line for fields, messages, enums and errors, so diffs stay readable."""
    d = lambda v: json.dumps(v, separators=(",", ":"))
    w.write("{\n")
    for key in ("format", "api_release", "api_version"):
        w.write(f" {d(key)}: {d(out[key])},\n")
    w.write(' "classes": [\n')
    for i, c in enumerate(out["classes"]):
        w.write(f'  {{"name": {d(c["name"])},\n   "fields": [\n')
        w.write(",\n".join("    " + d(f) for f in c["fields"]))
        w.write('\n   ],\n   "messages": [\n')
        w.write(",\n".join("    " + d(m) for m in c["messages"]))
        w.write("\n   ]}" + ("," if i + 1 < len(out["classes"]) else "") + "\n")
    w.write(" ],\n")
    for key in ("enums", "errors"):
        w.write(f' {d(key)}: {{\n')
        w.write(",\n".join(f"  {d(k)}: {d(v)}" for k, v in out[key].items()))
        w.write("\n },\n")
    w.write(' "relations": [\n')
    w.write(",\n".join("  " + d(r) for r in out["relations"]))
    w.write("\n ]\n}\n")


if __name__ == "__main__":
    main()
