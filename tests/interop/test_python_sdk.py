"""The official XenAPI Python SDK (PyPI `XenAPI`) against a real xenledger process.

Expectations come from the reference notes docs/clients.md §1 (what the SDK sends and needs) and
docs/xenapi-semantics.md §a–§d (error codes and their parameters).
"""
import xmlrpc.client

import pytest
import XenAPI

from conftest import ROOT_PASSWORD, USER_PASSWORD


def login(url, user="root", password=ROOT_PASSWORD, **kw):
    s = XenAPI.Session(url, ignore_ssl=True, **kw) if url.startswith("https") else XenAPI.Session(url, **kw)
    s.xenapi.login_with_password(user, password, "1.0", "xenledger-interop")
    return s


def network_record(label):
    # network.create: only other_config is mandatory (docs/xenapi-semantics.md §d.3).
    return {"name_label": label, "name_description": "interop", "other_config": {}}


def vm_record(label):
    # The mandatory VM constructor members (docs/xenapi-semantics.md §d.3).
    return {
        "name_label": label, "user_version": "1", "is_a_template": False, "affinity": "OpaqueRef:NULL",
        "memory_static_max": str(1 << 30), "memory_dynamic_max": str(1 << 30),
        "memory_dynamic_min": str(1 << 29), "memory_static_min": str(1 << 29),
        "VCPUs_params": {}, "VCPUs_max": "1", "VCPUs_at_startup": "1",
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "restart", "PV_bootloader": "", "PV_kernel": "", "PV_ramdisk": "",
        "PV_args": "", "PV_bootloader_args": "", "PV_legacy_args": "", "HVM_boot_policy": "BIOS order",
        "HVM_boot_params": {"order": "dc"}, "platform": {}, "PCI_bus": "", "other_config": {},
        "recommendations": "",
    }


def failure(call, *args):
    with pytest.raises(XenAPI.Failure) as info:
        call(*args)
    return info.value.details


def test_login_with_originator_and_connect_time_reads(server):
    s = login(server.https_url)
    try:
        pools = s.xenapi.pool.get_all()
        assert len(pools) == 1
        master = s.xenapi.pool.get_master(pools[0])
        sv = s.xenapi.host.get_software_version(master)
        # The Go SDK refuses to log in without software_version.xapi (docs/clients.md summary table).
        assert "xapi" in sv and "product_version" in sv
        assert int(s.xenapi.host.get_API_version_major(master)) == 2
        this_host = s.xenapi.session.get_this_host(s.handle)
        assert this_host == master
        rec = s.xenapi.session.get_record(s.handle)
        assert rec["originator"] == "xenledger-interop"
        assert rec["auth_user_name"] == "root"
        # The SDK's own API_version property reads pool/host (docs/clients.md §1).
        assert s.API_version.startswith("2.")
        records = s.xenapi.pool.get_all_records()
        assert list(records) == pools
        # The host's control domain, as on a fresh xapi host (docs/xenapi-semantics.md §i).
        dom0 = s.xenapi.host.get_control_domain(master)
        rec = s.xenapi.VM.get_record(dom0)
        assert rec["is_control_domain"] is True and rec["power_state"] == "Running"
        assert rec["resident_on"] == master and rec["domid"] == "0"
        assert sorted(s.xenapi.console.get_protocol(c) for c in rec["consoles"]) == ["rfb", "vt100"]
        assert dom0 in s.xenapi.host.get_resident_VMs(master)
        assert len(s.xenapi.host.get_host_CPUs(master)) >= 1
    finally:
        s.xenapi.session.logout()


def test_vm_get_all_records_and_create_set_get_destroy(server):
    s = login(server.https_url)
    try:
        before = s.xenapi.VM.get_all_records()
        assert isinstance(before, dict)
        vm = s.xenapi.VM.create(vm_record("interop-vm"))
        assert vm.startswith("OpaqueRef:")
        rec = s.xenapi.VM.get_record(vm)
        assert rec["name_label"] == "interop-vm"
        assert rec["power_state"] == "Halted"
        # int64 fields arrive as strings, as xapi sends them (docs/xenapi-semantics.md §a.4).
        assert rec["memory_static_max"] == str(1 << 30)
        assert s.xenapi.VM.get_by_uuid(rec["uuid"]) == vm
        assert vm in s.xenapi.VM.get_by_name_label("interop-vm")
        s.xenapi.VM.set_name_label(vm, "renamed")
        assert s.xenapi.VM.get_name_label(vm) == "renamed"
        s.xenapi.VM.add_to_other_config(vm, "k", "v")
        other = s.xenapi.VM.get_other_config(vm)
        # VM.create adds a mac_seed (xapi_vm.ml `create`, docs/xenapi-semantics.md §g.3).
        assert other.pop("mac_seed")
        assert other == {"k": "v"}
        assert s.xenapi.VM_metrics.get_uuid(s.xenapi.VM.get_metrics(vm))
        assert failure(s.xenapi.VM.add_to_other_config, vm, "k", "w") == ["MAP_DUPLICATE_KEY", "VM", "other_config", vm, "k"]
        assert vm in s.xenapi.VM.get_all_records_where('field "name__label" = "renamed"')
        s.xenapi.VM.destroy(vm)
        assert failure(s.xenapi.VM.get_record, vm) == ["HANDLE_INVALID", "VM", vm]
    finally:
        s.xenapi.session.logout()


