"""Raw-wire checks against a real server: the exact shapes docs/clients.md says real clients depend on
(JSON-RPC 1.0 as the C# SDK and XenCenter start, 2.0 as the Go/Java SDKs and xen-api send, and
xapi's XML-RPC envelope), over HTTPS with a plain HTTP client.
"""
import json
import ssl
import urllib.error
import urllib.request

from conftest import ROOT_PASSWORD

CTX = ssl._create_unverified_context()


def post(url, body, content_type):
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, context=CTX, timeout=30) as resp:
        return resp.status, resp.headers.get("Content-Type"), resp.read().decode()


def jsonrpc(server, payload):
    status, ctype, body = post(server.https_url + "/jsonrpc", json.dumps(payload), "application/json")
    assert status == 200
    # Xen Orchestra falls back to XML-RPC unless the type is exactly this (docs/clients.md §2).
    assert ctype == "application/json"
    return json.loads(body), body


def test_jsonrpc_v1_as_the_csharp_sdk_starts(server):
    # 1.0: no "jsonrpc" member; the reply carries "error": null on success (docs/clients.md, C# SDK row).
    reply, _ = jsonrpc(server, {"method": "session.login_with_password",
                                "params": ["root", ROOT_PASSWORD, "2.21", "csharp"], "id": 1})
    assert set(reply) == {"result", "error", "id"}
    assert reply["error"] is None and reply["id"] == 1
    session = reply["result"]
    reply, _ = jsonrpc(server, {"method": "VM.get_record", "params": [session, "OpaqueRef:nope"], "id": 2})
    assert reply["result"] is None
    assert reply["error"] == ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    jsonrpc(server, {"method": "session.logout", "params": [session], "id": 3})


def test_jsonrpc_v2_shapes_and_id_types(server):
    reply, _ = jsonrpc(server, {"jsonrpc": "2.0", "method": "session.login_with_password",
                                "params": ["root", ROOT_PASSWORD], "id": "a1"})
    # 2.0 success has no "error" member at all (async-xenapi and xen-api break on it).
    assert reply == {"jsonrpc": "2.0", "result": reply["result"], "id": "a1"}
    session = reply["result"]
    reply, _ = jsonrpc(server, {"jsonrpc": "2.0", "method": "pool.get_all", "params": [session], "id": 0})
    assert reply["id"] == 0 and len(reply["result"]) == 1
    pool = reply["result"][0]
    reply, _ = jsonrpc(server, {"jsonrpc": "2.0", "method": "pool.add_to_other_config",
                                "params": [session, pool, "memory-ratio-hvm", "x"], "id": 7})
    # 2.0 failure: {"code":1,"message":CODE,"data":[params…]} (docs/xenapi-semantics.md §b).
    assert reply["error"] == {"code": 1, "message": "MAP_DUPLICATE_KEY",
                              "data": ["pool", "other_config", pool, "memory-ratio-hvm"]}
    assert "result" not in reply
    # ints are JSON numbers, not strings, in JSON-RPC.
    host = jsonrpc(server, {"jsonrpc": "2.0", "method": "pool.get_master", "params": [session, pool], "id": 8})[0]["result"]
    major = jsonrpc(server, {"jsonrpc": "2.0", "method": "host.get_API_version_major", "params": [session, host], "id": 9})[0]
    assert major["result"] == 2
    jsonrpc(server, {"jsonrpc": "2.0", "method": "session.logout", "params": [session], "id": 10})


def test_xmlrpc_envelope_exactly_as_xapi(server):
    body = ("<?xml version='1.0'?>\n<methodCall>\n<methodName>session.login_with_password</methodName>\n"
            "<params>\n<param>\n<value><string>root</string></value>\n</param>\n<param>\n<value><string>%s"
            "</string></value>\n</param>\n</params>\n</methodCall>\n" % ROOT_PASSWORD)
    status, ctype, text = post(server.https_url + "/RPC2", body, "text/xml")
    assert status == 200 and ctype == "text/xml"
    # No newline after the declaration, Status first, nothing but two members (docs/clients.md: C SDK, xen-api).
    assert text.startswith('<?xml version="1.0"?><methodResponse><params><param><value><struct>'
                           "<member><name>Status</name><value>Success</value></member>"
                           "<member><name>Value</name><value>OpaqueRef:")
    assert "\n" not in text
    session = text.split("<value>OpaqueRef:")[1].split("</value>")[0]
    call = ("<?xml version=\"1.0\"?><methodCall><methodName>VM.get_by_uuid</methodName><params>"
            "<param><value>OpaqueRef:%s</value></param><param><value>nope</value></param></params></methodCall>" % session)
    _, _, text = post(server.https_url + "/", call, "text/xml")
    assert text == ('<?xml version="1.0"?><methodResponse><params><param><value><struct>'
                    "<member><name>Status</name><value>Failure</value></member>"
                    "<member><name>ErrorDescription</name><value><array><data>"
                    "<value>UUID_INVALID</value><value>VM</value><value>nope</value>"
                    "</data></array></value></member></struct></value></param></params></methodResponse>")
    # system.listMethods: the bare array, no Status/Value struct (docs/xenapi-semantics.md §a.3).
    _, _, text = post(server.https_url + "/",
                      "<?xml version=\"1.0\"?><methodCall><methodName>system.listMethods</methodName><params/></methodCall>",
                      "text/xml")
    assert text.startswith('<?xml version="1.0"?><methodResponse><params><param><value><array><data>')
    assert "<value>VM.get_all_records</value>" in text and "Status" not in text


