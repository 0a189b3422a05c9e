"""The suite's notebook kernels, forked from one process that imported their libraries once.

A notebook kernel spends about 1.4 CPU-s starting Python and importing ipykernel, boto3, moto
and matplotlib before the notebook's first cell runs; the suite starts one per copy of each
lesson. As the grader does (`helpers.grade.zygote`), one process per test session imports
them (not the course's helpers, which each kernel imports and patches itself) and forks a
kernel per notebook: `become_kernel` gives the fork the command line, folder and environment
jupyter_client would have given a new process. `pytest --nbval` still starts fresh kernels.

    pytest (controller)  creates the socket; starts the zygote once notebooks are collected
    pytest (worker)      --(unix socket: jupyter_client's command, cwd, env)-->  zygote
                         <--(the kernel's pid; later its exit code)--         --fork--> kernel

The socket exists before the zygote does: a worker that connects early waits in its first
read. If the zygote fails, the socket closes and the worker starts a fresh kernel instead.
Linux only (conftest.py): the kernel dies with the zygote (PR_SET_PDEATHSIG), and macOS
frameworks are not safe to fork without exec; elsewhere every notebook gets a fresh kernel.
The worker's side is `tests.zygote_kernels`. The zygote imports neither pytest nor nbval:
a kernel forked from it has in memory only what a kernel would have imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers.grade import zygote

#: Where workers find the zygote's socket (set by the controller before workers start).
ADDRESS = "COURSE_KERNEL_ZYGOTE"
ROOT = Path(__file__).resolve().parents[1]
INLINE = "module://matplotlib_inline.backend_inline"


# -- the controller's side ---------------------------------------------------------------


class Zygote:
    """The session's zygote: a socket now, the process on `start` (once notebooks are due)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="kernel-zygote-"))
        self.address = str(self.folder / "socket")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.address)
        self.listener.listen(64)  # workers may connect before the zygote has started
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the zygote process (once); it takes the socket over."""
        if self.process is not None or self.listener.fileno() < 0:
            return
        env = {**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND") or INLINE}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.kernel_zygote", str(self.listener.fileno())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=ROOT, env=env,
            pass_fds=[self.listener.fileno()], start_new_session=True)
        self.listener.close()  # the zygote's now: if it ends, workers waiting on it hear so

    def close(self) -> None:
        """Stop the zygote (it kills the kernels still running) and remove the socket."""
        self.listener.close()
        if self.process is not None:
            zygote.stop(self.process)
        with contextlib.suppress(OSError):
            os.unlink(self.address)
            self.folder.rmdir()


# -- the zygote process --------------------------------------------------------------------


def _start_kernel(connection: socket.socket, base_path: list[str]) -> int:
    """Read one kernel's order, fork it, and answer with its pid."""
    data = zygote.read_until(connection.fileno(), time.monotonic() + 60)
    if not data.endswith(b"\n"):
        raise OSError("the worker hung up before asking for a kernel")
    order = json.loads(data)
    from helpers.grade.forked_kernel import become_kernel  # loaded with the zygote

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setpgid(0, 0)  # interrupts and kills go to the kernel's group, as for Popen
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the zygote
            signal.set_wakeup_fd(-1)
            become_kernel(order, base_path)
        finally:
            os._exit(1)
    with contextlib.suppress(OSError):  # also here, so no signal can race the child's
        os.setpgid(pid, pid)
    connection.sendall(b"%d\n" % pid)
    return pid


def serve(listener_fd: int) -> int:
    listener = socket.socket(fileno=listener_fd)
    # sys.path as a fresh `python -m` has it after its folder and PYTHONPATH (the kernel's own)
    ours = set(filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    base_path = [p for p in sys.path[1:] if p not in ours]
    return zygote.serve_forks(listener, _start_kernel, lambda: base_path)


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
