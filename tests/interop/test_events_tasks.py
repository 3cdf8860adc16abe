"""Events and tasks through the official Python SDK against a real xenledger process.

Ports of the xapi quicktest event checks (ocaml/quicktest/quicktest_event.ml, as summarised in
docs/xenapi-semantics.md §e and §l) and the Async/task flow of §f (quicktest_async_calls.ml reads the
ref out of task.result by splitting on <value>).
"""
import threading
import time
import xmlrpc.client

import XenAPI

from test_python_sdk import login, network_record, vm_record

TOKEN_LEN = 41  # "%020d,%020d"


def event_from(s, classes, token, timeout):
    return s.xenapi.event_from(classes, token, timeout)


def test_empty_token_lists_each_object_once(server):
    s = login(server.https_url)
    try:
        r = event_from(s, ["*"], "", 0.0)
        assert set(r) == {"events", "valid_ref_counts", "token"}
        assert len(r["token"]) == TOKEN_LEN
        refs = [e["ref"] for e in r["events"]]
        assert len(refs) == len(set(refs))
        pool = s.xenapi.pool.get_all()[0]
        assert any(e["ref"] == pool and e["class"] == "pool" and e["operation"] == "add" for e in r["events"])
        # valid_ref_counts values are the one XML-RPC <i4> xapi sends, so Python sees ints
        # (docs/xenapi-semantics.md §a.4).
        assert r["valid_ref_counts"]["pool"] == 1
        for e in r["events"]:
            assert isinstance(e["id"], str) and "snapshot" in e
    finally:
        s.xenapi.session.logout()


def test_pool_other_config_change_seen_by_event_from_and_next(server):
    s = login(server.https_url)
    try:
        pool = s.xenapi.pool.get_all()[0]
        token = event_from(s, ["pool"], "", 0.0)["token"]
        s.xenapi.event.register(["pool"])
        key = "quicktest-%d" % time.time_ns()
        s.xenapi.pool.add_to_other_config(pool, key, "1")
        r = event_from(s, ["pool"], token, 5.0)
        mods = [e for e in r["events"] if e["ref"] == pool and e["operation"] == "mod"]
        assert len(mods) == 1 and mods[0]["snapshot"]["other_config"][key] == "1"
        events = s.xenapi.event.next()
        assert any(e["ref"] == pool and e["class"] == "pool" for e in events)
        s.xenapi.pool.remove_from_other_config(pool, key)
        s.xenapi.event.unregister(["pool"])
    finally:
        s.xenapi.session.logout()


def test_single_object_subscription_and_delete(server):
    s = login(server.https_url)
    try:
        a = s.xenapi.VM.create(vm_record("ev-a"))
        b = s.xenapi.VM.create(vm_record("ev-b"))
        token = event_from(s, ["vm"], "", 0.0)["token"]
        s.xenapi.VM.set_name_label(a, "ev-a2")
        s.xenapi.VM.set_name_label(b, "ev-b2")
        s.xenapi.VM.set_name_label(a, "ev-a3")
        r = event_from(s, ["vm/%s" % a], token, 5.0)
        assert [e["ref"] for e in r["events"]] == [a]
        # Several changes to one object come back as one event with the latest snapshot.
        assert r["events"][0]["snapshot"]["name_label"] == "ev-a3"
        token = r["token"]
        s.xenapi.VM.destroy(b)
        r = event_from(s, ["VM"], token, 5.0)
        dels = [e for e in r["events"] if e["ref"] == b]
        assert len(dels) == 1 and dels[0]["operation"] == "del" and "snapshot" not in dels[0]
        s.xenapi.VM.destroy(a)
    finally:
        s.xenapi.session.logout()


def test_inject_wakes_a_waiter_and_concurrent_calls_do_not_disturb(server):
    s = login(server.https_url)
    try:
        pool = s.xenapi.pool.get_all()[0]
        token = event_from(s, ["pool"], "", 0.0)["token"]
        results = {}

        def wait(name, classes):
            s2 = XenAPI.Session(server.https_url, ignore_ssl=True)
            s2._session = s.handle  # the same session, two concurrent calls
            results[name] = s2.xenapi.event_from(classes, token, 10.0)

        t1 = threading.Thread(target=wait, args=("pool", ["pool"]))
        t2 = threading.Thread(target=wait, args=("all", ["*"]))
        t1.start(); t2.start()
        time.sleep(0.5)
        started = time.time()
        new_token = s.xenapi.event.inject("pool", pool)
        assert len(new_token) == TOKEN_LEN
        t1.join(10); t2.join(10)
        assert time.time() - started < 5.0
        for name in ("pool", "all"):
            assert any(e["ref"] == pool and e["operation"] == "mod" for e in results[name]["events"]), name
    finally:
        s.xenapi.session.logout()


