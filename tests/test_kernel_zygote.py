"""The suite's nbval kernels are forked from a preloaded zygote (tests/kernel_zygote.py): each
must start as a fresh `python -m ipykernel_launcher` would, answer interrupts, and end with
its notebook, its worker or the session. Real kernels, real zygote process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel

from helpers.lessons.chat_lesson import wait_until
from tests import kernel_zygote
from tests.kernel_zygote import ROOT
from tests.zygote_kernels import ZygoteUnavailable, running_kernel

#: Kernels, as the notebooks' runs have them: not part of the quick tier either.
pytestmark = pytest.mark.notebooks

#: What a notebook could notice about the process it runs in.
PROBE = """
import json, os, sys, tempfile
print(json.dumps({
    "cwd": os.getcwd(), "path": sys.path, "argv0": os.path.basename(sys.argv[0]),
    "main": sys.modules["__main__"].__name__, "env": os.environ.get("ZYGOTE_PROBE"),
    "tmp": tempfile.gettempdir(),
    "loaded": sorted({"pytest", "nbval", "helpers"} & set(sys.modules)),
    "backend": __import__("matplotlib").get_backend(), "pgid": os.getpgid(0) == os.getpid(),
}))
"""


def run(kernel: RunningKernel, code: str) -> tuple[str, dict]:
    """Execute `code`; (its stdout, the execute reply's content)."""
    out: list[str] = []

    def hook(message: dict) -> None:
        if message["msg_type"] == "stream":
            out.append(message["content"]["text"])

    reply = kernel.kc.execute_interactive(code, output_hook=hook, timeout=120)
    return "".join(out), reply["content"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def zygote() -> Iterator[str]:
    """The session's zygote (conftest.py starts it for this module), or one of our own."""
    if kernel_zygote.ADDRESS in os.environ:
        yield os.environ[kernel_zygote.ADDRESS]
        return
    started = kernel_zygote.Zygote()
    started.start()
    yield started.address
    started.close()


def test_a_forked_kernel_starts_as_a_fresh_one_does(zygote, tmp_path: Path, monkeypatch) -> None:
    """Folder, sys.path, argv, environment, temp dir, matplotlib's inline backend, its own
    process group: as a fresh kernel has them; moto is preloaded, pytest and helpers are not."""
    monkeypatch.setenv("ZYGOTE_PROBE", "passed on")  # the worker's environment, not the zygote's
    fresh = RunningKernel(CURRENT_ENV_KERNEL_NAME, cwd=str(tmp_path))
    try:
        expected, _ = run(fresh, PROBE)
    finally:
        fresh.stop()
    forked = running_kernel(zygote, cwd=str(tmp_path), startup_timeout=120)
    try:
        seen, _ = run(forked, PROBE)
        preloaded, _ = run(forked, "import sys; print('moto' in sys.modules)")
        pid = forked.km.provisioner.pid
        assert pid != os.getpid() and alive(pid)
    finally:
        forked.stop()
    assert json.loads(seen) == json.loads(expected)
    assert json.loads(seen)["loaded"] == [] and json.loads(seen)["env"] == "passed on"
    assert preloaded.strip() == "True"  # forked from the zygote, not a new process
    wait_until(lambda: not alive(pid), timeout=30, what="the stopped kernel's exit")


def test_a_forked_kernel_is_interrupted_and_dies_with_its_worker(zygote, tmp_path: Path) -> None:
    """An interrupt stops the running cell (KeyboardInterrupt) and the kernel goes on; when
    its worker is gone (the connection to the zygote drops), the zygote kills the kernel."""
    kernel = running_kernel(zygote, cwd=str(tmp_path), startup_timeout=120)
    pid = kernel.km.provisioner.pid
    try:
        started: list[str] = []
        kernel.kc.execute("import time; print('sleeping', flush=True); time.sleep(600)")
        while "sleeping" not in "".join(started):  # the cell is running: interrupt it
            message = kernel.kc.get_iopub_msg(timeout=60)
            if message["msg_type"] == "stream":
                started.append(message["content"]["text"])
        kernel.km.interrupt_kernel()
        reply = kernel.kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert run(kernel, "print(6 * 7)")[0].strip() == "42"
        kernel.kc.stop_channels()
        kernel.km.provisioner.process.connection.close()  # as when the worker is killed
        wait_until(lambda: not alive(pid), timeout=30, what="the orphaned kernel's end")
    finally:
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)


def test_without_a_zygote_the_worker_is_told_to_start_a_fresh_kernel(tmp_path: Path) -> None:
    """A zygote that ended (or never started) closes its socket: `running_kernel` says so
    instead of waiting, and conftest.py falls back to nbval's own kernel."""
    gone = kernel_zygote.Zygote()
    gone.start()
    gone.process.kill()  # while it imports
    gone.process.wait()
    try:
        with pytest.raises(ZygoteUnavailable):
            running_kernel(gone.address, cwd=str(tmp_path), startup_timeout=120)
    finally:
        gone.close()
    with pytest.raises(ZygoteUnavailable):
        running_kernel(str(tmp_path / "no-socket"), cwd=str(tmp_path), startup_timeout=120)


def test_what_the_zygote_preloads_warns_nothing_at_import() -> None:
    """A warning printed while a library is imported shows under a fresh kernel's first cell,
    but in a forked kernel it was printed by the zygote: nbval would not see what learners
    see. So the imports the zygote makes (its probe's) must print nothing, under Python's
    default warning filters (a kernel's, for library code)."""
    from helpers.grade.zygote import PROBE

    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