def test_malformed_bodies_are_http_500(server):
    for path, ctype, body in (("/", "text/xml", "<methodCall><oops"), ("/jsonrpc", "application/json", "{not json")):
        req = urllib.request.Request(server.https_url + path, data=body.encode(), method="POST",
                                     headers={"Content-Type": ctype})
        try:
            urllib.request.urlopen(req, context=CTX, timeout=30)
            raise AssertionError("expected HTTP 500 for " + path)
        except urllib.error.HTTPError as e:
            assert e.code == 500


def test_async_task_takes_subtask_of_and_other_config_headers(server):
    # xapi context.ml of_http_req: `subtask-of` makes the new task a child; X-Http-Other-Config-<k>
    # headers become http:<k> entries in its other_config (docs/xenapi-semantics.md §a.1, §f.2).
    reply, _ = jsonrpc(server, {"jsonrpc": "2.0", "method": "session.login_with_password",
                                "params": ["root", ROOT_PASSWORD], "id": 1})
    session = reply["result"]
    parent = jsonrpc(server, {"jsonrpc": "2.0", "method": "task.create", "params": [session, "parent", ""], "id": 2})[0]["result"]
    body = json.dumps({"jsonrpc": "2.0", "method": "Async.network.create",
                       "params": [session, {"name_label": "hinted", "other_config": {}}], "id": 3})
    req = urllib.request.Request(server.https_url + "/jsonrpc", data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "subtask-of": parent, "X-Http-Other-Config-origin": "raw-test"})
    with urllib.request.urlopen(req, context=CTX, timeout=30) as resp:
        task = json.loads(resp.read())["result"]
    rec = jsonrpc(server, {"jsonrpc": "2.0", "method": "task.get_record", "params": [session, task], "id": 4})[0]["result"]
    assert rec["subtask_of"] == parent
    assert rec["other_config"] == {"http:origin": "raw-test"}
    subtasks = jsonrpc(server, {"jsonrpc": "2.0", "method": "task.get_subtasks", "params": [session, parent], "id": 5})[0]["result"]
    assert subtasks == [task]
    jsonrpc(server, {"jsonrpc": "2.0", "method": "session.logout", "params": [session], "id": 6})


def raw_http(server, request_bytes):
    """One request on a fresh plain-HTTP connection; the status line and the head's headers."""
    import socket
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=30) as s:
        s.sendall(request_bytes)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:] if ":" in line)}
    return int(head[0].split()[1]), headers


def xml_call(method, *params):
    values = "".join("<param><value>%s</value></param>" % p for p in params)
    return '<?xml version="1.0"?><methodCall><methodName>%s</methodName><params>%s</params></methodCall>' % (method, values)


