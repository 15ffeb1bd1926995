"""Shared fixtures: a real `mesa-server` on a loopback port with a fresh data directory.

Binaries come from the directory of $MESAD_BIN (scripts/test.sh sets it to the debug build).
Every process started here is stopped by its pid on every path, failures included.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def bin_path(name):
    return str(Path(os.environ["MESAD_BIN"]).parent / name)


def wait_until(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_mesad(pid_file, timeout=30):
    """SIGTERM the mesad a pid file names (only if that pid is still a mesad), then
    SIGKILL if it has not exited in time."""
    pid_file = Path(pid_file)
    text = pid_file.read_text().strip() if pid_file.exists() else ""
    pid = int(text) if text.isdigit() else 0
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not pid or not cmdline.exists() or b"mesad" not in cmdline.read_bytes():
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while cmdline.exists() and time.time() < deadline:
        time.sleep(0.05)
    if cmdline.exists():
        os.kill(pid, signal.SIGKILL)


def stop_process(process, timeout=20):
    """SIGTERM, then SIGKILL if it has not exited in time."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class MesaServer:
    """One mesa-server process over one data directory; can be stopped and restarted
    on the same port (outage tests)."""

    def __init__(self, root, org="acme"):
        self.root = Path(root)
        self.data = self.root / "server-data"
        self.org = org
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.process = None
        self.log_path = self.root / "server.log"
        init = subprocess.run([bin_path("mesa-server"), "init", "--org", org, "--data", str(self.data)],
                              capture_output=True, text=True, timeout=60, check=True)
        self.admin_key = init.stdout.strip()
        assert self.admin_key.startswith("mesa_"), init.stdout + init.stderr

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [bin_path("mesa-server"), "serve", "--listen", f"127.0.0.1:{self.port}", "--data", str(self.data)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_until(self.answers, 60, f"mesa-server on port {self.port}")

    def stop(self):
        stop_process(self.process)
        self.process = None

    def answers(self):
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"mesa-server exited with {self.process.returncode}: {self.log()}")
        try:
            self.request("GET", "/whoami")
            return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def request(self, method, path, body=None, key=None, accept="application/json"):
        """(status, parsed JSON or raw bytes) of one call; HTTP errors are returned, not raised."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {key or self.admin_key}")
        request.add_header("Accept", accept)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        if accept == "application/json" and payload:
            return status, json.loads(payload)
        return status, payload

    def log(self):
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@pytest.fixture
def tmp_root():
    root = Path(tempfile.mkdtemp(prefix="mesa-py-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mesa_server(tmp_root):
    server = MesaServer(tmp_root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
