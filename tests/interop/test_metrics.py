"""`GET /metrics` (src/node/metrics.rs) read by the Prometheus project's own Python client's
OpenMetrics parser: calls by method and outcome, call latency, the log, sessions, parked
`event.from` waiters, tasks by status, connections. Restricted as xapi restricts its statistics
(`http/get_host_rrds`, every role from read-only up; xapi ocaml/idl/datamodel.ml http_actions):
credentials needed, Basic checked without making a session.
"""
import base64
import threading
import time

import XenAPI
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import ROOT_PASSWORD, USER_PASSWORD, https_get as get


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}


def scrape(srv, headers):
    status, head, body = get(srv, "/metrics", headers)
    assert status == 200, body[:300]
    assert head["content-type"].startswith("application/openmetrics-text")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def test_metrics_count_calls_and_read_the_server(server):
    s = XenAPI.Session(server.https_url, ignore_ssl=True)
    s.xenapi.login_with_password("root", ROOT_PASSWORD, "2.21", "metrics test")
    before = scrape(server, basic("root", ROOT_PASSWORD))
    sessions_before = value(before, "xenledger_sessions")
    for _ in range(3):
        s.xenapi.pool.get_all()
    try:
        s.xenapi.VM.get_record("OpaqueRef:00000000-0000-0000-0000-000000000bad")
    except XenAPI.Failure as e:
        assert e.details[0] == "HANDLE_INVALID"
    task = s.xenapi.Async.network.create({"name_label": "metrics", "name_description": "", "other_config": {}})
    deadline = time.time() + 30
    while s.xenapi.task.get_status(task) == "pending":
        assert time.time() < deadline
        time.sleep(0.05)
    # A waiter parked in event.from on a session of its own.
    waiter = XenAPI.Session(server.https_url, ignore_ssl=True)
    waiter.xenapi.login_with_password("root", ROOT_PASSWORD, "2.21", "metrics waiter")
    token = waiter.xenapi.event_from(["pool"], "", 0.0)["token"]
    parked = threading.Thread(target=lambda: waiter.xenapi.event_from(["pool"], token, 3.0))
    parked.start()
    time.sleep(1.0)
    after = scrape(server, basic("auditor", USER_PASSWORD))
    parked.join()
    pool_calls = value(after, "xenledger_calls_total", method="pool.get_all", outcome="success")
    assert pool_calls - value(before, "xenledger_calls_total", method="pool.get_all", outcome="success") >= 3
    assert value(after, "xenledger_calls_total", method="VM.get_record", outcome="HANDLE_INVALID") >= 1
    assert value(after, "xenledger_calls_total", method="Async.network.create", outcome="success") >= 1
    assert value(after, "xenledger_call_seconds_count", method="pool.get_all") >= pool_calls
    assert value(after, "xenledger_tasks", status="success") >= 1
    assert value(after, "xenledger_event_waiters") >= 1
    assert value(after, "xenledger_sessions") >= sessions_before + 1
    assert value(after, "xenledger_log_entries") > value(before, "xenledger_log_entries")
    assert value(after, "xenledger_log_bytes") > 0
    assert value(after, "xenledger_connections") >= 1
    assert value(after, "xenledger_checkpoint_age_seconds") >= 0
    # No session ref, nor any caller's name, is in the figures.
    status, _, body = get(server, "/metrics", basic("root", ROOT_PASSWORD))
    assert s._session.encode() not in body and waiter._session.encode() not in body
    waiter.xenapi.session.logout()
    s.xenapi.session.logout()


def test_metrics_need_credentials(server):
    status, headers, _ = get(server, "/metrics")
    assert status == 401 and headers.get("www-authenticate", "").startswith("Basic")
    status, _, _ = get(server, "/metrics", basic("root", "wrong"))
    assert status == 401
    s = XenAPI.Session(server.https_url, ignore_ssl=True)
    s.xenapi.login_with_password("operator", USER_PASSWORD, "2.21", "metrics test")
    status, _, body = get(server, "/metrics?session_id=%s" % s._session)
    assert status == 200 and b"xenledger_calls_total" in body
    s.xenapi.session.logout()
