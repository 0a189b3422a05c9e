"""A process that imports the kernel's libraries once and forks a sandboxed worker per notebook.

Most of the CPU a small notebook costs went into starting Python and importing ipykernel,
boto3, moto, matplotlib and the rest, once for the worker and once for its kernel. The zygote
imports them once, then for every notebook forks a worker that does what a fresh
`python -m helpers.grade.worker` in `sandbox` did: its own session and process group, with
namespaces its own user, PID and mount namespaces (PID 1 there, private /tmp), a fresh copy of
helpers/, and a kernel forked from it (`forked_kernel`) that imports the course's helpers from
that copy. The zygote never imports `helpers` beyond `helpers.grade` (the course's modules
patch libraries; each kernel patches its own), and checks it runs no thread before forking.

    grader  --(unix socket: header + stdin/stdout/stderr fds)-->  zygote  --fork-->  worker
            <--(exit code, when the zygote has reaped it)----

`Zygote` is the grader's side: `run(stdin, timeout)` answers like `sandbox.run`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers.grade import sandbox, worker

ROOT = Path(__file__).resolve().parents[2]
READY = b"ready\n"
# what the notebooks' kernels import (the course's helpers excluded: each kernel imports them)
PROBE = """
import gc; gc.disable()  # a throw-away process that only imports: no garbage to look for
import json, pkgutil, sys
import ipykernel.kernelapp, ipykernel.ipkernel, matplotlib.pyplot
import helpers, helpers.aws, helpers.checks, helpers.client, helpers.display, helpers.gateway
import helpers.gateway.display, helpers.lessons
for info in pkgutil.iter_modules(helpers.lessons.__path__, "helpers.lessons."):
    __import__(info.name)
print(json.dumps([name for name in sys.modules if name.partition(".")[0] != "helpers"]))
"""


# -- the zygote process ---------------------------------------------------------------------


def preload() -> list[str]:
    """Import what the course's kernels import (found by a probe process); what failed."""
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, cwd=ROOT,
                           check=False, timeout=600)
    names = json.loads(probe.stdout or b"[]") if probe.returncode == 0 else []
    failed = []
    for name in ["ipykernel.kernelapp", "ipykernel.ipkernel", *names]:
        if name not in sys.modules and name not in ("__main__", "__mp_main__"):
            try:
                importlib.import_module(name)
            except Exception:  # an optional or platform module: the kernel imports it if used
                failed.append(name)
    return failed


def threads() -> int:
    """Threads of this process that a fork would leave behind, as the OS sees them.

    Libraries with a thread pool of their own (numpy's OpenBLAS) stop it before every fork
    (pthread_atfork) and start it again when next used: one throw-away fork first lets them.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0)
    os.waitpid(pid, 0)
    return len(os.listdir("/proc/self/task"))


def namespaces_available() -> bool:
    """Can a fork of this process enter its own namespaces and mount a private /tmp?"""
    if os.environ.get("GRADE_NO_NAMESPACES") == "1":
        return False
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        with contextlib.suppress(BaseException):
            sandbox.enter_namespaces()
            done = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/tmp"],
                                  capture_output=True, check=False)
            code = done.returncode
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _worker(fds: list[int], request: dict, namespaces: bool) -> None:  # pragma: no cover
    """In the fork: become the sandboxed worker for one notebook; never returns."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the zygote's socket and other requests
        os.setsid()
        if namespaces:
            sandbox.enter_namespaces()
            child = os.fork()  # PID 1 of the new namespace: when it ends, all in it end
            if child != 0:
                _, status = os.waitpid(child, 0)
                code = os.waitstatus_to_exitcode(status)
                return
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with us
            os.environ["GRADE_IN_NAMESPACE"] = "1"
        else:
            os.environ["GRADE_IN_NAMESPACE"] = "0"
        code = worker.serve(TRUSTED, request["cell_timeout"], request["total_timeout"],
                            forked=True)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


TRUSTED: dict[Path, bytes] = {}


def serve(address: str, helpers_dir: Path) -> int:
    """The zygote's loop: fork a worker per request, report each one's exit code, until the
    grader closes our stdin."""
    TRUSTED.update(worker._read_tree(helpers_dir))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    return serve_forks(listener, _start_worker, namespaces_available)


def _start_worker(connection: socket.socket, namespaces: bool) -> int:
    message, fds, _, _ = socket.recv_fds(connection, 65536, 3)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _worker(fds, json.loads(message), namespaces)
    for fd in fds:
        os.close(fd)
    return pid


