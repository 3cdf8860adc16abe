"""Storage, devices and networking with the official Python SDK against a real `xenledger serve`
(docs/xenapi-semantics.md §h): the "Working with VIFs and VBDs" walk-through, disk bytes over
`/import_raw_vdi` and `/export_raw_vdi` (xapi import_raw_vdi.ml, export_raw_vdi.ml), ports of
xapi's quicktests (ocaml/quicktest/quicktest_example.ml, quicktest_vdi.ml, quicktest_sr.ml,
quicktest_async_calls.ml), networking (xapi_vlan.ml, xapi_bond.ml, xapi_network.ml) and a
`kill -9` in the middle of a `VDI.copy`.
"""
import hashlib
import http.client
import os
import re
import signal
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import ServerProcess, root_session

MIB = 1 << 20


@pytest.fixture(scope="module")
def srv():
    srv = ServerProcess()
    srv.extra_args = ["--sim-speed", "0"]
    srv.cli("user", "add", "reader", "--role", "read-only", "--data-dir", srv.data_dir, password="reader-pw")
    yield from srv.serve_fixture(show_output=True)


@pytest.fixture(scope="module")
def x(srv):
    s = root_session(srv, "storage-tests")
    yield s.xenapi
    s.xenapi.session.logout()


def local_sr(x):
    pool = x.pool.get_all()[0]
    return x.pool.get_default_SR(pool)


def new_vdi(x, size, sr=None, name="quicktest-vdi", read_only=False):
    """Qt.VDI.make."""
    return x.VDI.create({
        "name_label": name, "name_description": "VDI for storage quicktest", "SR": sr or local_sr(x),
        "virtual_size": str(size), "type": "user", "sharable": False, "read_only": read_only,
        "other_config": {}, "xenstore_data": {}, "sm_config": {}, "tags": [],
    })


def sr_dir(x, sr):
    pbd = x.SR.get_PBDs(sr)[0]
    return x.PBD.get_device_config(pbd)["location"]


def vdi_file(x, vdi):
    return os.path.join(sr_dir(x, x.VDI.get_SR(vdi)), x.VDI.get_location(vdi) + ".img")


def error_of(call, *args):
    with pytest.raises(Exception) as e:
        call(*args)
    return e.value.details


def wait_task(x, task, seconds=60):
    deadline = time.time() + seconds
    while x.task.get_status(task) in ("pending", "cancelling"):
        assert time.time() < deadline, "task still pending"
        time.sleep(0.05)
    return x.task.get_status(task)


def extract_ref(result):
    """quicktest_async_calls.ml extract_ref: the ref inside <value>…</value>."""
    return result.split("<value>")[-1].split("</value>")[0]


def https(srv):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection("127.0.0.1", srv.https_port, context=context, timeout=120)


def put_raw(srv, session, vdi, data, extra=""):
    conn = https(srv)
    conn.request("PUT", "/import_raw_vdi?session_id=%s&vdi=%s%s" % (session, vdi, extra), body=data,
                 headers={"Content-Length": str(len(data))})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


def get_raw(srv, session, vdi, extra=""):
    conn = https(srv)
    conn.request("GET", "/export_raw_vdi?session_id=%s&vdi=%s%s" % (session, vdi, extra))
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


