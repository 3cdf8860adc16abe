#!/usr/bin/env python3
"""Regenerates schema/facts/templates.json from guest-templates-json data.

Reads the template JSON files of github.com/xenserver/guest-templates-json
(its `json/` directory; the project studied commit 5ee6322d) and writes one
record per default template, with every field already in final XenAPI form.
Nothing in the build, the tests or the server runs this script; the generated
file is committed and is the source of truth at runtime.

The resolution rules mirror what the upstream loader (`guesttemplates/
blank_template.py`, `guesttemplates/loader.py`) and xapi do to these files;
docs/templates.md lists each rule and its source.

Usage: templates.py TEMPLATES_DIR [OUTPUT]
  TEMPLATES_DIR  a checkout's `json/` directory of guest-templates-json
  OUTPUT         default: schema/facts/templates.json (in this repo)
"""
import json
import os
import re
import sys
from xml.dom import minidom

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "schema", "facts", "templates.json")

EXPECTED_COUNT = 49
MUST_HAVE = "Debian Bookworm 12"

SHIFTS = {"k": 10, "m": 20, "g": 30, "t": 40}

# Platform flags given as top-level booleans, with their default and the
# strings written for true / false.
PLATFORM_FLAGS = (
    ("nx", "true", "false"),
    ("acpi", "1", "0"),
    ("apic", "true", "false"),
    ("pae", "true", "false"),
    ("hpet", "true", "false"),
    ("secureboot", "true", "false"),
)

# String fields that a root template resets to "" and any template may set.
STRING_FIELDS = ("HVM_boot_policy", "PV_bootloader", "PV_kernel", "PV_ramdisk",
                 "PV_args", "PV_bootloader_args", "PV_legacy_args")

# Plain VM fields copied as given when a template file names them.
COPIED_FIELDS = ("uuid", "reference_label", "name_label", "name_description",
                 "VCPUs_max", "VCPUs_at_startup", "domain_type",
                 "hardware_platform_version", "blocked_operations")

# Recommendations: (json key, restriction field, XML attribute, kind).
RESTRICTION_FIELDS = (
    ("max_memory", "memory-static-max", "max", "amount"),
    ("vcpus_min", "vcpus-min", "min", "int"),
    ("vcpus_max", "vcpus-max", "max", "int"),
    ("has_vendor_device", "has-vendor-device", "value", "truefalse"),
    ("allow_gpu_passthrough", "allow-gpu-passthrough", "value", "10"),
    ("allow_vgpu", "allow-vgpu", "value", "10"),
    ("allow_network_sriov", "allow-network-sriov", "value", "10"),
    ("supports_bios", "supports-bios", "value", "yesno"),
    ("supports_uefi", "supports-uefi", "value", "yesno"),
    ("supports_secure_boot", "supports-secure-boot", "value", "yesno"),
)
RESTRICTION_PROPERTIES = (("number_of_vbds", "number-of-vbds"),
                          ("number_of_vifs", "number-of-vifs"))


def amount(text):
    """'512M' -> bytes. Suffixes K/M/G/T (either case) are powers of 1024."""
    m = re.fullmatch(r"(\d+)([KkMmGgTt])?", str(text))
    if not m:
        raise ValueError("bad amount: %r" % (text,))
    n = int(m.group(1))
    return n << SHIFTS[m.group(2).lower()] if m.group(2) else n


def flag(value):
    """Truth of a JSON boolean or of a string such as 'yes' / 'true' / '1'."""
    if isinstance(value, str):
        return value.lower() in ("t", "true", "y", "yes", "1")
    return bool(value)


def disks_xml(disks):
    doc = minidom.Document()
    root = doc.createElement("provision")
    for position, d in enumerate(disks):
        e = doc.createElement("disk")
        e.setAttribute("device", str(position))
        e.setAttribute("size", str(amount(d["size"])))
        e.setAttribute("sr", d.get("sr", ""))
        e.setAttribute("bootable", "true" if flag(d.get("bootable", True)) else "false")
        e.setAttribute("type", d.get("type", "system"))
        root.appendChild(e)
    return root.toxml()


def recommendation_value(kind, value):
    if kind == "amount":
        return str(amount(value))
    if kind == "int":
        return str(value)
    if kind == "truefalse":
        return "true" if flag(value) else "false"
    if kind == "10":
        return "1" if flag(value) else "0"
    return "yes" if flag(value) else "no"


def recommendations_xml(rec):
    doc = minidom.Document()
    root = doc.createElement("restrictions")
    for key, field, attr, _ in RESTRICTION_FIELDS:
        if key in rec:
            e = doc.createElement("restriction")
            e.setAttribute("field", field)
            e.setAttribute(attr, rec[key])
            root.appendChild(e)
    for key, prop in RESTRICTION_PROPERTIES:
        e = doc.createElement("restriction")
        e.setAttribute("property", prop)
        e.setAttribute("max", rec.get(key, ""))
        root.appendChild(e)
    return root.toxml()