def serve_forks(listener: socket.socket, start: Callable[[socket.socket, Any], int],
                setting: Callable[[], Any] = lambda: None) -> int:
    """Preload, then for each connection to `listener`, `start(connection, setting())` forks a
    child; its exit code goes back on that connection when it is reaped. A request's
    connection hung up or written to kills the child's tree; stdin closed kills them all."""
    gc.disable()  # the imports build what lives until the end: no garbage to look for
    failed = preload()
    shared = setting()
    gc.collect()
    gc.freeze()  # a fork's garbage collector leaves what is loaded alone: fewer pages copied
    gc.enable()
    running = threads()
    if running != 1:
        print(f"zygote: {running} threads after imports; forking is unsafe", file=sys.stderr)
        return 1
    listener.listen(64)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_read, selectors.EVENT_READ, "reap")
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "quit")
    running: dict[int, socket.socket] = {}  # child pid -> the request's connection
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    if failed:
        print(f"zygote: not preloaded: {', '.join(failed)}", file=sys.stderr)
    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                connection, _ = listener.accept()
                try:
                    pid = start(connection, shared)
                except OSError:  # the requester hung up before asking
                    connection.close()
                    continue
                running[pid] = connection
                selector.register(connection, selectors.EVENT_READ, pid)
            elif key.data == "reap":
                os.read(wake_read, 4096)
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    connection = running.pop(pid, None)
                    if connection is not None:
                        selector.unregister(connection)
                        with contextlib.suppress(OSError):
                            connection.sendall(b"%d\n" % os.waitstatus_to_exitcode(status))
                        connection.close()
            elif key.data == "quit":
                if not os.read(sys.stdin.fileno(), 1024):
                    for pid in running:
                        with contextlib.suppress(OSError):
                            os.killpg(pid, signal.SIGKILL)
                    return 0
            else:  # "kill" from the requester (a timeout), or it hung up: not reaped yet
                with contextlib.suppress(OSError):
                    key.fileobj.recv(64)
                # without namespaces the kernel has its own process group: kill the whole tree
                sandbox.kill_descendants(key.data, reap=False)
                with contextlib.suppress(OSError):
                    os.killpg(key.data, signal.SIGKILL)


# -- the grader's side ----------------------------------------------------------------------


class ZygoteUnavailable(RuntimeError):
    """The zygote did not start (the grader then starts a fresh worker per notebook)."""


class Zygote:
    """A running zygote: `run` grades one notebook in a fork of it."""

    def __init__(self, helpers_dir: Path, startup_timeout: float = 600) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="grade-zygote-"))
        self.address = str(self.folder / "socket")
        (self.folder / "tmp").mkdir()  # workers' folders without namespaces: removed with ours
        env = {**os.environ, "MPLBACKEND": "agg", "MPLCONFIGDIR": str(self.folder / "mpl"),
               "TMPDIR": str(self.folder / "tmp")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "helpers.grade.zygote", self.address, str(helpers_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=env,
            start_new_session=True)
        ready = read_until(self.process.stdout.fileno(), time.monotonic() + startup_timeout)
        if ready != READY:
            self.close()
            raise ZygoteUnavailable(f"the zygote did not start ({ready!r})")

    def run(self, stdin: bytes, cell_timeout: float, total_timeout: float,
            timeout: float | None = None) -> tuple[int | None, bytes, bytes]:
        """Grade one notebook (`stdin`); (exit code or None on timeout, stdout, stderr).

        The worker, with all it started, is killed after `timeout` seconds (default: a minute
        more than the notebook's `total_timeout`, which the worker keeps itself)."""
        deadline = time.monotonic() + (total_timeout + 60 if timeout is None else timeout)
        request = json.dumps({"cell_timeout": cell_timeout, "total_timeout": total_timeout})
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        with tempfile.TemporaryFile() as notebook, \
                socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            notebook.write(stdin)
            notebook.seek(0)
            try:
                connection.connect(self.address)
                socket.send_fds(connection, [request.encode()],
                                [notebook.fileno(), out_write, err_write])
            except OSError as error:  # the zygote is gone
                os.close(out_read)
                os.close(err_read)
                raise ZygoteUnavailable(f"the zygote stopped ({error})") from error
            finally:
                os.close(out_write)
                os.close(err_write)
            out, err, finished = _read_both(out_read, err_read, deadline)
            if not finished:
                connection.sendall(b"kill\n")
            status = read_until(connection.fileno(), time.monotonic() + 60)
        if not finished:
            return None, out, err
        # the worker's reply is on stdout; an exit code the zygote could not send is not a timeout
        return int(status) if status.strip().lstrip(b"-").isdigit() else 1, out, err

    def close(self) -> None:
        """Stop the zygote (it kills any worker still running) and remove its folder."""
        stop(self.process)
        self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop(process: subprocess.Popen) -> None:
    """End a zygote: its stdin closed, it kills what it forked and exits (else it is killed)."""
    with contextlib.suppress(OSError):
        process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def read_until(fd: int, deadline: float) -> bytes:
    """Bytes from `fd` up to a newline, EOF or the deadline."""
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not data.endswith(b"\n") and selector.select(max(0, deadline - time.monotonic())):
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    return data


def _read_both(out: int, err: int, deadline: float) -> tuple[bytes, bytes, bool]:
    """Read two pipes to EOF (closing them) or until the deadline; (out, err, reached EOF)."""
    chunks: dict[int, list[bytes]] = {out: [], err: []}
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            events = selector.select(left) if left > 0 else []
            if not events:
                break
            for key, _ in events:
                chunk = os.read(key.fd, 65536)
                if chunk:
                    chunks[key.fd].append(chunk)
                else:
                    selector.unregister(key.fd)
        finished = not selector.get_map()
    for fd in chunks:
        os.close(fd)
    return b"".join(chunks[out]), b"".join(chunks[err]), finished


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], Path(sys.argv[2])))
