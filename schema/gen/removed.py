#!/usr/bin/env python3
"""Lists the messages the datamodel marks as removed (lifecycle state `Removed_s`), so that the
server answers them as xapi's generated server does: `MESSAGE_REMOVED []` once the session is
checked (ocaml/idl/ocaml_backend/gen_server.ml).

Reads the machine-readable datamodel export (the same input as generate.py: a JSON list of
classes, each with `messages` carrying `lifecycle.state`) and writes
schema/facts/removed.json: {"_source": ..., "messages": ["Class.message", ...]} (sorted).
Only names are kept.

Usage: removed.py DATAMODEL_JSON [OUT]
"""
import json
import os
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    classes = json.load(open(sys.argv[1]))
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "facts", "removed.json")
    removed = sorted(
        "%s.%s" % (c["name"], m["name"])
        for c in classes
        for m in c.get("messages", [])
        if m.get("lifecycle", {}).get("state") == "Removed_s"
    )
    facts = {"_source": "datamodel export: messages whose lifecycle state is Removed_s", "messages": removed}
    with open(out, "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")
    print("%d removed messages -> %s" % (len(removed), out))


if __name__ == "__main__":
    main()
