"""Starts a real `xenledger serve` process for the interop suites.

The binary comes from $XENLEDGER_BIN (scripts/test-all builds it). The server gets its own data
dir, an HTTPS port, a plain-HTTP port and a unix socket; two extra local users (a read-only one and
a vm-operator) are added with the CLI before the first start.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import http.client
import ssl

import pytest

ROOT_PASSWORD = "interop-root-pw"
USER_PASSWORD = "interop-user-pw"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, seconds=60.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("xenledger serve exited early with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("xenledger serve did not listen on %d" % port)


class ServerProcess:
    def __init__(self):
        self.binary = os.environ.get("XENLEDGER_BIN", "target/debug/xenledger")
        self.workdir = tempfile.mkdtemp(prefix="xlinterop")
        self.data_dir = os.path.join(self.workdir, "data")
        # The Python SDK's UDS transport maps '_' in the host part back to '/', so the socket
        # path must contain no underscore.
        self.sock_dir = "/tmp/xlsock%d%d" % (os.getpid(), random.randrange(10**6))
        os.makedirs(self.sock_dir, exist_ok=True)
        self.unix_path = os.path.join(self.sock_dir, "api.sock")
        self.https_port = free_port()
        self.http_port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.workdir, "server.log")
        self.extra_args = []

    def cli(self, *args, password=None, umask=None):
        env = dict(os.environ)
        if password is not None:
            env["XENLEDGER_PASSWORD"] = password
        preexec = (lambda: os.umask(umask)) if umask is not None else None
        return subprocess.run(
            [self.binary, *args], check=True, env=env, capture_output=True, timeout=60, preexec_fn=preexec
        )

    def start(self, umask=None):
        env = dict(os.environ, XENLEDGER_ROOT_PASSWORD=ROOT_PASSWORD)
        self.log = open(self.log_path, "ab")
        preexec = (lambda: os.umask(umask)) if umask is not None else None
        self.proc = subprocess.Popen(
            [
                self.binary, "serve",
                "--data-dir", self.data_dir,
                "--listen", "127.0.0.1:%d" % self.https_port,
                "--http", "127.0.0.1:%d" % self.http_port,
                "--unix", self.unix_path,
                *self.extra_args,
            ],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=preexec,
        )
        wait_for_port(self.https_port, self.proc)
        wait_for_port(self.http_port, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=30)
            assert code == 0, "xenledger serve exited with %s on SIGTERM" % code
        self.proc = None

    @property
    def https_url(self):
        return "https://127.0.0.1:%d" % self.https_port

    @property
    def http_url(self):
        return "http://127.0.0.1:%d" % self.http_port

    @property
    def unix_url(self):
        return "http://%s/" % self.unix_path.replace("/", "_")

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def cleanup(self):
        shutil.rmtree(self.workdir, ignore_errors=True)
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    def serve_fixture(self, umask=None, show_output=False):
        """Starts the server, yields it, then stops it and removes its files (for fixtures)."""
        self.start(umask=umask)
        try:
            yield self
        finally:
            try:
                self.stop()
            finally:
                if show_output:
                    print(self.output())
                self.cleanup()


@pytest.fixture(scope="session")
def server():
    srv = ServerProcess()
    srv.cli("user", "add", "auditor", "--role", "read-only", "--data-dir", srv.data_dir, password=USER_PASSWORD)
    srv.cli("user", "add", "operator", "--role", "vm-operator", "--data-dir", srv.data_dir, password=USER_PASSWORD)
    yield from srv.serve_fixture(show_output=True)


def simulated_host(speed):
    """A server whose simulated effects take `speed` times a real host's time (module fixtures)."""
    srv = ServerProcess()
    srv.extra_args = ["--sim-speed", str(speed)]
    yield from srv.serve_fixture(show_output=True)


def root_session(srv, originator):
    """An official-SDK session of root over HTTPS."""
    import XenAPI

    s = XenAPI.Session(srv.https_url, ignore_ssl=True)
    s.xenapi.login_with_password("root", ROOT_PASSWORD, "2.21", originator)
    return s


def https_get(srv, path, headers=None):
    """GET over HTTPS (the self-signed certificate unchecked): status, headers, body."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", srv.https_port, context=context, timeout=120)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body
