"""The XenAPI getting-started walkthrough with the official Python SDK against a real
`xenledger serve`, as a user writes it (docs/xenapi-semantics.md §g, §i): templates, clone,
provision, start, suspend, resume, shutdown, with a second session following every power state
and every `current_operations` change through `event.from`; then the error paths with xapi's
codes and parameters (§g.1).
"""
import os
import re
import threading
import time

import pytest
import XenAPI

from conftest import ROOT_PASSWORD, root_session, simulated_host


@pytest.fixture(scope="module")
def srv():
    # Effects take a quarter of a real host's time: long enough to see `current_operations`.
    yield from simulated_host(0.25)


def login(srv, originator="walkthrough"):
    return root_session(srv, originator)


class Follower(threading.Thread):
    """A second session following VMs through event.from."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.session = login(srv, "follower")
        self.seen = []  # (vm ref, power_state, current_operations values)
        self.stop = False

    def run(self):
        token = ""
        while not self.stop:
            batch = self.session.xenapi.event_from(["VM"], token, 1.0)
            token = batch["token"]
            for ev in batch["events"]:
                snap = ev.get("snapshot")
                if ev["operation"] == "mod" and snap:
                    self.seen.append((ev["ref"], snap["power_state"], sorted(snap["current_operations"].values())))


def test_the_walkthrough_from_templates_to_shutdown(srv):
    session = login(srv)
    x = session.xenapi
    follower = Follower(srv)
    follower.start()

    records = x.VM.get_all_records()
    templates = {r["name_label"]: ref for ref, r in records.items() if r["is_a_template"]}
    assert len([r for r in records.values() if r["is_default_template"]]) == 49
    template = templates["Debian Bookworm 12"]
    assert set(x.VM.get_allowed_operations(template)) >= {"clone", "copy", "provision"}

    vm = x.VM.clone(template, "my first VM")
    assert x.VM.get_is_a_template(vm) is True  # cloning a template yields a template (§g.5)
    other = x.VM.get_other_config(vm)
    pool = x.pool.get_all()[0]
    sr = x.pool.get_default_SR(pool)
    sr_uuid = x.SR.get_uuid(sr)
    other["disks"] = re.sub(r'sr="[^"]*"', 'sr="%s"' % sr_uuid, other["disks"])
    x.VM.remove_from_other_config(vm, "disks")
    x.VM.add_to_other_config(vm, "disks", other["disks"])
    x.VM.provision(vm)
    assert x.VM.get_is_a_template(vm) is False
    vbds = x.VM.get_VBDs(vm)
    assert len(vbds) == 1
    vdi = x.VBD.get_VDI(vbds[0])
    assert x.VDI.get_virtual_size(vdi) == str(10 << 30)
    location = x.PBD.get_device_config(x.SR.get_PBDs(sr)[0])["location"]
    assert os.path.getsize(os.path.join(location, x.VDI.get_uuid(vdi) + ".img")) == 10 << 30

    x.VM.start(vm, False, False)
    assert x.VM.get_power_state(vm) == "Running"
    assert x.VM.get_domid(vm) not in ("-1", "0")
    assert x.VM.get_resident_on(vm) == x.pool.get_master(pool)
    assert x.VBD.get_currently_attached(vbds[0]) is True
    metrics = x.VM.get_metrics(vm)
    assert x.VM_metrics.get_memory_actual(metrics) == x.VM.get_memory_dynamic_max(vm)
    assert len(x.VM.get_consoles(vm)) == 2

    x.VM.suspend(vm)
    assert x.VM.get_power_state(vm) == "Suspended"
    assert x.VM.get_suspend_VDI(vm) != "OpaqueRef:NULL"
    x.VM.resume(vm, False, False)
    assert x.VM.get_power_state(vm) == "Running"
    assert x.VM.get_suspend_VDI(vm) == "OpaqueRef:NULL"
    x.VM.shutdown(vm)
    assert x.VM.get_power_state(vm) == "Halted"
    assert x.VM.get_current_operations(vm) == {}

    deadline = time.time() + 10
    wanted = ["Running", "Suspended", "Halted"]
    while time.time() < deadline:
        states = [s for (r, s, _) in follower.seen if r == vm]
        ops = {o for (r, _, cur) in follower.seen if r == vm for o in cur}
        if all(w in states for w in wanted) and {"start", "suspend", "resume", "shutdown"} <= ops:
            break
        time.sleep(0.2)
    states = [s for (r, s, _) in follower.seen if r == vm]
    ops = {o for (r, _, cur) in follower.seen if r == vm for o in cur}
    assert all(w in states for w in wanted), states
    assert {"provision", "start", "suspend", "resume", "shutdown"} <= ops, ops
    follower.stop = True
    x.session.logout()


def failure(call, *args):
    with pytest.raises(XenAPI.Failure) as e:
        call(*args)
    return e.value.details


def test_error_paths_answer_xapis_codes(srv):
    x = login(srv).xenapi
    template = x.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = x.VM.clone(template, "errors")
    x.VM.set_is_a_template(vm, False)
    assert failure(x.VM.start, template, False, False) == ["VM_IS_TEMPLATE", template, "start"]
    assert failure(x.VM.suspend, vm) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    x.VM.start(vm, False, False)
    assert failure(x.VM.start, vm, False, False) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    x.VM.hard_shutdown(vm)

    # Two concurrent starts: one wins; the other is refused while it runs or after.
    first = x.Async.VM.start(vm, False, False)
    second = x.Async.VM.start(vm, False, False)
    for task in (first, second):
        while x.task.get_status(task) == "pending":
            time.sleep(0.05)
    outcomes = sorted([x.task.get_status(first), x.task.get_status(second)])
    assert outcomes == ["failure", "success"]
    failed = first if x.task.get_status(first) == "failure" else second
    assert x.task.get_error_info(failed)[0] in ("OTHER_OPERATION_IN_PROGRESS", "VM_BAD_POWER_STATE")
    x.VM.hard_shutdown(vm)

    huge = x.VM.clone(template, "huge")
    x.VM.set_is_a_template(huge, False)
    x.VM.set_memory_limits(huge, str(1 << 40), str(1 << 50), str(1 << 50), str(1 << 50))
    details = failure(x.VM.start, huge, False, False)
    assert details[0] == "HOST_NOT_ENOUGH_FREE_MEMORY", details


def test_the_readme_example_runs_as_shown(srv):
    """README.md shows `examples/walkthrough.py` and what it prints: run it as a user would."""
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    example = os.path.join(here, "..", "..", "examples", "walkthrough.py")
    env = dict(os.environ, XENLEDGER_PASSWORD=ROOT_PASSWORD)
    done = subprocess.run([sys.executable, example, srv.https_url], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("49 templates, among them ['AlmaLinux 10'"), lines
    assert "disk 0: 10737418240 bytes" in lines
    assert [l.split()[2] for l in lines if l.split()[0] in ("start", "suspend", "resume")] == [
        "Running", "Suspended", "Running"]
    agent = [l for l in lines if l.startswith("the guest agent")]
    assert len(agent) == 1 and re.match(r"the guest agent reports address 10\.0\.\d+\.\d+$", agent[0]), lines
    assert "reverted to 'before the change': Halted, description 'before'" in lines
    assert lines[-2] == "shutdown -> Halted"
    assert lines[-1] == ("messages: VM_RESUMED, VM_SHUTDOWN, VM_SNAPSHOTTED, VM_SNAPSHOT_REVERTED, "
                         "VM_STARTED, VM_STARTED, VM_SUSPENDED")