def test_the_edges_both_wires_agree_on(server):
    """docs/differences.md: what one wire accepts, the other reads back identically."""
    session = jsonrpc(server, {"jsonrpc": "2.0", "method": "session.login_with_password",
                               "params": ["root", ROOT_PASSWORD], "id": 1})[0]["result"]
    task = jsonrpc(server, {"jsonrpc": "2.0", "method": "task.create", "params": [session, "edges", ""], "id": 2})[0]["result"]
    net = jsonrpc(server, {"jsonrpc": "2.0", "method": "network.create",
                           "params": [session, {"name_label": "edges", "other_config": {}}], "id": 6})[0]["result"]
    # A raw NUL or other control character in an XML string, and a non-finite double: refused (HTTP 500).
    for value in ("a\x00b", "a\x1bb"):
        body = xml_call("network.set_name_description", session, net, value)
        try:
            post(server.https_url, body, "text/xml")
            raise AssertionError("accepted %r" % value)
        except urllib.error.HTTPError as e:
            assert e.code == 500
    for value in ("nan", "-inf", "1e999999"):
        body = xml_call("task.set_progress", session, task, "<double>%s</double>" % value)
        try:
            post(server.https_url, body, "text/xml")
            raise AssertionError("accepted %r" % value)
        except urllib.error.HTTPError as e:
            assert e.code == 500
    # The same control character escaped in JSON is refused too.
    req = urllib.request.Request(server.https_url + "/jsonrpc", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"jsonrpc": "2.0", "method": "network.set_name_description",
                                                  "params": [session, net, "a\u0001b"], "id": 3}).encode())
    try:
        urllib.request.urlopen(req, context=CTX, timeout=30)
        raise AssertionError("JSON accepted a control character")
    except urllib.error.HTTPError as e:
        assert e.code == 500
    # An ISO-8859-1 body is read by its declaration; both wires read the value back alike.
    body = xml_call("network.set_name_description", session, net, "caf\xe9").replace(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="ISO-8859-1"?>').encode("latin-1")
    req = urllib.request.Request(server.https_url, data=body, method="POST", headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(req, context=CTX, timeout=30) as resp:
        assert b"Success" in resp.read()
    reply = jsonrpc(server, {"jsonrpc": "2.0", "method": "network.get_name_description", "params": [session, net], "id": 4})[0]
    assert reply["result"] == "caf\u00e9"
    _, _, xml = post(server.https_url, xml_call("network.get_name_description", session, net), "text/xml")
    assert "caf\u00e9" in xml
    jsonrpc(server, {"jsonrpc": "2.0", "method": "session.logout", "params": [session], "id": 5})


def test_http_edges(server):
    # RPC replies say keep-alive, as xapi's do.
    body = xml_call("system.listMethods").encode()
    status, headers = raw_http(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert status == 200 and headers.get("connection") == "keep-alive"
    # A transfer coding other than chunked: 501 (RFC 9112 §6.1).
    status, _ = raw_http(server, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
    assert status == 501
    # Over the body limit, by Content-Length: 413 at once (docs/differences.md).
    status, _ = raw_http(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 400000\r\n\r\n<methodCall>")
    assert status == 413
    # No page over plain HTTP (xapi's website_https_only).
    status, _ = raw_http(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 403


def test_console_constructor_is_refused_as_xapi_refuses_it(server):
    # ocaml/xapi/api_server_common.ml: Console.create and Console.destroy are not_implemented.
    session = jsonrpc(server, {"jsonrpc": "2.0", "method": "session.login_with_password",
                               "params": ["root", ROOT_PASSWORD], "id": 1})[0]["result"]
    reply = jsonrpc(server, {"jsonrpc": "2.0", "method": "console.create",
                             "params": [session, {"other_config": {}}], "id": 2})[0]
    assert reply["error"] == {"code": 1, "message": "NOT_IMPLEMENTED", "data": ["Console.create"]}
    jsonrpc(server, {"jsonrpc": "2.0", "method": "session.logout", "params": [session], "id": 3})


def test_a_large_reply_is_streamed_and_whole_on_both_wires(server):
    """A reply of 1,024 entries or more is sent as it is encoded (chunked, no Content-Length); the
    official SDK over XML-RPC and a plain client over JSON-RPC must still read it whole.
    `role.get_all_records` is one: xapi's static role table holds a role per permission."""
    from conftest import root_session

    s = root_session(server, "interop-large-reply")
    try:
        refs = s.xenapi.role.get_all()
        assert len(refs) >= 1024, len(refs)
        records = s.xenapi.role.get_all_records()
        assert sorted(records) == sorted(refs)
        some = refs[len(refs) // 2]
        assert records[some] == s.xenapi.role.get_record(some)
        session = s._session
    except BaseException:
        s.xenapi.session.logout()
        raise
    body = json.dumps({"jsonrpc": "2.0", "method": "role.get_all_records", "params": [session], "id": 5})
    req = urllib.request.Request(server.https_url + "/jsonrpc", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=CTX, timeout=60) as resp:
        assert resp.headers.get("Transfer-Encoding") == "chunked" and resp.headers.get("Content-Length") is None
        assert resp.headers.get("Content-Type") == "application/json"
        reply = json.loads(resp.read().decode())
    assert reply["id"] == 5 and sorted(reply["result"]) == sorted(refs)
    assert reply["result"][some]["name_label"] == records[some]["name_label"]
    s.xenapi.session.logout()
