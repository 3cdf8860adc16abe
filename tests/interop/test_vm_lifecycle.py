"""Ports of xapi's quicktests that need no real hardware, with the official Python SDK against a
real `xenledger serve` (ocaml/quicktest/quicktest_vm_snapshot.ml, quicktest_async_calls.ml and
the API half of quicktest_vm_lifecycle.ml), and a `kill -9` in the middle of a long operation
(docs/xenapi-semantics.md §g.1, §g.5, §g.6, §f).

The quicktests build their VM's disks with `VDI.create`; here the template's provisioning XML
asks for the two disks instead (`VM.provision`, §g.7).
"""
import os
import re
import signal
import subprocess
import time

import pytest


from conftest import ROOT_PASSWORD, ServerProcess, root_session, simulated_host

TWO_DISKS = (
    '<provision>'
    '<disk device="0" size="4194304" sr="" bootable="true" type="system"/>'
    '<disk device="1" size="4194304" sr="" bootable="false" type="user"/>'
    '</provision>'
)


@pytest.fixture(scope="module")
def srv():
    yield from simulated_host(0)


def login(srv, originator="quicktest"):
    return root_session(srv, originator)


def new_vm(x, name, disks=TWO_DISKS):
    """Qt.VM.with_new: a VM from the Debian template, provisioned with `disks`."""
    template = x.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = x.VM.clone(template, name)
    x.VM.remove_from_other_config(vm, "disks")
    x.VM.add_to_other_config(vm, "disks", disks)
    x.VM.provision(vm)
    return vm


def vdi_of(x, vbds, userdevice):
    """get_vdi_with_user_device."""
    for vbd in vbds:
        if x.VBD.get_userdevice(vbd) == userdevice:
            return x.VBD.get_VDI(vbd)
    raise AssertionError("no VBD with userdevice %s" % userdevice)


def test_vm_snapshot(srv):
    """quicktest_vm_snapshot.ml test_snapshot and test_snapshot_ignore_vdi."""
    x = login(srv).xenapi
    vm = new_vm(x, "snapshot test")
    vbds = x.VM.get_VBDs(vm)
    vdi, vdi2 = vdi_of(x, vbds, "0"), vdi_of(x, vbds, "1")

    snapshot = x.VM.snapshot(vm, "Snapshot:test_snapshot", [])
    assert x.VM.get_snapshot_of(snapshot) == vm
    snap_vbds = x.VM.get_VBDs(snapshot)
    assert x.VDI.get_snapshot_of(vdi_of(x, snap_vbds, "0")) == vdi
    assert x.VDI.get_snapshot_of(vdi_of(x, snap_vbds, "1")) == vdi2
    assert snapshot in x.VM.get_snapshots(vm)
    record = x.VM.get_record(snapshot)
    assert record["is_a_snapshot"] and record["is_a_template"]
    assert record["snapshot_info"]["power-state-at-snapshot"] == "Halted"

    ignoring = x.VM.snapshot(vm, "Snapshot:test_snapshot_ignore_vdi", [vdi2])
    snap_vbds = x.VM.get_VBDs(ignoring)
    assert not [v for v in snap_vbds if x.VBD.get_userdevice(v) == "1"]
    assert x.VDI.get_snapshot_of(vdi_of(x, snap_vbds, "0")) == vdi
    names = [m["name"] for m in x.message.get_all_records().values() if m["obj_uuid"] == x.VM.get_uuid(vm)]
    assert names.count("VM_SNAPSHOTTED") == 2


def test_vm_revert_with_cloning(srv):
    """quicktest_vm_snapshot.ml test_revert ~change:true: a file SR has no VDI.revert, so the
    VM's disk is a new clone and the disk the snapshot ignored loses its VBD (the VDI stays)."""
    x = login(srv).xenapi
    vm = new_vm(x, "revert test")
    vbds = x.VM.get_VBDs(vm)
    vdi, vdi2 = vdi_of(x, vbds, "0"), vdi_of(x, vbds, "1")
    snapshot = x.VM.snapshot(vm, "Snapshot:test_revert", [vdi2])
    x.VM.revert(snapshot)
    vbds = x.VM.get_VBDs(vm)
    assert len(vbds) == 1, "There should only be one VBD after VM.revert"
    assert vdi_of(x, vbds, "0") != vdi
    assert x.VDI.get_VBDs(vdi2) == []
    assert x.VM.get_power_state(vm) == "Halted"
    # The snapshot and the kept disk go; the VM's own disk was replaced by the revert.
    x.VM.destroy(snapshot)
    assert snapshot not in x.VM.get_all()


