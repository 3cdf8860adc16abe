"""The page at GET / (xapi serves its web client there), in a real headless browser: Debian's
Chromium driven by playwright-core (tests/interop/web/drive.mjs). It logs in over JSON-RPC,
shows the VMs, hosts and SRs, and follows a VM's rename through event.from. Plain HTTP gets no
page, as xapi's `website_https_only` (ocaml/xapi/fileserver.ml).
"""
import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import ROOT_PASSWORD, root_session

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB_DIR = os.path.join("tests", "interop", "web")
CHROMIUM = "/usr/bin/chromium"


def _installed():
    try:
        with open(os.path.join(REPO_ROOT, WEB_DIR, "node_modules", "playwright-core", "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="module")
def web_dir():
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail("%s (Node.js) is required for the web page test and is not on PATH" % tool)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("Debian's chromium is required at %s (scripts/test-all installs it)" % CHROMIUM)
    with open(os.path.join(REPO_ROOT, WEB_DIR, "package.json")) as f:
        wanted = json.load(f)["dependencies"]["playwright-core"]
    if _installed() != wanted:
        proc = subprocess.run(["npm", "ci", "--prefix", WEB_DIR, "--no-audit", "--no-fund"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, "npm ci failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    return WEB_DIR


def test_the_page_is_served_over_https_only(server):
    context = ssl._create_unverified_context()
    with urllib.request.urlopen(server.https_url + "/", context=context) as reply:
        assert reply.status == 200
        assert reply.headers["content-type"].startswith("text/html")
        assert b"event.from" in reply.read()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(server.http_url + "/")
    assert e.value.code == 403


def test_a_browser_logs_in_and_sees_a_rename_arrive(server, web_dir):
    x = root_session(server, "web-test").xenapi
    template = x.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = x.VM.clone(template, "web <b>before</b>")
    x.VM.set_is_a_template(vm, False)
    proc = subprocess.Popen(
        ["node", os.path.join(web_dir, "drive.mjs"), server.https_url + "/", ROOT_PASSWORD,
         "web <b>before</b>", "web after"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY "), "drive.mjs: %r\n%s" % (line, proc.stderr.read())
        # The row is the VM's, and its name was shown as text, not markup.
        assert line.split()[1] == vm
        x.VM.set_name_label(vm, "web after")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "SEEN" in out, out + err
    finally:
        if proc.poll() is None:
            proc.kill()
        x.VM.destroy(vm)
