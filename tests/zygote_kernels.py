"""The worker's side of `tests.kernel_zygote`: nbval kernels that the session's zygote forks.

`running_kernel` is nbval's RunningKernel with a KernelManager whose provisioner asks the zygote
for the kernel instead of starting a process; `ForkedKernel` stands in for the Popen, so
interrupts, dead-kernel checks and shutdown work as for any kernel.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import time
from typing import Any

from jupyter_client.manager import KernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager, RunningKernel

from helpers.grade.forked_kernel import OwnProvisioner
from helpers.grade.zygote import read_until


class ZygoteUnavailable(RuntimeError):
    """No kernel from the zygote (not started, failed, or gone): start a fresh one."""


class ForkedKernel:
    """What jupyter_client uses of a Popen, for a kernel forked by the zygote (its parent)."""

    stdin = stdout = stderr = None

    def __init__(self, connection: socket.socket, pid: int) -> None:
        self.connection, self.pid, self.returncode = connection, pid, None

    def poll(self) -> int | None:
        if self.returncode is None and self._readable(0):
            status = self.connection.recv(64).strip()  # empty: the zygote is gone, so are we
            self.returncode = int(status) if status.lstrip(b"-").isdigit() else -signal.SIGKILL
            self.connection.close()
        return self.returncode

    def _readable(self, timeout: float) -> bool:
        with selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ)
            return bool(selector.select(timeout))

    def wait(self, timeout: float | None = None) -> int | None:
        if self.returncode is None:
            self._readable(timeout)
        return self.poll()

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            self.wait(timeout=30)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def fork_kernel(address: str, cmd: list[str], cwd: str, env: dict[str, str],
                timeout: float) -> ForkedKernel:
    """Ask the zygote at `address` for a kernel; waits for it to start up to `timeout`."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(address)
        connection.sendall(json.dumps({"cmd": cmd, "cwd": cwd, "env": env}).encode() + b"\n")
        answer = read_until(connection.fileno(), time.monotonic() + timeout)
    except OSError as error:
        connection.close()
        raise ZygoteUnavailable(f"the zygote is not there ({error})") from error
    if not answer.strip().isdigit():
        connection.close()
        raise ZygoteUnavailable(f"the zygote forked no kernel ({answer!r})")
    return ForkedKernel(connection, int(answer))


class ZygoteProvisioner(LocalProvisioner):
    """LocalProvisioner whose kernel the zygote forks instead of a new process."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        manager: ZygoteKernelManager = self.parent
        cwd = str(kwargs.get("cwd") or os.getcwd())
        process = fork_kernel(manager.address, cmd, cwd, kwargs.get("env") or dict(os.environ),
                              manager.startup_timeout)
        self.process, self.pid, self.pgid, self.cwd = process, process.pid, process.pid, cwd
        return self.connection_info


class ZygoteKernelManager(OwnProvisioner, KernelManager):
    """A KernelManager whose kernel is forked by the zygote at `address`."""

    provisioner_type = ZygoteProvisioner

    def __init__(self, address: str, startup_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.address, self.startup_timeout = address, startup_timeout


def running_kernel(address: str, cwd: str, startup_timeout: float) -> RunningKernel:
    """nbval's RunningKernel for this environment's Python (`--nbval-current-env`), forked."""
    manager = ZygoteKernelManager(address, startup_timeout, kernel_name=CURRENT_ENV_KERNEL_NAME,
                                  kernel_spec_manager=NbvalKernelspecManager())
    manager.start_kernel(stderr=subprocess.DEVNULL, cwd=cwd)
    kernel = RunningKernel.__new__(RunningKernel)  # its __init__ starts a new process
    kernel.km, kernel.kc = manager, manager.client()
    kernel.kc.start_channels()
    try:
        kernel.kc.wait_for_ready(timeout=startup_timeout)
        kernel._ensure_iopub_up()
    except RuntimeError:
        kernel.stop()
        raise
    return kernel
