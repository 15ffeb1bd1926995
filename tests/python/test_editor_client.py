"""examples/editor_client.py (standard library only) against a real `mesad -d --mount`:
it initializes, creates and mounts a repo, subscribes, and prints the notification a
write into the mount causes. Temporary HOME; mesad stopped by its pid file on every path.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import stop_mesad, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "editor_client.py"


@pytest.fixture
def environment():
    root = Path(tempfile.mkdtemp(prefix="mesa-ed-", dir="/tmp"))
    env = {
        "HOME": str(root),
        "MESA_RUNTIME_DIR": str(root / "run"),
        "XDG_CONFIG_HOME": str(root / ".config"),
        "XDG_DATA_HOME": str(root / ".local" / "share"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    subprocess.run([os.environ["MESAD_BIN"], "-d", "--mount"], env=env, check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    yield root, env
    stop_mesad(root / "run" / "mesad.pid")
    subprocess.run(["fusermount3", "-u", "-z", str(root / ".local" / "share" / "mesa" / "mnt")],
                   stderr=subprocess.DEVNULL, check=False, timeout=10)
    subprocess.run(["rm", "-rf", str(root)], check=False, timeout=30)


def test_example_prints_the_event_of_a_write(environment):
    root, env = environment
    stderr_path = root / "example.err"
    with open(stderr_path, "wb") as stderr:
        example = subprocess.Popen([sys.executable, str(EXAMPLE), "--repo", "demo", "--create", "--max-events", "1"],
                                   env=env, stdout=subprocess.PIPE, stderr=stderr)
        try:
            wait_until(lambda: b"watching local/demo" in stderr_path.read_bytes(), 30, "the example to subscribe")
            (root / ".local" / "share" / "mesa" / "mnt" / "local" / "demo" / "hello.txt").write_text("hello\n")
            out, _ = example.communicate(timeout=30)
        finally:
            if example.poll() is None:
                example.kill()
                example.wait(timeout=10)
    assert example.returncode == 0, stderr_path.read_text()
    method, _, params = out.decode().strip().partition(" ")
    assert method == "mesa/filesChanged"
    event = json.loads(params)
    assert event["paths"] == ["hello.txt"] and event["mountId"] == "local/demo"
