"""The XenAPI getting-started walkthrough against xenledger, with the official Python SDK
(`pip install XenAPI`): list the templates, clone one, provision its disks in the default SR,
then start, suspend, resume and shut down the new VM, and snapshot and revert it.

    XENLEDGER_PASSWORD=<root's password> python3 examples/walkthrough.py [https://127.0.0.1:8443]
"""
import os
import re
import sys

import XenAPI

url = sys.argv[1] if len(sys.argv) > 1 else "https://127.0.0.1:8443"
session = XenAPI.Session(url, ignore_ssl=True)
session.xenapi.login_with_password("root", os.environ["XENLEDGER_PASSWORD"], "2.21", "walkthrough")
x = session.xenapi
try:
    records = x.VM.get_all_records()
    templates = {r["name_label"]: ref for ref, r in records.items() if r["is_a_template"]}
    print("%d templates, among them %r" % (len(templates), sorted(templates)[:3]))
    template = templates["Debian Bookworm 12"]

    vm = x.VM.clone(template, "my first VM")
    pool = x.pool.get_all()[0]
    sr = x.pool.get_default_SR(pool)
    print("cloned %s; its disks go to SR %r" % (x.VM.get_uuid(vm), x.SR.get_name_label(sr)))
    other = x.VM.get_other_config(vm)
    disks = re.sub(r'sr="[^"]*"', 'sr="%s"' % x.SR.get_uuid(sr), other["disks"])
    x.VM.remove_from_other_config(vm, "disks")
    x.VM.add_to_other_config(vm, "disks", disks)
    x.VM.provision(vm)
    for vbd in x.VM.get_VBDs(vm):
        vdi = x.VBD.get_VDI(vbd)
        print("disk %s: %s bytes" % (x.VBD.get_userdevice(vbd), x.VDI.get_virtual_size(vdi)))

    network = [n for n, r in x.network.get_all_records().items() if r["PIFs"]][0]
    x.VIF.create({"device": "0", "network": network, "VM": vm, "MAC": "", "MTU": "1500", "other_config": {},
                  "qos_algorithm_type": "", "qos_algorithm_params": {}})
    print("a VIF on network %r" % x.network.get_name_label(network))

    for step, call in [("start", lambda: x.VM.start(vm, False, False)),
                       ("suspend", lambda: x.VM.suspend(vm)),
                       ("resume", lambda: x.VM.resume(vm, False, False))]:
        call()
        print("%-8s -> %s (domid %s)" % (step, x.VM.get_power_state(vm), x.VM.get_domid(vm)))
    metrics = x.VM.get_guest_metrics(vm)
    print("the guest agent reports address %s" % x.VM_guest_metrics.get_networks(metrics).get("0/ip", "(no VIF)"))

    x.VM.set_name_description(vm, "before")
    snapshot = x.VM.snapshot(vm, "before the change", [])
    x.VM.set_name_description(vm, "changed")
    x.VM.revert(snapshot)
    print("reverted to %r: %s, description %r" % (x.VM.get_name_label(snapshot), x.VM.get_power_state(vm),
                                                  x.VM.get_name_description(vm)))
    x.VM.start(vm, False, False)
    x.VM.shutdown(vm)
    print("shutdown -> %s" % x.VM.get_power_state(vm))
    names = [m["name"] for m in x.message.get_all_records().values() if m["obj_uuid"] == x.VM.get_uuid(vm)]
    print("messages: %s" % ", ".join(sorted(names)))
finally:
    x.session.logout()