def image(size):
    """A disk image with data at both ends and a hole in the middle."""
    head = os.urandom(size // 4)
    tail = os.urandom(size // 4)
    return head + bytes(size - len(head) - len(tail)) + tail


def running_vm(x, name):
    template = x.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = x.VM.clone(template, name)
    x.VM.remove_from_other_config(vm, "disks")
    x.VM.provision(vm)
    x.VM.start(vm, False, False)
    return vm


# ---- the seed's "Working with VIFs and VBDs" -------------------------------------------------

def test_blank_disk_is_rounded_and_a_sparse_file(x):
    vdi = new_vdi(x, 5 * MIB + 1)
    # The local SR's disk format rounds up to 2 MiB, as xapi's VHD-backed local storage does.
    assert int(x.VDI.get_virtual_size(vdi)) == 6 * MIB
    path = vdi_file(x, vdi)
    assert os.path.getsize(path) == 6 * MIB
    assert os.stat(path).st_blocks * 512 < MIB, "a blank disk allocates nothing"
    x.VDI.destroy(vdi)
    assert not os.path.exists(path)


def test_vbd_plug_and_unplug_on_a_running_vm(x):
    vm = running_vm(x, "vbd-hotplug")
    vdi = new_vdi(x, 8 * MIB)
    device = x.VM.get_allowed_VBD_devices(vm)[0]
    vbd = x.VBD.create({
        "VM": vm, "VDI": vdi, "userdevice": device, "bootable": False, "mode": "RW", "type": "Disk",
        "unpluggable": True, "empty": False, "other_config": {}, "qos_algorithm_type": "",
        "qos_algorithm_params": {},
    })
    assert x.VBD.get_currently_attached(vbd) is False
    x.VBD.plug(vbd)
    assert x.VBD.get_currently_attached(vbd) is True
    assert error_of(x.VDI.destroy, vdi)[0] == "VDI_IN_USE"
    x.VBD.unplug(vbd)
    assert x.VBD.get_currently_attached(vbd) is False
    # A read-only VDI is not attached read-write (xapi_vbd.ml: VDI_READONLY [vdi]).
    ro = new_vdi(x, 2 * MIB, read_only=True)
    record = {"VM": vm, "VDI": ro, "userdevice": "autodetect", "bootable": False, "mode": "RW", "type": "Disk",
              "unpluggable": True, "empty": False, "other_config": {}, "qos_algorithm_type": "",
              "qos_algorithm_params": {}}
    assert error_of(x.VBD.create, record) == ["VDI_READONLY", ro]
    x.VM.hard_shutdown(vm)
    # A shutdown detaches every VBD.
    assert all(not x.VBD.get_currently_attached(v) for v in x.VM.get_VBDs(vm))


def test_vif_create_plug_unplug(x):
    vm = running_vm(x, "vif-hotplug")
    network = x.PIF.get_network([p for p in x.PIF.get_all() if x.PIF.get_device(p) == "eth0"][0])
    device = x.VM.get_allowed_VIF_devices(vm)[0]
    vif = x.VIF.create({
        "device": device, "network": network, "VM": vm, "MAC": "", "MTU": "1500", "other_config": {},
        "qos_algorithm_type": "", "qos_algorithm_params": {}, "locking_mode": "network_default",
        "ipv4_allowed": [], "ipv6_allowed": [],
    })
    assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", x.VIF.get_MAC(vif))
    assert x.VIF.get_MTU(vif) == x.network.get_MTU(network)
    x.VIF.plug(vif)
    assert x.VIF.get_currently_attached(vif) is True
    x.VIF.unplug(vif)
    assert x.VIF.get_currently_attached(vif) is False
    # Locking (xapi_vif.ml): the mode as given; allowed addresses checked and kept as a set.
    x.VIF.set_locking_mode(vif, "locked")
    x.VIF.set_ipv4_allowed(vif, ["10.0.0.9", "10.0.0.9"])
    x.VIF.add_ipv4_allowed(vif, "10.0.0.10")
    x.VIF.remove_ipv4_allowed(vif, "10.0.0.9")
    assert (x.VIF.get_locking_mode(vif), x.VIF.get_ipv4_allowed(vif)) == ("locked", ["10.0.0.10"])
    assert error_of(x.VIF.add_ipv4_allowed, vif, "fe80::1") == ["INVALID_IP_ADDRESS_SPECIFIED", "ipv4_allowed"]
    x.VIF.add_ipv6_allowed(vif, "fe80::1")
    assert x.VIF.get_ipv6_allowed(vif) == ["fe80::1"]
    x.VM.hard_shutdown(vm)


def test_pbd_create_plug_unplug_and_a_file_sr(x, tmp_path):
    host = x.host.get_all()[0]
    sr = x.SR.introduce("", "files", "", "file", "user", False, {})
    assert x.SR.get_PBDs(sr) == []
    pbd = x.PBD.create({"host": host, "SR": sr, "device_config": {"location": str(tmp_path)}, "other_config": {}})
    assert x.PBD.get_currently_attached(pbd) is False
    assert error_of(x.PBD.create, {"host": host, "SR": sr, "device_config": {}, "other_config": {}}) == \
        ["PBD_EXISTS", sr, host, pbd]
    assert error_of(new_vdi, x, MIB, sr)[0] == "SR_HAS_NO_PBDS"
    x.PBD.plug(pbd)
    assert x.PBD.get_currently_attached(pbd) is True
    vdi = new_vdi(x, 3 * MIB, sr)
    assert os.path.exists(os.path.join(str(tmp_path), x.VDI.get_uuid(vdi) + ".img"))
    assert error_of(x.SR.forget, sr) == ["SR_HAS_PBD", sr]
    x.PBD.unplug(pbd)
    assert x.PBD.get_currently_attached(pbd) is False
    # Forgetting the SR leaves its files.
    x.SR.forget(sr)
    assert os.listdir(str(tmp_path)) == [x_ for x_ in os.listdir(str(tmp_path)) if x_.endswith(".img")]
    assert len(os.listdir(str(tmp_path))) == 1


def test_sr_create_destroy_and_an_iso_library(x, tmp_path):
    host = x.host.get_all()[0]
    assert error_of(x.SR.create, host, {}, "0", "n", "", "nfs", "user", False, {}) == ["SR_UNKNOWN_DRIVER", "nfs"]
    sr = x.SR.create(host, {"location": str(tmp_path / "new")}, "0", "made", "", "file", "user", False, {})
    pbd = x.SR.get_PBDs(sr)[0]
    assert x.PBD.get_currently_attached(pbd) is True
    assert int(x.SR.get_physical_size(sr)) > 0
    vdi = new_vdi(x, MIB, sr)
    x.PBD.unplug(pbd)
    assert error_of(x.SR.destroy, sr) == ["SR_NOT_EMPTY"]
    x.PBD.plug(pbd)
    x.VDI.destroy(vdi)
    x.PBD.unplug(pbd)
    x.SR.destroy(sr)
    assert sr not in x.SR.get_all()
    # An ISO library: its images are read-only VDIs named by their files.
    isos = tmp_path / "isos"
    isos.mkdir()
    (isos / "install.iso").write_bytes(b"\x01" * 4096)
    iso_sr = x.SR.create(host, {"location": str(isos)}, "0", "ISOs", "", "iso", "iso", False, {})
    vdis = x.SR.get_VDIs(iso_sr)
    assert [x.VDI.get_name_label(v) for v in vdis] == ["install.iso"]
    assert x.VDI.get_read_only(vdis[0]) is True
    assert error_of(new_vdi, x, MIB, iso_sr)[0] == "SR_OPERATION_NOT_SUPPORTED"
    (isos / "other.iso").write_bytes(b"\x02" * 4096)
    x.SR.scan(iso_sr)
    assert sorted(x.VDI.get_name_label(v) for v in x.SR.get_VDIs(iso_sr)) == ["install.iso", "other.iso"]
    sms = {x.SM.get_type(s): x.SM.get_configuration(s) for s in x.SM.get_all()}
    assert set(sms) >= {"ext", "file", "iso", "udev"} and "location" in sms["file"] and "location" in sms["iso"]


def test_pif_device_and_mac_and_a_vlan_on_eth0(x):
    pifs = {x.PIF.get_device(p): p for p in x.PIF.get_all() if x.PIF.get_VLAN(p) == "-1"}
    eth0 = pifs["eth0"]
    assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", x.PIF.get_MAC(eth0))
    assert x.PIF.get_management(eth0) is True
    network = x.network.create({"name_label": "vlan 5", "name_description": "", "MTU": "1500", "other_config": {},
                                "tags": []})
    assert x.network.get_bridge(network).startswith("xapi")
    vlan = x.VLAN.create(eth0, "5", network)
    untagged = x.VLAN.get_untagged_PIF(vlan)
    assert (x.PIF.get_device(untagged), x.PIF.get_VLAN(untagged), x.PIF.get_network(untagged)) == ("eth0", "5", network)
    assert x.PIF.get_currently_attached(untagged) is True
    assert vlan in x.PIF.get_VLAN_slave_of(eth0)
    assert error_of(x.VLAN.create, eth0, "5", x.network.create({"name_label": "again", "other_config": {}})) == \
        ["PIF_VLAN_EXISTS", "eth0"]
    assert error_of(x.VLAN.create, eth0, "4095", x.network.create({"name_label": "bad", "other_config": {}})) == \
        ["VLAN_TAG_INVALID", "4095"]
    assert error_of(x.network.destroy, network) == ["NETWORK_CONTAINS_PIF", untagged]
    assert error_of(x.PIF.unplug, eth0) == ["PIF_IS_MANAGEMENT_INTERFACE", eth0]
    x.VLAN.destroy(vlan)
    assert untagged not in x.PIF.get_all()
    x.network.destroy(network)


def test_reconfigure_ip_and_a_bond(x):
    pifs = {x.PIF.get_device(p): p for p in x.PIF.get_all() if x.PIF.get_VLAN(p) == "-1"}
    eth0, eth1 = pifs["eth0"], pifs["eth1"]
    assert error_of(x.PIF.reconfigure_ip, eth1, "Static", "10.0.0.300", "255.255.255.0", "", "") == \
        ["INVALID_IP_ADDRESS_SPECIFIED", "IP"]
    x.PIF.reconfigure_ip(eth1, "Static", "10.0.0.2", "255.255.255.0", "10.0.0.1", "10.0.0.53")
    assert (x.PIF.get_IP(eth1), x.PIF.get_ip_configuration_mode(eth1), x.PIF.get_DNS(eth1)) == \
        ("10.0.0.2", "Static", "10.0.0.53")
    x.PIF.reconfigure_ip(eth1, "None", "", "", "", "")
    ip0 = x.PIF.get_IP(eth0)
    network = x.network.create({"name_label": "bond", "other_config": {}})
    bond = x.Bond.create(network, [eth0, eth1], "", "active-backup", {})
    master = x.Bond.get_master(bond)
    assert x.PIF.get_device(master) == "bond0"
    assert x.PIF.get_management(master) is True and x.PIF.get_management(eth0) is False
    assert x.PIF.get_IP(master) == ip0 and x.PIF.get_MAC(master) == x.PIF.get_MAC(eth0)
    assert sorted(x.Bond.get_slaves(bond)) == sorted([eth0, eth1])
    assert error_of(x.PIF.plug, eth1) == ["CANNOT_PLUG_BOND_SLAVE", eth1]
    x.Bond.destroy(bond)
    assert x.PIF.get_management(eth0) is True and x.PIF.get_IP(eth0) == ip0
    assert master not in x.PIF.get_all()
    x.network.destroy(network)


# ---- bytes -----------------------------------------------------------------------------------

def test_import_copy_export_round_trip(srv, x):
    s = root_session(srv, "bytes")
    session = s._session
    vdi = new_vdi(x, 8 * MIB)
    data = image(6 * MIB + 12345)
    status, headers, _ = put_raw(srv, session, vdi, data)
    assert status == 200, headers
    assert int(x.VDI.get_physical_utilisation(vdi)) < 8 * MIB, "the hole stays a hole"
    task = x.Async.VDI.copy(vdi, local_sr(x), "OpaqueRef:NULL", "OpaqueRef:NULL")
    assert wait_task(x, task) == "success"
    copy = extract_ref(x.task.get_result(task))
    status, headers, exported = get_raw(srv, session, copy)
    assert status == 200 and headers.get("content-type") == "application/octet-stream"
    expected = data + bytes(8 * MIB - len(data))
    assert hashlib.sha256(exported).hexdigest() == hashlib.sha256(expected).hexdigest()
    # By uuid, with the caller's task, which gets the outcome and is not destroyed.
    task = x.task.create("export", "")
    status, headers, again = get_raw(srv, session, x.VDI.get_uuid(vdi), "&task_id=" + task)
    assert status == 200 and again == expected and headers.get("task-id") == task
    assert wait_task(x, task) == "success"
    # Into an existing VDI (VDI.copy into_vdi): same bytes; a too small one is refused.
    into = new_vdi(x, 10 * MIB)
    assert x.VDI.copy(vdi, "OpaqueRef:NULL", "OpaqueRef:NULL", into) == into
    assert get_raw(srv, session, into)[2][:8 * MIB] == expected
    small = new_vdi(x, 2 * MIB)
    assert error_of(x.VDI.copy, vdi, "OpaqueRef:NULL", "OpaqueRef:NULL", small) == ["VDI_TOO_SMALL", small, str(8 * MIB)]
    # Too large an image, a bad session, a missing VDI.
    assert put_raw(srv, session, small, image(3 * MIB))[0] == 500
    assert put_raw(srv, "OpaqueRef:bogus", vdi, b"x")[0] == 401
    assert get_raw(srv, session, "")[0] == 400
    path = vdi_file(x, copy)
    x.VDI.destroy(copy)
    assert not os.path.exists(path)
    s.xenapi.session.logout()


def test_read_only_user_cannot_transfer(srv, x):
    import XenAPI
    s = XenAPI.Session(srv.https_url, ignore_ssl=True)
    s.xenapi.login_with_password("reader", "reader-pw", "2.21", "reader")
    vdi = new_vdi(x, 2 * MIB)
    status, _, body = get_raw(srv, s._session, vdi)
    assert status == 403 and b"http/get_export_raw_vdi" in body
    s.xenapi.session.logout()


def test_sr_scan_picks_up_a_dropped_file_and_forgets_a_vanished_one(x):
    sr = local_sr(x)
    uuid = "0a1b2c3d-0000-4000-8000-00000000abcd"
    path = os.path.join(sr_dir(x, sr), uuid + ".img")
    with open(path, "wb") as f:
        f.truncate(3 * MIB)
    x.SR.scan(sr)
    vdi = x.VDI.get_by_uuid(uuid)
    assert int(x.VDI.get_virtual_size(vdi)) == 3 * MIB and vdi in x.SR.get_VDIs(sr)
    os.remove(path)
    x.SR.scan(sr)
    assert vdi not in x.VDI.get_all()


# ---- xapi quicktest ports --------------------------------------------------------------------

def test_quicktest_example_pbd_uuid_round_trip(x):
    pbd = x.PBD.get_all()[0]
    assert x.PBD.get_by_uuid(x.PBD.get_uuid(pbd)) == pbd


def test_quicktest_vdi_create_destroy_odd_sizes_and_resize(x):
    for mib in (4, 5, 6, 7, 8):
        size = mib * MIB + 1
        vdi = new_vdi(x, size)
        assert int(x.VDI.get_virtual_size(vdi)) >= size, "VDI.create created too small a VDI"
        uuid = x.VDI.get_uuid(vdi)
        x.VDI.destroy(vdi)
        assert error_of(x.VDI.get_by_uuid, uuid)[0] == "UUID_INVALID"
    vdi = new_vdi(x, 4 * MIB)
    new_size = int(x.VDI.get_virtual_size(vdi)) + MIB
    x.VDI.resize(vdi, str(new_size))
    assert int(x.VDI.get_virtual_size(vdi)) >= new_size
    x.VDI.destroy(vdi)


def test_quicktest_vdi_snapshot_and_clone_fields(x):
    vdi = new_vdi(x, 4 * MIB)
    x.VDI.set_tags(vdi, ["quick", "test"])
    t0 = time.time()
    snap = x.VDI.snapshot(vdi, {})
    t1 = time.time()
    r = x.VDI.get_record(snap)
    t = time.mktime(time.strptime(str(r["snapshot_time"])[:17], "%Y%m%dT%H:%M:%S")) - time.timezone
    assert t0 - 2 < t < t1 + 2
    assert r["is_a_snapshot"] is True and r["snapshot_of"] != "OpaqueRef:NULL"
    for other in (snap, x.VDI.clone(vdi, {})):
        assert x.VDI.get_virtual_size(other) == x.VDI.get_virtual_size(vdi)
        assert x.VDI.get_location(other) != x.VDI.get_location(vdi)
        assert x.VDI.get_tags(other) == x.VDI.get_tags(vdi)
    before = x.VDI.get_record(snap)
    x.SR.update(local_sr(x))
    after = x.VDI.get_record(snap)
    for k in ("is_a_snapshot", "location", "managed", "name_description", "name_label", "snapshot_of", "snapshot_time"):
        assert before[k] == after[k], k


def test_quicktest_vdi_bad_introduce(x):
    vdi = new_vdi(x, 2 * MIB)
    sr = local_sr(x)
    args = ("n", "d", sr, "user", False, False, {}, None, {}, {}, False, "0", "0", "OpaqueRef:NULL", False,
            "19700101T00:00:00Z", "OpaqueRef:NULL")
    def introduce(uuid, location):
        a = list(args)
        a[7] = location
        return x.VDI.introduce(uuid, *a)
    with pytest.raises(Exception):
        introduce(x.VDI.get_uuid(vdi), "fresh-location")
    with pytest.raises(Exception):
        introduce("5f5f5f5f-0000-4000-8000-000000000001", x.VDI.get_location(vdi))
    # A good one: a file put into the SR's directory under a name of its own.
    with open(os.path.join(sr_dir(x, sr), "imported-disk.img"), "wb") as f:
        f.truncate(2 * MIB)
    new = introduce("5f5f5f5f-0000-4000-8000-000000000002", "imported-disk")
    assert int(x.VDI.get_virtual_size(new)) == 2 * MIB
    x.VDI.forget(new)
    assert os.path.exists(os.path.join(sr_dir(x, sr), "imported-disk.img"))
    os.remove(os.path.join(sr_dir(x, sr), "imported-disk.img"))


def test_quicktest_sr_scan_update_probe_and_names(x):
    sr = local_sr(x)
    x.SR.scan(sr)
    x.SR.update(sr)
    old = (x.SR.get_name_label(sr), x.SR.get_name_description(sr))
    x.SR.set_name_label(sr, "test_name_label")
    x.SR.set_name_description(sr, "test_name_description")
    assert (x.SR.get_name_label(sr), x.SR.get_name_description(sr)) == ("test_name_label", "test_name_description")
    before = x.SR.get_record(sr)
    x.SR.update(sr)
    after = x.SR.get_record(sr)
    assert (before["name_label"], before["name_description"]) == (after["name_label"], after["name_description"])
    x.SR.set_name_label(sr, old[0])
    x.SR.set_name_description(sr, old[1])


def test_quicktest_sr_probe(x, tmp_path):
    host = x.host.get_all()[0]
    sr = x.SR.create(host, {"location": str(tmp_path)}, "0", "probed", "", "file", "user", False, {})
    pbd = x.SR.get_PBDs(sr)[0]
    x.PBD.unplug(pbd)
    try:
        xml = x.SR.probe(host, x.PBD.get_device_config(pbd), "file", {})
    finally:
        x.PBD.plug(pbd)
    uuids = [u.strip() for u in re.findall(r"<UUID>(.*?)</UUID>", xml, re.S)]
    assert x.SR.get_uuid(sr) in uuids


def test_quicktest_async_vdi_copy(x):
    vdi = new_vdi(x, 4 * MIB)
    task = x.Async.VDI.copy(vdi, local_sr(x), "OpaqueRef:NULL", "OpaqueRef:NULL")
    assert wait_task(x, task) == "success", x.task.get_error_info(task)
    result = x.task.get_result(task)
    assert result.startswith("<value>") and result.endswith("</value>")
    x.VDI.destroy(extract_ref(result))


# ---- a crash in the middle of a copy ---------------------------------------------------------

def replay_verify(srv):
    binary = os.path.join(os.path.dirname(os.path.abspath(srv.binary)), "xenledger-replay")
    out = subprocess.run([binary, "verify", srv.data_dir], capture_output=True, timeout=300, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def x_progress(x, task):
    try:
        return x.task.get_progress(task)
    except Exception as e:  # the server is gone
        return type(e).__name__


def test_kill_9_during_vdi_copy_leaves_no_half_copy():
    srv = ServerProcess()
    srv.extra_args = ["--sim-speed", "0"]
    srv.start()
    try:
        s = root_session(srv, "crash")
        x = s.xenapi
        vdi = new_vdi(x, 256 * MIB)
        data = os.urandom(256 * MIB)
        assert put_raw(srv, s._session, vdi, data)[0] == 200
        digest = hashlib.sha256(data).hexdigest()
        directory = sr_dir(x, local_sr(x))
        task = x.Async.VDI.copy(vdi, local_sr(x), "OpaqueRef:NULL", "OpaqueRef:NULL")
        deadline = time.time() + 60
        while float(x.task.get_progress(task)) == 0.0 and x.task.get_status(task) == "pending":
            assert time.time() < deadline
            time.sleep(0.01)
        srv.proc.kill()
        srv.proc.wait()
        srv.proc = None
        print("after kill -9:", sorted(os.listdir(directory)), x_progress(x, task))
        srv.start()
        s = root_session(srv, "after")
        x = s.xenapi
        # The source is intact; every file in the SR is a VDI's, and none is half written.
        assert hashlib.sha256(get_raw(srv, s._session, vdi)[2]).hexdigest() == digest
        locations = {x.VDI.get_location(v) + ".img" for v in x.SR.get_VDIs(local_sr(x))}
        assert set(os.listdir(directory)) <= locations, (os.listdir(directory), locations)
        for v in x.SR.get_VDIs(local_sr(x)):
            if v != vdi and x.VDI.get_virtual_size(v) == str(256 * MIB):
                assert hashlib.sha256(get_raw(srv, s._session, v)[2]).hexdigest() == digest
        assert x.VDI.get_current_operations(vdi) == {}
        assert "destroy" in x.VDI.get_allowed_operations(vdi)
        s.xenapi.session.logout()
        srv.stop()
        replay_verify(srv)
    finally:
        if srv.proc is not None:
            srv.proc.kill()
            srv.proc.wait()
            srv.proc = None
        srv.cleanup()
