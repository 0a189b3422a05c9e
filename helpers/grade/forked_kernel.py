"""A kernel forked from the worker before any thread or event loop exists, started on demand.

The zygote's worker already holds ipykernel, boto3, moto and the rest in memory; a kernel
forked from it starts in milliseconds instead of importing them again. Forking is only safe
while the process has one thread and no zmq context or running event loop, and nbclient
starts a kernel from inside its event loop. So `KernelStub` forks early: the child waits on a
pipe for the command line jupyter_client would have run (`-f connection-file ...`), then
becomes that kernel. `StubKernelManager` hands jupyter_client the stub instead of a Popen, so
interrupts, the connection file, dead-kernel checks and shutdown work as for any kernel.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import sys
import tempfile
import time
import types
import uuid
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from helpers.grade import seal_keeper

LAUNCHER = "ipykernel_launcher"


class KernelStub:
    """A child process, in its own process group, that becomes a kernel when `start`ed.

    Has what jupyter_client uses of a Popen: pid, poll, wait, send_signal, kill, terminate.
    """

    stdin = stdout = stderr = None

    def __init__(self) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(write)
            os.setpgid(0, 0)
            try:
                _become_kernel(read)
            finally:
                os._exit(1)
        os.close(read)
        with contextlib.suppress(OSError):  # also here, so no signal can race the child's
            os.setpgid(pid, pid)
        self.pid, self.returncode, self._command = pid, None, write

    def start(self, cmd: list[str], cwd: str, env: dict[str, str]) -> None:
        """Tell the child which kernel to become."""
        data = json.dumps({"cmd": cmd, "cwd": cwd, "env": env}).encode()
        with os.fdopen(self._command, "wb") as pipe:
            pipe.write(data)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else (a subreaper's sweep)
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                return None
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL the kernel's whole process group (what it started too), and reap it."""
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        self.wait(timeout=10)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _become_kernel(command: int) -> None:  # pragma: no cover - runs in the child
    """Wait for the kernel's command line, then become the kernel of a notebook being graded."""
    chunks = []
    while chunk := os.read(command, 65536):
        chunks.append(chunk)
    if not chunks:  # the worker ended without starting us
        os._exit(0)
    order = json.loads(b"".join(chunks))
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    base_path = [p for p in sys.path if p.startswith(prefixes)]  # not the grader's helpers/
    lib = order["env"].get("PYTHONPATH", "").split(os.pathsep)[0]
    # the notebook's own copy of helpers/ (see `worker.serve`)
    become_kernel(order, base_path, seal=os.path.join(lib, "helpers", "checks.py") if lib else None)


def become_kernel(order: dict, base_path: list[str],
                  seal: str | None = None) -> None:  # pragma: no cover - runs in the child
    """Run ipykernel as `python -m ipykernel_launcher` would have; never returns.

    `order`: jupyter_client's command line, working directory and environment. `base_path`:
    sys.path after the script's folder and PYTHONPATH (which `order` decides). `seal`: the
    helpers/checks.py whose seal to keep (`seal_keeper`), when grading.
    """
    cmd, cwd, env = order["cmd"], order["cwd"], order["env"]
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the parent's pipes and sockets among them
    for name in list(sys.modules):  # the parent's own helpers: the kernel imports its own
        if name == "helpers" or name.startswith("helpers."):
            del sys.modules[name]
    sys.modules["__main__"] = types.ModuleType("__main__")
    # what `python -m ipykernel_launcher` has: PYTHONPATH, then the rest (the launcher takes
    # the working folder off; IPython puts "" back)
    sys.path[:] = [*filter(None, env.get("PYTHONPATH", "").split(os.pathsep)), *base_path]
    tempfile.tempdir = None  # TMPDIR is the notebook's own now
    if "matplotlib" in sys.modules:  # read MPLBACKEND when imported: what ipykernel would set
        sys.modules["matplotlib"].rcParams["backend"] = (
            env.get("MPLBACKEND") or "module://matplotlib_inline.backend_inline")
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if seal:
        seal_keeper.install(seal)
    args = cmd[cmd.index(LAUNCHER) + 1:]
    sys.argv = [importlib.util.find_spec(LAUNCHER).origin, *args]
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=args)
    os._exit(0)


class StubProvisioner(LocalProvisioner):
    """LocalProvisioner that starts its manager's `KernelStub` instead of a new process."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        stub: KernelStub = self.parent.stub
        env = kwargs.get("env") or dict(os.environ)
        stub.start(cmd, str(kwargs.get("cwd") or os.getcwd()), env)
        self.process, self.pid, self.pgid = stub, stub.pid, stub.pid
        self.cwd = kwargs.get("cwd")
        return self.connection_info


class OwnProvisioner:
    """Kernel-manager mixin: the kernel comes from `provisioner_type`, a provisioner that forks
    instead of starting a process, whatever the kernel spec names."""

    provisioner_type: type[LocalProvisioner]

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        self.kernel_id = self.kernel_id or str(uuid.uuid4())
        if self.provisioner is None:
            self.provisioner = self.provisioner_type(kernel_id=self.kernel_id,
                                                     kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)


class StubKernelManager(OwnProvisioner, AsyncKernelManager):
    """An AsyncKernelManager whose kernel is a `KernelStub` forked beforehand."""

    provisioner_type = StubProvisioner

    def __init__(self, stub: KernelStub, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stub = stub
