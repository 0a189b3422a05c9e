"""Run Lambda handler code in-process, the way AWS's Python runtime (awslambdaric) would.

The public face of `helpers.gateway.runtime` (one concern per module: `environ`, `output`,
`loading`, `environments`, `credentials`, `invocation`) and of `workers` (the thread pool). Several
invocations run at once in one process, so three process-wide hooks make it thread-aware:
the `os.environ` overlay, the stdout/stderr/logging routing and the deployment-package
import finder. Importing this module installs them (`install()`), as it always has;
`uninstall()` takes them out again. Importing the modules behind it installs nothing.
"""

from __future__ import annotations

from .runtime import environ, loading, output
from .runtime.environments import Reclaim
from .runtime.invocation import (
    Invocation,
    LambdaContext,
    LambdaFunction,
    RunningInvocation,
    current_invocation,
)
from .runtime.output import clear_stray_output, stray_output
from .workers import WorkerPool

__all__ = [
    "Invocation",
    "LambdaContext",
    "LambdaFunction",
    "Reclaim",
    "RunningInvocation",
    "WorkerPool",
    "clear_stray_output",
    "current_invocation",
    "install",
    "stray_output",
    "uninstall",
]


def install() -> None:
    """Install the runtime's process-wide hooks (idempotent): the `os.environ` overlay,
    the stdout/stderr proxies and root-logger handler, and the import finder."""
    environ.install()
    output.install()
    loading.install()


def uninstall() -> None:
    """Take the hooks out again (idempotent); invocations then refuse to run until
    `install()`, rather than leak their output and environment into the process."""
    loading.uninstall()
    output.uninstall()
    environ.uninstall()


install()
