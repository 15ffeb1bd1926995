"""An independently written JSON-RPC client (python-lsp-jsonrpc, from PyPI) talks to
`mesad --stdio`: LSP base-protocol framing, string request ids, initialize, methods,
error objects with data.errorClass, shutdown and exit.

The mesad binary comes from $MESAD_BIN (scripts/test.sh sets it). Each test runs
mesad in a fresh temporary HOME, with a hard timeout, and kills it on every path.
"""

import os
import subprocess
import threading

import pytest
from pylsp_jsonrpc.endpoint import Endpoint
from pylsp_jsonrpc.exceptions import JsonRpcException
from pylsp_jsonrpc.streams import JsonRpcStreamReader, JsonRpcStreamWriter

TIMEOUT = 30  # seconds, for any single answer or exit

METHODS = {
    "initialize", "initialized", "shutdown", "exit", "whoami", "listOrgs", "listRepos",
    "getRepo", "createRepo", "deleteRepo", "createEphemeralKey", "listKeys", "revokeKey",
}


class Session:
    """mesad --stdio driven through pylsp_jsonrpc's Endpoint and stream reader/writer."""

    def __init__(self, binary, home):
        env = {
            "HOME": str(home),
            "MESA_RUNTIME_DIR": str(home / "run"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        self.stderr_path = home / "mesad.stderr"
        self.stderr = open(self.stderr_path, "wb")
        self.process = subprocess.Popen(
            [binary, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, env=env,
        )
        self.notifications = []
        self.writer = JsonRpcStreamWriter(self.process.stdin)
        self.reader = JsonRpcStreamReader(self.process.stdout)
        dispatcher = {
            "window/logMessage": self.notifications.append,
            "$/progress": self.notifications.append,
        }
        self.endpoint = Endpoint(dispatcher, self.writer.write)
        self.thread = threading.Thread(target=self.reader.listen, args=(self.endpoint.consume,), daemon=True)
        self.thread.start()

    def call(self, method, params=None):
        return self.endpoint.request(method, params).result(timeout=TIMEOUT)

    def error(self, method, params=None):
        with pytest.raises(JsonRpcException) as caught:
            self.call(method, params)
        return caught.value

    def notify(self, method, params=None):
        self.endpoint.notify(method, params)

    def wait(self):
        return self.process.wait(timeout=TIMEOUT)

    def log(self):
        self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self):
        if self.process.poll() is None:
            self.process.kill()  # by pid, through the Popen object
            self.process.wait(timeout=TIMEOUT)
        self.endpoint.shutdown()
        self.stderr.close()


@pytest.fixture
def session(tmp_path):
    binary = os.environ.get("MESAD_BIN")
    if not binary:
        pytest.fail("set MESAD_BIN to the mesad executable (scripts/test.sh does)")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"MESAD_BIN={binary} is not an executable")
    home = tmp_path / "home"
    home.mkdir()
    running = Session(binary, home)
    try:
        yield running
    finally:
        running.close()


def check_error(error, code, name=None, error_class="bad-input"):
    assert error.code == code, error.to_dict()
    assert isinstance(error.data, dict), error.to_dict()
    assert error.data.get("errorClass") == error_class, error.to_dict()
    if name is not None:
        assert error.data.get("code") == name, error.to_dict()


def test_initialize_methods_errors_shutdown_exit(session):
    result = session.call("initialize", {"processId": os.getpid(), "clientInfo": {"name": "pytest", "version": "1"}})
    assert result["serverInfo"]["name"] == "mesad"
    assert result["protocolVersion"] == "1"
    assert METHODS <= set(result["capabilities"]["methods"])
    assert "window/logMessage" in result["capabilities"]["notifications"]
    session.notify("initialized", {})

    me = session.call("whoami", {})
    assert me["org"]["slug"] == "local"
    assert set(me["scopes"]) == {"read", "write", "admin"}
    assert me["backend"] == "embedded"

    created = session.call("createRepo", {"name": "py-workspace"})["repo"]
    assert created["name"] == "py-workspace"
    assert created["org"] == "local"
    assert created["defaultBookmark"] == "main"
    assert created["headChangeId"] == "z" * 32

    listed = session.call("listRepos", {})
    assert [repo["name"] for repo in listed["repos"]] == ["py-workspace"]
    assert listed["hasMore"] is False
    assert session.call("getRepo", {"repo": "py-workspace"})["repo"]["id"] == created["id"]
    assert session.call("listOrgs")["orgs"][0]["name"] == "local"

    key = session.call("createEphemeralKey", {"name": "py", "scopes": ["read"], "expiresInSeconds": 600,
                                              "repos": ["py-workspace"]})
    assert key["key"].startswith("mesa_")
    assert key["info"]["repoIds"] == [created["id"]]
    keys = session.call("listKeys", {"status": "active"})["keys"]
    assert {k["name"] for k in keys} == {"py", "mesad-local-admin"}
    assert all("mesa_" not in str(k) for k in keys)
    assert session.call("revokeKey", {"id": key["info"]["id"]}) == {"ok": True}

    # Application errors: code, symbolic name, class, errno.
    missing = session.error("getRepo", {"repo": "missing"})
    check_error(missing, -32001, "NOT_FOUND")
    assert "missing" in missing.message
    assert missing.data.get("errno") == 2  # ENOENT
    check_error(session.error("createRepo", {"name": "py-workspace"}), -32002, "ALREADY_EXISTS")
    check_error(session.error("createRepo", {"name": "../escape"}), -32602, "INVALID_ARGUMENT")
    check_error(session.error("createEphemeralKey", {"expiresInSeconds": 5}), -32602, "INVALID_ARGUMENT")
    # Protocol errors: wrong types name the field; unknown methods.
    wrong = session.error("createRepo", {"name": 5})
    check_error(wrong, -32602)
    assert wrong.data.get("field") == "params.name"
    check_error(session.error("noSuchMethod", {}), -32601)
    # The refused calls changed nothing.
    assert [repo["name"] for repo in session.call("listRepos", {})["repos"]] == ["py-workspace"]

    assert session.call("deleteRepo", {"repo": "py-workspace"}) == {"ok": True}
    assert session.call("shutdown") == {"ok": True}
    session.notify("exit")
    assert session.wait() == 0, session.log()


def test_many_requests_in_flight_are_all_answered(session):
    futures = [session.endpoint.request("whoami", {}) for _ in range(50)]
    futures += [session.endpoint.request("getRepo", {"repo": f"r{i}"}) for i in range(10)]
    answers = [f.result(timeout=TIMEOUT) for f in futures[:50]]
    assert all(answer["org"]["slug"] == "local" for answer in answers)
    for future in futures[50:]:
        with pytest.raises(JsonRpcException) as caught:
            future.result(timeout=TIMEOUT)
        check_error(caught.value, -32001, "NOT_FOUND")


def test_exits_cleanly_when_stdin_closes(session):
    assert session.call("whoami", {})["org"]["slug"] == "local"
    session.process.stdin.close()
    assert session.wait() == 0, session.log()
    assert not (session.stderr_path.parent / "run" / "mesad.sock").exists()