def apply(state, data, root):
    """Overlays one template file on the accumulated state (root: no parent)."""
    for k in COPIED_FIELDS:
        if k in data:
            state[k] = data[k]
    for k in STRING_FIELDS:
        if root or k in data:
            state[k] = data.get(k, "")
    if root or "HVM_boot_params" in data:
        # Replaced as a whole, not merged.
        state["HVM_boot_params"] = dict(data.get("HVM_boot_params", {}))
    if "min_memory" in data:
        smin = amount(data["min_memory"])
        state["memory_static_min"] = smin
        state["memory_static_max"] = 2 * smin
        state["memory_dynamic_min"] = 2 * smin
        state["memory_dynamic_max"] = 2 * smin

    platform = state["platform"]
    for k, yes, no in PLATFORM_FLAGS:
        if root or k in data:
            platform[k] = yes if flag(data.get(k, True)) else no
    platform.update(data.get("platform", {}))

    other = state["other_config"]
    if "disks" in data:
        other["disks"] = disks_xml(data["disks"])
    other.update(data.get("other_config", {}))

    rec = state["recommendations"]
    for key, _, _, kind in RESTRICTION_FIELDS:
        if key in data:
            rec[key] = recommendation_value(kind, data[key])
        elif root and key == "has_vendor_device":
            rec[key] = "false"
    for key, _ in RESTRICTION_PROPERTIES:
        if key in data:
            rec[key] = str(data[key])
    if flag(rec.get("supports_uefi", "no")) and data.get("platform", {}).get("device_model"):
        raise ValueError("device_model together with supports_uefi")


def clean_map(m, what, name):
    """Drops null / empty values (they are not written to the record)."""
    out = {}
    for k, v in m.items():
        if v is None or v == "":
            continue
        if not isinstance(v, str):
            raise ValueError("%s: %s[%s] is not a string: %r" % (name, what, k, v))
        out[k] = v
    return out


def resolve(files, fname, seen=()):
    if fname in seen:
        raise ValueError("derived_from cycle at " + fname)
    data = files[fname]
    if "derived_from" in data:
        state = resolve(files, data["derived_from"], seen + (fname,))
        apply(state, data, root=False)
    else:
        state = {"platform": {}, "other_config": {}, "recommendations": {},
                 "VCPUs_max": 1, "VCPUs_at_startup": 1}
        apply(state, data, root=True)
    return state


def finish(state):
    name = state["name_label"]
    for k in ("memory_static_min", "memory_static_max",
              "memory_dynamic_min", "memory_dynamic_max"):
        if k not in state:
            raise ValueError("%s: no min_memory in its chain" % name)
    other = clean_map(state["other_config"], "other_config", name)
    # The loader imports with default_template=false, then calls
    # VM.set_is_default_template(true), which also writes this key.
    other["default_template"] = "true"
    hvm_policy = state["HVM_boot_policy"]
    domain_type = state.get("domain_type") or ("hvm" if hvm_policy else "pv")
    return {
        "uuid": state["uuid"],
        "reference_label": state["reference_label"],
        "name_label": name,
        "name_description": state.get("name_description", ""),
        "memory_static_min": state["memory_static_min"],
        "memory_static_max": state["memory_static_max"],
        "memory_dynamic_min": state["memory_dynamic_min"],
        "memory_dynamic_max": state["memory_dynamic_max"],
        "VCPUs_max": int(state["VCPUs_max"]),
        "VCPUs_at_startup": int(state["VCPUs_at_startup"]),
        "HVM_boot_policy": hvm_policy,
        "HVM_boot_params": clean_map(state["HVM_boot_params"], "HVM_boot_params", name),
        "PV_bootloader": state["PV_bootloader"],
        "PV_args": state["PV_args"],
        "domain_type": domain_type,
        "platform": clean_map(state["platform"], "platform", name),
        "other_config": other,
        "recommendations": recommendations_xml(state["recommendations"]),
        "is_default_template": True,
        "hardware_platform_version": int(state.get("hardware_platform_version", 0)),
        # The loader never copies a template's has_vendor_device into the VM
        # field; it only becomes the has-vendor-device recommendation.
        "has_vendor_device": False,
        "blocked_operations": dict(state.get("blocked_operations", {})),
    }


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: templates.py TEMPLATES_DIR [OUTPUT]")
    src = argv[1]
    out = argv[2] if len(argv) > 2 else DEFAULT_OUT
    files = {}
    for fname in sorted(os.listdir(src)):
        if fname.endswith(".json"):
            with open(os.path.join(src, fname)) as f:
                files[fname] = json.load(f)
    records = []
    for fname, data in files.items():
        # Only files carrying a uuid are real templates (base-* files are not).
        if "uuid" in data:
            records.append(finish(resolve(files, fname)))
    records.sort(key=lambda r: (r["name_label"], r["uuid"]))

    names = [r["name_label"] for r in records]
    if len(records) != EXPECTED_COUNT:
        sys.exit("expected %d templates, found %d" % (EXPECTED_COUNT, len(records)))
    if MUST_HAVE not in names:
        sys.exit("missing template %r" % MUST_HAVE)
    if len(set(names)) != len(names) or len({r["uuid"] for r in records}) != len(records):
        sys.exit("duplicate name_label or uuid")

    text = json.dumps(records, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print("%d templates -> %s" % (len(records), os.path.relpath(out)))


if __name__ == "__main__":
    main(sys.argv)
