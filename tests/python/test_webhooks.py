"""Webhook deliveries from a real mesa-server, received by a loopback HTTP server and
verified with the official SDK's own helper (`mesa_sdk.Webhooks.receive`, mesa-sdk 0.44.1):
it checks the `x-mesa-signature` HMAC and the 300 s window, and validates every payload
against the SDK's event models. Also: a server restart with undelivered events loses none.
"""

import asyncio
import http.server
import json
import threading

import pytest
from mesa_sdk import MesaWebhookVerificationError, Webhooks

from conftest import wait_until

VIRTUAL_ROOT = "z" * 32


class Receiver:
    """Collects POSTs on a loopback port; answers 503 while `failing` is set."""

    def __init__(self):
        self.hits = []
        self.refused = 0
        self.failing = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    failing = receiver.failing
                    if failing:
                        receiver.refused += 1
                    else:
                        receiver.hits.append((dict(self.headers.items()), body))
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def types(self):
        with self.lock:
            return [json.loads(body)["type"] for _, body in self.hits]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_deliveries_verify_with_the_sdk_helper(mesa_server, receiver):
    status, target = mesa_server.request("POST", f"/{mesa_server.org}/webhook-targets", {"url": receiver.url, "name": "sdk"})
    assert status == 201, target
    secret = target["secret"]

    assert mesa_server.request("POST", f"/{mesa_server.org}/repos", {"name": "app"})[0] == 201
    status, change = mesa_server.request("POST", f"/{mesa_server.org}/app/changes", {
        "base_change_id": VIRTUAL_ROOT, "message": "first", "files": [{"path": "a.txt", "content": "YQ=="}]})
    assert status == 201
    assert mesa_server.request("PATCH", f"/{mesa_server.org}/app/bookmarks/main", {"change_id": change["id"]})[0] == 200
    assert mesa_server.request("PATCH", f"/{mesa_server.org}/app/changes/{change['id']}", {"message": "first!"})[0] == 200
    assert mesa_server.request("POST", f"/{mesa_server.org}/app/bookmarks", {"name": "dev", "change_id": change["id"]})[0] == 201
    assert mesa_server.request("PATCH", f"/{mesa_server.org}/app", {"tags": {"env": "ci"}})[0] == 200
    assert mesa_server.request("DELETE", f"/{mesa_server.org}/app/bookmarks/dev")[0] == 200
    assert mesa_server.request("DELETE", f"/{mesa_server.org}/app")[0] == 200

    expected = ["repo.created", "change.created", "bookmark.moved", "change.evolved", "push", "bookmark.created",
                "repo.updated", "bookmark.deleted", "repo.deleted"]
    wait_until(lambda: len(receiver.hits) >= len(expected), 30, "the webhook deliveries")
    assert receiver.types() == expected

    received = []
    hooks = Webhooks(secret=secret)
    hooks.on(expected, received.append)
    for headers, body in receiver.hits:
        asyncio.run(hooks.receive(body, headers))
    assert [event["type"] for event in received] == expected
    assert all(event["organization"]["slug"] == mesa_server.org for event in received)
    assert received[2]["data"]["bookmark"]["commit_oid"] == change["current_commit_oid"]

    # A wrong secret, or a body changed in transit, fails verification.
    headers, body = receiver.hits[0]
    with pytest.raises(MesaWebhookVerificationError):
        asyncio.run(Webhooks(secret="whsec_wrong").receive(body, headers))
    with pytest.raises(MesaWebhookVerificationError):
        asyncio.run(hooks.receive(body.replace(b"app", b"ppa"), headers))

    status, log = mesa_server.request("GET", f"/{mesa_server.org}/webhook-targets/{target['id']}/deliveries")
    assert status == 200 and len(log["deliveries"]) == len(expected)
    assert all(entry["state"] == "delivered" and entry["status_code"] == 200 for entry in log["deliveries"])


def test_a_restart_loses_no_undelivered_event(mesa_server, receiver):
    org = mesa_server.org
    assert mesa_server.request("POST", f"/{org}/webhook-targets", {"url": receiver.url, "events": ["bookmark.created"]})[0] == 201
    assert mesa_server.request("POST", f"/{org}/repos", {"name": "r"})[0] == 201
    receiver.failing = True
    for name in ("one", "two", "three"):
        assert mesa_server.request("POST", f"/{org}/r/bookmarks", {"name": name, "change_id": VIRTUAL_ROOT})[0] == 201
    wait_until(lambda: receiver.refused >= 1, 30, "a refused delivery")
    mesa_server.stop()
    receiver.failing = False
    mesa_server.start()
    wait_until(lambda: len(receiver.hits) >= 3, 60, "the deliveries after the restart")
    names = [json.loads(body)["data"]["bookmark"]["name"] for _, body in receiver.hits]
    assert names == ["one", "two", "three"]