def test_relations_and_errors(server):
    s = login(server.https_url)
    try:
        net = s.xenapi.network.create(network_record("interop-net"))
        vm = s.xenapi.VM.create(vm_record("vif-owner"))
        vif = s.xenapi.VIF.create({
            "device": "0", "network": net, "VM": vm, "MAC": "aa:bb:cc:dd:ee:ff", "MTU": "1500",
            "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {},
        })
        assert s.xenapi.VM.get_VIFs(vm) == [vif]
        assert s.xenapi.network.get_VIFs(net) == [vif]
        s.xenapi.VIF.destroy(vif)
        assert s.xenapi.VM.get_VIFs(vm) == []
        assert failure(s.xenapi.VM.get_by_uuid, "no-such-uuid") == ["UUID_INVALID", "VM", "no-such-uuid"]
        assert failure(s.xenapi.network.get_record, "OpaqueRef:nope") == ["HANDLE_INVALID", "network", "OpaqueRef:nope"]
        details = failure(s.xenapi.VM.set_name_label, vm)
        assert details == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.set_name_label", "2", "1"]
        details = failure(s.xenapi.VM.set_is_a_template, vm, "yes")
        assert details[0] == "FIELD_TYPE_ERROR"
        assert failure(s.xenapi.VM.no_such_message, vm) == ["MESSAGE_METHOD_UNKNOWN", "VM.no_such_message"]
        s.xenapi.VM.destroy(vm)
        s.xenapi.network.destroy(net)
    finally:
        s.xenapi.session.logout()


def test_bad_password_is_authentication_failure(server):
    s = XenAPI.Session(server.https_url, ignore_ssl=True)
    details = failure(s.xenapi.login_with_password, "root", "wrong", "1.0", "x")
    assert details[0] == "SESSION_AUTHENTICATION_FAILED"


def test_logged_out_session_triggers_sdk_relogin(server):
    s = login(server.https_url)
    old = s.handle
    # Log the session out behind the SDK's back, with a raw XML-RPC client.
    import ssl
    raw = xmlrpc.client.ServerProxy(server.https_url, context=ssl._create_unverified_context())
    out = raw.session.logout(old)
    assert out["Status"] == "Success"
    assert raw.pool.get_all(old)["ErrorDescription"] == ["SESSION_INVALID", old]
    # The SDK sees SESSION_INVALID, logs in again with its saved credentials and retries.
    assert len(s.xenapi.pool.get_all()) == 1
    assert s.handle != old
    s.xenapi.session.logout()


def test_read_only_user_can_read_and_is_denied_writes(server):
    s = login(server.https_url, user="auditor", password=USER_PASSWORD)
    try:
        pool = s.xenapi.pool.get_all()[0]
        assert s.xenapi.pool.get_record(pool)["master"].startswith("OpaqueRef:")
        details = failure(s.xenapi.pool.set_name_label, pool, "nope")
        assert details[0] == "RBAC_PERMISSION_DENIED"
        assert details[1] == "pool.set_name_label"
        details = failure(s.xenapi.network.create, network_record("denied"))
        assert details[:2] == ["RBAC_PERMISSION_DENIED", "network.create"]
        assert s.xenapi.session.get_is_local_superuser(s.handle) is False
    finally:
        s.xenapi.session.logout()


def test_plain_http_listener(server):
    s = login(server.http_url)
    try:
        assert len(s.xenapi.pool.get_all()) == 1
    finally:
        s.xenapi.session.logout()


def test_unix_socket_trusts_local_root(server):
    # As xapi_local(): HTTP over a unix socket, no password check (docs/xenapi-semantics.md §a.1).
    s = XenAPI.Session(server.unix_url, transport=XenAPI.UDSTransport())
    s.xenapi.login_with_password("root", "", "1.0", "local")
    try:
        assert len(s.xenapi.pool.get_all()) == 1
        assert s.xenapi.session.get_is_local_superuser(s.handle) is True
    finally:
        s.xenapi.session.logout()


def test_state_survives_restart(server):
    s = login(server.https_url)
    net = s.xenapi.network.create(network_record("durable-net"))
    s.xenapi.session.logout()
    server.stop()
    server.start()
    s = login(server.https_url)
    try:
        assert s.xenapi.network.get_name_label(net) == "durable-net"
        s.xenapi.network.destroy(net)
    finally:
        s.xenapi.session.logout()