def test_checkpoint_and_revert_of_a_running_vm(srv):
    """A checkpoint keeps the memory of a VM that runs on; reverting to it leaves it suspended."""
    x = login(srv).xenapi
    vm = new_vm(x, "checkpoint test")
    x.VM.start(vm, False, False)
    checkpoint = x.VM.checkpoint(vm, "cp")
    assert x.VM.get_power_state(vm) == "Running"
    assert x.VM.get_power_state(checkpoint) == "Suspended"
    x.VM.revert(checkpoint)
    assert x.VM.get_power_state(vm) == "Suspended"
    x.VM.resume(vm, False, False)
    assert x.VM.get_power_state(vm) == "Running"
    x.VM.hard_shutdown(vm)


def wait_for_task_complete(x, task):
    """quicktest_async_calls.ml wait_for_task_complete (polling, as the quicktest does)."""
    deadline = time.time() + 60
    while x.task.get_status(task) in ("pending", "cancelling"):
        assert time.time() < deadline, "the task never completed"
        time.sleep(0.05)


def extract_ref(xml):
    """quicktest_async_calls.ml extract_ref: the ref inside `<value>…</value>`."""
    return xml.split("<value>", 1)[1].split("</value>", 1)[0]


def test_async_calls(srv):
    """quicktest_async_calls.ml, with `Async.VM.clone` in place of `Async.VDI.copy`."""
    x = login(srv).xenapi
    vm = new_vm(x, "async test")
    task = x.Async.VM.clone(vm, "async clone")
    wait_for_task_complete(x, task)
    assert x.task.get_status(task) == "success", x.task.get_error_info(task)
    clone = extract_ref(x.task.get_result(task))
    assert x.VM.get_name_label(clone) == "async clone"
    x.VM.destroy(clone)
    # An Async start's result is empty; its failure is on the task.
    task = x.Async.VM.start(vm, False, False)
    wait_for_task_complete(x, task)
    assert x.task.get_status(task) == "success"
    task = x.Async.VM.start(vm, False, False)
    wait_for_task_complete(x, task)
    assert x.task.get_status(task) == "failure"
    assert x.task.get_error_info(task) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    x.VM.hard_shutdown(vm)


def test_vm_lifecycle_api_operations(srv):
    """quicktest_vm_lifecycle.ml `one` for the API tests (the in-guest ones need a hypervisor):
    a hard shutdown ends with domid -1, a reboot with a new domid; the clean ones, which the
    quicktest leaves out for guests without PV drivers, work here for the simulated agent."""
    x = login(srv).xenapi
    vm = new_vm(x, "lifecycle test")
    for mode, call in [("hard", "shutdown"), ("hard", "reboot"), ("clean", "shutdown"), ("clean", "reboot")]:
        if x.VM.get_power_state(vm) == "Halted":
            x.VM.start(vm, False, False)
        domid = x.VM.get_domid(vm)
        getattr(x.VM, "%s_%s" % (mode, call))(vm)
        if call == "shutdown":
            assert x.VM.get_domid(vm) == "-1"
            assert x.VM.get_power_state(vm) == "Halted"
        else:
            assert x.VM.get_domid(vm) != domid
            assert x.VM.get_power_state(vm) == "Running"
    x.VM.hard_shutdown(vm)


def replay_verify(srv):
    binary = os.path.join(os.path.dirname(os.path.abspath(srv.binary)), "xenledger-replay")
    done = subprocess.run([binary, "verify", srv.data_dir], capture_output=True, timeout=300, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kill_9_during_a_long_operation_then_a_start():
    """§f, §g.1: a crash between the entry that marks an operation and the one that ends it. The
    next start fails the task, clears `current_operations` and takes the host's word for the
    VM's power state; the log still verifies."""
    srv = ServerProcess()
    srv.extra_args = ["--sim-speed", "1"]
    srv.start()
    try:
        x = login(srv).xenapi
        vm = new_vm(x, "crash test")
        task = x.Async.VM.start(vm, False, False)
        deadline = time.time() + 30
        while not x.VM.get_current_operations(vm):
            assert time.time() < deadline, "the start was never marked"
            time.sleep(0.02)
        assert x.task.get_status(task) == "pending"
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(timeout=30)
        srv.proc = None

        srv.start()
        x = login(srv).xenapi
        assert x.task.get_status(task) == "failure"
        assert x.VM.get_current_operations(vm) == {}
        # The start was killed before its effect: the simulated host has no domain.
        assert x.VM.get_power_state(vm) == "Halted"
        assert "start" in x.VM.get_allowed_operations(vm)
        x.VM.start(vm, False, False)
        assert x.VM.get_power_state(vm) == "Running"
        x.VM.hard_shutdown(vm)
        srv.stop()
        replay_verify(srv)
    finally:
        if srv.proc:
            srv.proc.kill()
            srv.proc.wait()
        print(srv.output())
        srv.cleanup()
