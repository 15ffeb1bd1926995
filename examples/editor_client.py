#!/usr/bin/env python3
"""A minimal mesad client, as an editor extension would write it (standard library only).

It connects to mesad's Unix socket, speaks JSON-RPC 2.0 with LSP framing
(`Content-Length` headers), initializes, mounts a repository, subscribes to its events
and prints each notification as it arrives:

    mesad -d                                  # or: mesa mount -d -y
    python3 examples/editor_client.py --repo demo --create
    # in another shell: echo hi > ~/.local/share/mesa/mnt/local/demo/a.txt
    # → mesa/filesChanged {"paths": ["a.txt"], ...}, then mesa/changeAmended ...

An editor would reload open buffers on `mesa/filesChanged`, show `mesa/uploadPending` /
`mesa/uploadFailed` in its status bar, and refresh its history view on
`mesa/checkpointMade` and `mesa/bookmarkMoved`. See protocol.md for every event.
"""

import argparse
import json
import os
import socket
import sys


def socket_path():
    """Where mesad listens: $MESA_RUNTIME_DIR, else $XDG_RUNTIME_DIR/mesa, else ~/.local/share/mesa/run."""
    runtime = os.environ.get("MESA_RUNTIME_DIR")
    if not runtime:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
        runtime = os.path.join(xdg, "mesa") if xdg else os.path.join(data, "mesa", "run")
    return os.path.join(runtime, "mesad.sock")


class MesadConnection:
    """One socket, LSP framing, requests answered by id, notifications handed to a callback."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buffer = b""
        self.next_id = 0
        self.pending_notifications = []

    def send(self, message):
        body = json.dumps(message).encode("utf-8")
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def read_message(self):
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        header, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = None
        for line in header.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise RuntimeError("frame without Content-Length")
        while len(rest) < length:
            self.buffer = header + b"\r\n\r\n" + rest
            self._fill()
            header, _, rest = self.buffer.partition(b"\r\n\r\n")
        self.buffer = rest[length:]
        return json.loads(rest[:length])

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("mesad closed the connection")
        self.buffer += chunk

    def request(self, method, params=None):
        """Sends a request and waits for its answer; notifications meanwhile are kept."""
        self.next_id += 1
        request_id = self.next_id
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        while True:
            message = self.read_message()
            if "method" in message and "id" not in message:
                self.pending_notifications.append(message)
            elif message.get("id") == request_id:
                if "error" in message:
                    error = message["error"]
                    code = (error.get("data") or {}).get("code", error["code"])
                    raise RuntimeError(f"{method} failed [{code}]: {error['message']}")
                return message["result"]

    def notifications(self):
        """Yields notifications forever (the ones that arrived during requests first)."""
        while True:
            while self.pending_notifications:
                yield self.pending_notifications.pop(0)
            message = self.read_message()
            if "method" in message and "id" not in message:
                yield message


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="repository to mount and watch")
    parser.add_argument("--org", help="organization (default: the only one)")
    parser.add_argument("--create", action="store_true", help="create the repository if it does not exist")
    parser.add_argument("--max-events", type=int, default=0, help="exit after this many events (0: never)")
    args = parser.parse_args()

    try:
        mesad = MesadConnection(socket_path())
    except OSError as error:
        sys.exit(f"cannot reach mesad at {socket_path()}: {error}; start it with `mesad -d`")

    info = mesad.request("initialize", {"clientInfo": {"name": "editor-client-example", "version": "1.0"}})
    print(f"connected to {info['serverInfo']['name']} {info['serverInfo']['version']}, "
          f"notifications: {', '.join(n for n in info['capabilities']['notifications'] if n.startswith('mesa/'))}",
          file=sys.stderr)
    mesad.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})

    org = {"org": args.org} if args.org else {}
    if args.create:
        try:
            mesad.request("createRepo", {**org, "name": args.repo})
        except RuntimeError as error:
            if "ALREADY_EXISTS" not in str(error):
                raise
    mount = mesad.request("mount", {**org, "repo": args.repo})
    subscription = mesad.request("subscribe", {"mountId": mount["mountId"]})
    print(f"watching {mount['mountId']} at {mount['path']} (subscription {subscription['subscriptionId']})",
          file=sys.stderr, flush=True)

    seen = 0
    try:
        for notification in mesad.notifications():
            print(notification["method"], json.dumps(notification.get("params"), sort_keys=True), flush=True)
            seen += 1
            if args.max_events and seen >= args.max_events:
                break
    except KeyboardInterrupt:
        pass
    except EOFError as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
