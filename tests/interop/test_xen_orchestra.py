"""Xen Orchestra's connector, the real npm package `xen-api` 4.7.6, against a real xenledger process.

The scenario lives in tests/interop/xo/scenario.mjs (see its header): connect the way Xen
Orchestra does and load every class, watch a network being created / renamed / destroyed by a
second client, then survive a `session.logout` of its session behind its back. This test only
installs the pinned package (npm ci from the committed package-lock.json, when node_modules is
missing or stale) and runs the script with Node.js against the session's server.
"""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT_PASSWORD

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XO_DIR = os.path.join("tests", "interop", "xo")
XEN_API_VERSION = "4.7.6"
SCENARIO_TIMEOUT = 120


def _installed_xen_api_version():
    try:
        with open(os.path.join(REPO_ROOT, XO_DIR, "node_modules", "xen-api", "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="module")
def xo_dir():
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail("%s (Node.js) is required for the Xen Orchestra interop test and is not on PATH" % tool)
    if _installed_xen_api_version() != XEN_API_VERSION:
        proc = subprocess.run(
            ["npm", "ci", "--prefix", XO_DIR, "--no-audit", "--no-fund"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, "npm ci --prefix %s failed (%s):\n%s\n%s" % (
            XO_DIR, proc.returncode, proc.stdout, proc.stderr)
        assert _installed_xen_api_version() == XEN_API_VERSION, "npm ci did not install xen-api %s" % XEN_API_VERSION
    return XO_DIR


def test_xen_orchestra_xen_api_connects_watches_and_recovers(server, xo_dir):
    try:
        proc = subprocess.run(
            ["node", os.path.join(xo_dir, "scenario.mjs"), server.https_url, ROOT_PASSWORD],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
        pytest.fail("scenario.mjs did not finish within %ds\n--- stdout\n%s\n--- stderr\n%s" % (
            SCENARIO_TIMEOUT, text(e.stdout), text(e.stderr)))
    print(proc.stdout)
    print(proc.stderr)
    assert proc.returncode == 0, "xen-api %s scenario failed (exit %s)\n--- stdout\n%s\n--- stderr\n%s" % (
        XEN_API_VERSION, proc.returncode, proc.stdout, proc.stderr)
