"""The MCP client of the `mcp` package (PyPI) drives `mesad --mcp` over stdio: the
handshake, the tool list with its schemas, and tools that create, mount and inspect a
repository in a real daemon.

`mesad --mcp` forwards tools to the daemon on the socket and starts one (`mesad -d -y`)
when none runs, so each test gets a fresh temporary HOME and runtime directory, and
stops that daemon by its pid file and lazily unmounts what it mounted, on every path.
"""

import asyncio
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import stop_mesad
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

TIMEOUT = 60  # seconds for a whole session

TOOLS = {
    "mount", "unmount", "list_mounts", "status", "flush", "checkpoint", "list_changes", "diff", "show",
    "list_bookmarks", "create_bookmark", "move_bookmark", "list_repos", "create_repo", "create_ephemeral_key",
}


@pytest.fixture
def home():
    # Short: the socket path must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="mesa-mcp-", dir="/tmp"))
    yield root
    stop_mesad(root / "run" / "mesad.pid")
    for mount in [root / "m", root / ".local" / "share" / "mesa" / "mnt"]:
        subprocess.run(["fusermount3", "-u", "-z", str(mount)], stderr=subprocess.DEVNULL, check=False, timeout=10)
    subprocess.run(["rm", "-rf", str(root)], check=False, timeout=30)


def server(home):
    return StdioServerParameters(
        command=os.environ["MESAD_BIN"],
        args=["--mcp"],
        env={
            "HOME": str(home),
            "MESA_RUNTIME_DIR": str(home / "run"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        },
    )


def run(home, body):
    """Runs `body(session)` in an initialized MCP session, with a hard time limit."""

    async def main():
        async with stdio_client(server(home)) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                return init, await body(session)

    return asyncio.run(asyncio.wait_for(main(), TIMEOUT))


def text(result):
    return result.content[0].text


def test_handshake_and_tool_list(home):
    async def body(session):
        await session.send_ping()
        return await session.list_tools()

    init, listed = run(home, body)
    assert init.server_info.name == "mesad"
    assert init.protocol_version in {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}
    assert init.capabilities.tools is not None
    names = {tool.name for tool in listed.tools}
    assert names == TOOLS
    for tool in listed.tools:
        assert tool.input_schema["type"] == "object", tool.name
        assert len(tool.description) > 20, tool.name
    create = next(tool for tool in listed.tools if tool.name == "create_repo")
    assert create.input_schema["required"] == ["name"]


def test_create_mount_write_and_inspect(home):
    mount_path = home / "m"

    async def body(session):
        results = {}
        results["empty"] = await session.call_tool("list_repos", {})
        results["created"] = await session.call_tool("create_repo", {"name": "demo"})
        results["again"] = await session.call_tool("create_repo", {"name": "demo"})
        results["repos"] = await session.call_tool("list_repos", {})
        results["mount"] = await session.call_tool("mount", {"repo": "demo", "path": str(mount_path)})
        # The agent writes through the filesystem, then asks for an upload and the status.
        (mount_path / "hello.txt").write_text("hello\n")
        results["flush"] = await session.call_tool("flush", {"path": str(mount_path)})
        results["status"] = await session.call_tool("status", {"mountId": str(mount_path)})
        results["checkpoint"] = await session.call_tool("checkpoint", {"path": str(mount_path), "message": "Say hello"})
        results["changes"] = await session.call_tool("list_changes", {"org": "local", "repo": "demo", "bookmark": "main"})
        results["unmount"] = await session.call_tool("unmount", {"mountId": str(mount_path)})
        return results

    _, r = run(home, body)
    assert not r["empty"].is_error and r["empty"].structured_content["repos"] == []
    assert r["created"].structured_content["repo"]["name"] == "demo"
    assert json.loads(text(r["created"]))["repo"]["defaultBookmark"] == "main"
    assert r["again"].is_error and "ALREADY_EXISTS" in text(r["again"])
    assert [repo["name"] for repo in r["repos"].structured_content["repos"]] == ["demo"]
    assert r["mount"].structured_content["mountId"] == str(mount_path)
    assert r["mount"].structured_content["mode"] == "rw"
    status = r["status"].structured_content["mounts"][0]
    assert status["repo"] == "demo" and status["pendingUploads"] == 0
    assert status["workingChangeId"], status
    saved = r["checkpoint"].structured_content
    assert saved["created"] is True and saved["bookmark"] == "main"
    assert saved["savedChangeId"] == status["workingChangeId"]
    changes = r["changes"].structured_content["changes"]
    assert [change["message"] for change in changes] == ["Say hello"]
    assert r["unmount"].structured_content["unmounted"] == [str(mount_path)]


def test_protocol_errors_are_errors(home):
    async def body(session):
        with pytest.raises(MCPError) as unknown:
            await session.call_tool("format_disk", {})
        bad = await session.call_tool("list_repos", {"limit": "many"})
        return unknown.value, bad

    _, (unknown, bad) = run(home, body)
    assert unknown.code == -32602 and "format_disk" in unknown.message
    assert bad.is_error and "limit" in text(bad)
