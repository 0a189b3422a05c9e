"""The README's first command serves JupyterLab on the series (issue: Quick start)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import wait_until
from test_smoke import _quick_start_commands

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except OSError:
        return 0, b""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_first_command_serves_jupyterlab_on_the_series():
    """Starts in seconds where .venv is current (CI: `tasks.py test` just made it); a fresh
    worktree installs first, hence the long, never-reached-when-green timeout."""
    command = _quick_start_commands()[0].split("#")[0].split()
    assert command[:3] == ["python3", "tasks.py", "lab"]
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "tasks.py", "lab", "--no-browser", f"--port={port}",
         "--IdentityProvider.token="],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: server.poll() is not None or _get(f"http://127.0.0.1:{port}/lab")[0],
                   timeout=540, message="JupyterLab did not answer on /lab")
        assert server.poll() is None, f"`tasks.py lab` exited with {server.returncode}"
        assert _get(f"http://127.0.0.1:{port}/lab")[0] == 200
        _, listing = _get(f"http://127.0.0.1:{port}/api/contents")
        names = {item["name"] for item in json.loads(listing)["content"]}
        assert {"notebooks", "solutions", "helpers", "README.md"} <= names
        _, lessons = _get(f"http://127.0.0.1:{port}/api/contents/notebooks")
        assert "00_start_here.ipynb" in {i["name"] for i in json.loads(lessons)["content"]}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
