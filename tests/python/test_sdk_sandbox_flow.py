"""The seed's sandbox flow, end to end, with the official Mesa Python SDK outside:

1. outside: mesa-server on loopback; the SDK (api_url pointed at it) creates the repo
   `agent-workspace` and a short-lived key scoped to read+write and that repo;
2. inside: a separate HOME, `MESA_ORGS=<org>:<key> MESA_API_URL=… mesa mount -d -y`, and a
   script in ~/.local/share/mesa/mnt/<org>/agent-workspace that writes, edits, renames and
   deletes files as an agent would;
3. outside again: the SDK sees exactly those edits in the working change; a checkpoint
   through mesa-client moves the bookmark, and the SDK sees that too.
"""

import asyncio
import base64
import json
import subprocess
from pathlib import Path

import pytest
from conftest import bin_path, stop_mesad, wait_until
from mesa_sdk import Mesa, NotFoundError

REPO = "agent-workspace"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))


class Sandbox:
    """A HOME of its own with `mesa mount -d -y` run in it; mesad is stopped by the pid in
    its runtime directory and the mount cleared on every path."""

    def __init__(self, root, org, key, api_url):
        self.home = root / "sandbox-home"
        self.home.mkdir()
        self.env = {
            "HOME": str(self.home),
            "PATH": f"{Path(bin_path('mesa')).parent}:/usr/bin:/bin",
            "MESA_ORGS": f"{org}:{key}",
            "MESA_API_URL": api_url,
            "MESA_LOG": "debug",
        }
        self.mount_root = self.home / ".local" / "share" / "mesa" / "mnt"
        self.repo_dir = self.mount_root / org / REPO

    def run(self, *argv, check=True, timeout=60, cwd=None):
        result = subprocess.run(list(argv), env=self.env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def client(self, *argv):
        return json.loads(self.run(bin_path("mesa-client"), *argv, "--json").stdout)

    def stop(self):
        for pid_file in self.home.rglob("mesad.pid"):
            stop_mesad(pid_file)
        subprocess.run(["fusermount3", "-u", "-z", str(self.mount_root)], stderr=subprocess.DEVNULL, check=False,
                       timeout=10)


@pytest.fixture
def sandbox_flow(mesa_server, tmp_root):
    async def outside():
        async with Mesa(api_key=mesa_server.admin_key, api_url=mesa_server.base_url) as mesa:
            repo = await mesa.repos.create(name=REPO)
            key = await mesa.api_keys.create(name="sandbox-session", scopes=["read", "write"],
                                             expires_in_seconds=3600, repo_ids=[repo.id])
            return repo, key

    repo, key = run(outside())
    sandbox = Sandbox(tmp_root, mesa_server.org, key.key, mesa_server.base_url)
    try:
        yield mesa_server, repo, key, sandbox
    finally:
        sandbox.stop()


AGENT_SCRIPT = """
set -eu
mkdir -p src docs
printf 'print("hello")\\n' > src/app.py
printf '# Notes\\n' > docs/notes.md
printf 'scratch\\n' > scratch.txt
printf 'line one\\n' > TODO.md
printf 'line two\\n' >> TODO.md
sed -i 's/hello/hello, mesa/' src/app.py
mv docs/notes.md docs/NOTES.md
rm scratch.txt
"""

EXPECTED = {
    "src/app.py": b'print("hello, mesa")\n',
    "docs/NOTES.md": b"# Notes\n",
    "TODO.md": b"line one\nline two\n",
}


def files_at(mesa, change_id, path=""):
    """Every file below `path` at `change_id`, read through the SDK: {path: bytes}."""
    async def walk():
        found = {}
        listing = await mesa.content.get(repo=REPO, change_id=change_id, path=path or None, depth=10)
        for entry in listing.entries:
            if entry.type_ == "file":
                item = await mesa.content.get(repo=REPO, change_id=change_id, path=entry.path)
                found[entry.path] = base64.b64decode(item.content)
        return found
    return walk()


def test_the_sandbox_guide_works_against_mesa_server(sandbox_flow):
    server, repo, key, sandbox = sandbox_flow
    assert key.scopes == ["read", "write"] and key.repo_ids == [repo.id]

    # Inside the sandbox: the guide's one command, then an agent's edits.
    sandbox.run(bin_path("mesa"), "mount", "-d", "-y", timeout=90)
    wait_until(sandbox.repo_dir.is_dir, 30, f"{sandbox.repo_dir} to appear")
    config = sandbox.home / ".config" / "mesa" / "config.toml"
    assert config.exists() and server.base_url in config.read_text()
    sandbox.run("sh", "-c", AGENT_SCRIPT, cwd=sandbox.repo_dir)
    status = sandbox.client("call", "flush", json.dumps({"path": str(sandbox.repo_dir)}))
    assert status["pendingUploads"] == 0 and status.get("lastError") is None, status
    working = status["workingChangeId"]

    # Outside: the SDK sees exactly those edits in the working change, and main has not moved.
    async def outside_before():
        async with Mesa(api_key=server.admin_key, api_url=server.base_url) as mesa:
            change = await mesa.changes.get(repo=REPO, change_id=working)
            files = await files_at(mesa, working)
            main = await mesa.bookmarks.get(repo=REPO, bookmark="main")
            return change, files, main
    change, files, main = run(outside_before())
    assert files == EXPECTED
    assert sorted(change.files) == sorted(EXPECTED)
    assert main.change_id == "z" * 32

    # A checkpoint moves the bookmark; the SDK sees it and reads the same files at main.
    saved = sandbox.client("checkpoint", "--path", str(sandbox.repo_dir), "--message", "agent: first pass")
    assert saved["savedChangeId"] == working and saved["created"] is True

    async def outside_after():
        async with Mesa(api_key=server.admin_key, api_url=server.base_url) as mesa:
            main = await mesa.bookmarks.get(repo=REPO, bookmark="main")
            changes = await mesa.changes.list(repo=REPO, bookmark="main")
            files = await files_at(mesa, main.change_id)
            return main, changes, files
    main, changes, files = run(outside_after())
    assert main.change_id == working
    assert changes.changes[0].id == working and changes.changes[0].message == "agent: first pass"
    assert files == EXPECTED

    # The sandbox key is scoped to this repo: another repo of the org stays invisible to it.
    async def other_repo():
        async with Mesa(api_key=server.admin_key, api_url=server.base_url) as mesa:
            await mesa.repos.create(name="private")
        async with Mesa(api_key=key.key, api_url=server.base_url) as scoped:
            names = [r.name for r in (await scoped.repos.list()).repos]
            with pytest.raises(NotFoundError):
                await scoped.repos.get(repo="private")
            return names
    assert run(other_repo()) == [REPO]