def test_token_survives_restart_and_misses_nothing(server):
    s = login(server.https_url)
    net = s.xenapi.network.create(network_record("before-restart"))
    token = event_from(s, ["network"], "", 0.0)["token"]
    s.xenapi.session.logout()
    server.stop()
    server.start()
    s = login(server.https_url)
    try:
        s.xenapi.network.set_name_label(net, "after-restart")
        r = event_from(s, ["network"], token, 5.0)
        assert [(e["ref"], e["operation"]) for e in r["events"]] == [(net, "mod")]
        s.xenapi.network.destroy(net)
    finally:
        s.xenapi.session.logout()


def test_bad_token_is_a_parse_failure(server):
    s = login(server.https_url)
    try:
        try:
            event_from(s, ["*"], "garbage", 0.0)
            raise AssertionError("expected a failure")
        except XenAPI.Failure as f:
            assert f.details == ["EVENT_FROM_TOKEN_PARSE_FAILURE", "garbage"]
    finally:
        s.xenapi.session.logout()


def test_async_call_and_task_polling(server):
    s = login(server.https_url)
    try:
        task = s.xenapi.Async.network.create(network_record("async-net"))
        assert task.startswith("OpaqueRef:")
        deadline = time.time() + 10
        while s.xenapi.task.get_status(task) == "pending" and time.time() < deadline:
            time.sleep(0.05)
        rec = s.xenapi.task.get_record(task)
        assert rec["status"] == "success"
        assert rec["name_label"] == "Async.network.create"
        assert float(rec["progress"]) == 1.0
        net = rec["result"].split("<value>")[1].split("</value>")[0]
        assert s.xenapi.network.get_name_label(net) == "async-net"
        failed = s.xenapi.Async.network.destroy("OpaqueRef:missing")
        while s.xenapi.task.get_status(failed) == "pending":
            time.sleep(0.05)
        assert s.xenapi.task.get_error_info(failed) == ["HANDLE_INVALID", "network", "OpaqueRef:missing"]
        assert s.xenapi.task.get_status(failed) == "failure"
        s.xenapi.task.destroy(task)
        s.xenapi.task.destroy(failed)
        s.xenapi.network.destroy(net)
    finally:
        s.xenapi.session.logout()


def test_message_events_add_and_del(server):
    """quicktest_event.ml `event_message_test`: a new message is seen as `add` (with its record),
    a destroyed one as `del`, and an empty token does not bring a destroyed message back. Message
    events carry id "0" (docs/xenapi-semantics.md §e.2)."""
    s = login(server.https_url)
    try:
        pool = s.xenapi.pool.get_all()[0]
        pool_uuid = s.xenapi.pool.get_uuid(pool)
        token = event_from(s, ["message"], "", 0.0)["token"]
        msg = s.xenapi.message.create("quicktest_event", "5", "Pool", pool_uuid, "body")
        r = event_from(s, ["message"], token, 5.0)
        adds = [e for e in r["events"] if e["ref"] == msg]
        assert len(adds) == 1 and adds[0]["operation"] == "add" and adds[0]["id"] == "0"
        assert adds[0]["snapshot"]["name"] == "quicktest_event" and adds[0]["snapshot"]["body"] == "body"
        token = r["token"]
        s.xenapi.message.destroy(msg)
        r = event_from(s, ["message"], token, 5.0)
        dels = [e for e in r["events"] if e["ref"] == msg]
        assert len(dels) == 1 and dels[0]["operation"] == "del" and "snapshot" not in dels[0]
        everything = event_from(s, ["message"], "", 0.0)
        assert msg not in [e["ref"] for e in everything["events"]]
        # The multi-message part: two new messages come in one batch, a third in the next alone.
        token = everything["token"]
        m1, m2 = (s.xenapi.message.create("test", "1", "Pool", pool_uuid, "Hello") for _ in range(2))
        r = event_from(s, ["message"], token, 5.0)
        assert {(e["ref"], e["operation"]) for e in r["events"]} == {(m1, "add"), (m2, "add")}
        m3 = s.xenapi.message.create("test", "1", "Pool", pool_uuid, "Hello")
        r2 = event_from(s, ["message"], r["token"], 5.0)
        assert [(e["ref"], e["operation"]) for e in r2["events"]] == [(m3, "add")]
        for_pool = s.xenapi.message.get("Pool", pool_uuid, xmlrpc.client.DateTime("19700101T00:00:00Z"))
        assert {m1, m2, m3} <= set(for_pool)
        for m in (m1, m2, m3):
            s.xenapi.message.destroy(m)
    finally:
        s.xenapi.session.logout()
