#!/usr/bin/env python3
"""Extracts the RBAC permissions of xapi's HTTP handlers and its extra permissions, which
together with the messages' own make up the static `role` records (ocaml/idl/datamodel.ml
`http_actions` and `extra_permissions`; ocaml/idl/ocaml_backend/gen_rbac.ml).

Each HTTP action `name` is the permission `http/name` (and `http/name/sub` for each of its
sub-actions), held by the roles of its `_R_…` expression. Writes schema/facts/http_permissions.json:
{"_source": …, "permissions": [{"permission": …, "roles": […]}, …]} in the source's order.

Usage: http_permissions.py DATAMODEL_ML [OUT]
  (DATAMODEL_ML: ocaml/idl/datamodel.ml of an xapi checkout, e.g. extracted with
  `git show HEAD:ocaml/idl/datamodel.ml`.)
"""
import json
import os
import re
import sys

ROLES = ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"]
GTE = {
    "_R_POOL_ADMIN": "pool-admin", "_R_POOL_OP": "pool-operator", "_R_VM_POWER_ADMIN": "vm-power-admin",
    "_R_VM_ADMIN": "vm-admin", "_R_VM_OP": "vm-operator", "_R_READ_ONLY": "read-only", "_R_ALL": "read-only",
}


def roles_of(expr):
    out = []
    for macro in re.findall(r"_R_[A-Z_]+", expr):
        if macro in GTE:
            out += ROLES[: ROLES.index(GTE[macro]) + 1]
        elif macro == "_R_CLIENT_CERT":
            out.append("client-cert")
        elif macro != "_R_LOCAL_ROOT_ONLY":
            sys.exit("unknown role macro %s" % macro)
    return list(dict.fromkeys(out))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    source = open(sys.argv[1]).read()
    source = re.sub(r"\(\*.*?\*\)", "", source, flags=re.S)
    block = source[source.index("let http_actions ="):]
    block = block[: block.index("\nlet ", 1)]
    permissions = []
    # Each action: ("name", (Method, uri, sdk, [args], ROLES, [("sub", ROLES); …]))
    entry = re.compile(r'\(\s*"(\w+)"\s*,\s*\(\s*(Get|Put|Post|Connect|Options)\b(.*?)\)\s*\)\s*(?:;|\])', re.S)
    for m in entry.finditer(block):
        name, body = m.group(1), m.group(3)
        args_end = body.rindex("]") if body.rstrip().endswith("]") else len(body)
        subs_start = body.rfind("[", 0, args_end + 1)
        subs = body[subs_start:] if body.rstrip().endswith("]") else ""
        head = body[:subs_start] if subs else body
        role_expr = head[head.rindex("]") + 1:] if "]" in head else head
        permissions.append({"permission": "http/" + name, "roles": roles_of(role_expr)})
        for sub, expr in re.findall(r'\(\s*"(\w+)"\s*,\s*(_R_[A-Z_]+(?:\s*\+\+\s*_R_[A-Z_]+)*)\s*\)', subs):
            permissions.append({"permission": "http/%s/%s" % (name, sub), "roles": roles_of(expr)})
    extra = source[source.index("let extra_permissions ="):]
    extra = extra[: extra.index("]") + 1]
    # The one extra permission: `Task.extra_permission_task_destroy_any` is "task.destroy/any".
    for expr in re.findall(r"\(\s*Task\.extra_permission_task_destroy_any\s*,\s*(_R_[A-Z_]+)\s*\)", extra):
        permissions.append({"permission": "task.destroy/any", "roles": roles_of(expr)})
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "facts", "http_permissions.json")
    facts = {"_source": "xapi ocaml/idl/datamodel.ml http_actions and extra_permissions", "permissions": permissions}
    with open(out, "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")
    print("%d permissions" % len(permissions))


if __name__ == "__main__":
    main()
