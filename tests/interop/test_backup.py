"""Audit on a live server: `GET /xenledger/backup` serves a consistent copy of the log while the
server runs, and `xenledger-replay` reads the copy like a data dir (src/node/backup.rs). The copy
needs xapi's permission for its database dump, `http/get_pool_xml_db_sync` (pool-admin; the
roles are in xapi's ocaml/idl/datamodel.ml http_actions), and holds no session ref in clear.
"""
import base64
import os
import subprocess
import tempfile
import uuid

import XenAPI

from conftest import ROOT_PASSWORD, USER_PASSWORD, https_get as get


def replay(srv, *args):
    binary = os.path.join(os.path.dirname(srv.binary), "xenledger-replay")
    done = subprocess.run([binary, *args], capture_output=True, timeout=300, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_live_servers_copy_replays_while_it_runs(server):
    s = XenAPI.Session(server.https_url, ignore_ssl=True)
    s.xenapi.login_with_password("root", ROOT_PASSWORD, "2.21", "backup test")
    label = "backup-%s" % uuid.uuid4()
    s.xenapi.network.create({"name_label": label, "name_description": "backup", "other_config": {}})
    status, headers, body = get(server, "/xenledger/backup?session_id=%s" % s._session)
    assert status == 200, body[:300]
    assert headers["content-type"] == "application/octet-stream"
    assert int(headers["content-length"]) == len(body)
    assert s._session.encode() not in body
    with tempfile.TemporaryDirectory() as copy:
        with open(os.path.join(copy, "xenledger.redb"), "wb") as f:
            f.write(body)
        checked = int(replay(server, "verify", copy).split("entries checked: ")[1].split()[0])
        assert checked > 0
        log = replay(server, "log", copy)
        assert label in log and s._session not in log
    # The server runs on, and a second copy holds what came after the first.
    s.xenapi.network.set_name_label(s.xenapi.network.get_by_name_label(label)[0], label + "-renamed")
    status, _, again = get(server, "/xenledger/backup?session_id=%s" % s._session)
    assert status == 200 and len(again) >= len(body) - 4096
    with tempfile.TemporaryDirectory() as copy:
        with open(os.path.join(copy, "xenledger.redb"), "wb") as f:
            f.write(again)
        assert label + "-renamed" in replay(server, "log", copy)
    # Nothing is left in the data dir.
    assert not [f for f in os.listdir(server.data_dir) if f.startswith("backup-")]
    s.xenapi.session.logout()


def test_the_copy_needs_pool_admin(server):
    auditor = XenAPI.Session(server.https_url, ignore_ssl=True)
    auditor.xenapi.login_with_password("auditor", USER_PASSWORD, "2.21", "backup test")
    status, _, body = get(server, "/xenledger/backup?session_id=%s" % auditor._session)
    assert status == 403 and b"http/get_pool_xml_db_sync" in body, body
    auditor.xenapi.session.logout()
    status, headers, _ = get(server, "/xenledger/backup")
    assert status == 401 and headers.get("www-authenticate", "").startswith("Basic")
    basic = base64.b64encode(("root:" + ROOT_PASSWORD).encode()).decode()
    status, _, body = get(server, "/xenledger/backup", {"Authorization": "Basic " + basic})
    assert status == 200 and len(body) > 0
