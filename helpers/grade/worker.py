"""Execute one graded notebook cell by cell in a fresh kernel (run inside `sandbox`).

    python -m helpers.grade.worker --helpers DIR --cell-timeout S --total-timeout S < nb > result

Reads the notebook JSON on stdin, writes {"notebook": ..., "problem": ...} JSON on stdout.
Every cell gets `cell_timeout` seconds; a cell that overruns is interrupted; if the kernel
ignores the interrupt (or dies, or the total time runs out) the remaining cells are marked
"not run" with the reason in `metadata.grading`, and the notebook still comes back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from traitlets.config import Config

from helpers.grade import sandbox
from helpers.grade.forked_kernel import KernelStub, StubKernelManager
from helpers.grade.steps import KERNEL_DID_NOT_START, NOT_RUN, limit_output

PROBE_TIMEOUT = 10  # seconds a kernel has to answer after an interrupt
STARTUP_TIMEOUT = 300  # seconds a kernel has to start: generous, a loaded machine is slow


class KernelDidNotStart(RuntimeError):
    """The kernel never answered; nothing of the notebook ran (so it can be tried again)."""


def _note(cell: nbformat.NotebookNode, status: str, message: str) -> None:
    cell.metadata["grading"] = {"status": status, "message": message}


def _skipped(cell: nbformat.NotebookNode) -> bool:
    from helpers.authoring import skipped

    return skipped(cell)


TIMED_OUT = "CellTimeoutError"


class _Client(NotebookClient):
    """nbclient, remembering whether the last cell timed out.

    On a timeout nbclient interrupts the kernel and hands back an error reply at once
    (`error_on_timeout`), and stops waiting for that cell's output after `iopub_timeout`,
    so a kernel that ignores the interrupt cannot stall the grader or steal later output.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.last_timed_out = False
        self.on_cell_executed = self._remember

    def _remember(self, cell: object = None, cell_index: int = 0,
                  execute_reply: dict | None = None) -> None:
        content = (execute_reply or {}).get("content", {})
        self.last_timed_out = content.get("ename") == TIMED_OUT

    def run(self, cell: nbformat.NotebookNode, index: int, timeout: float) -> bool:
        """Execute one cell within `timeout` seconds; True if it finished in time."""
        self.timeout, self.last_timed_out = int(max(1, timeout)), False
        self.execute_cell(cell, index)
        return not self.last_timed_out


def _responsive(client: _Client) -> bool:
    """After a timeout: does the kernel run a trivial cell within PROBE_TIMEOUT?"""
    return client.run(nbformat.v4.new_code_cell("pass"), 0, PROBE_TIMEOUT)


def execute(nb: nbformat.NotebookNode, cwd: Path, cell_timeout: float,
            total_timeout: float, stub: KernelStub | None = None) -> str | None:
    """Run `nb` in place; return a notebook-wide problem ("kernel died ..."), or None.

    The kernel is a fresh `python -m ipykernel_launcher`, or `stub` (forked beforehand, see
    `forked_kernel`). A kernel that does not start raises KernelDidNotStart. It talks over
    Unix sockets beside `cwd`, not TCP ports: with several kernels starting at once a port
    found free can be taken before the kernel binds it (a kernel that fails to start).
    """
    sockets = {"transport": "ipc", "ip": str(cwd.parent / "kernel")}
    client = _Client(
        nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, record_timing=False, raise_on_iopub_timeout=False,
        error_on_timeout={"ename": TIMED_OUT, "evalue": "", "traceback": []},
        iopub_timeout=5, shutdown_kernel="immediate", resources={"metadata": {"path": str(cwd)}},
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        startup_timeout=STARTUP_TIMEOUT,
        config=Config({"KernelManager": sockets}),
        km=StubKernelManager(stub, kernel_name="python3", **sockets) if stub else None,
    )
    deadline = time.monotonic() + total_timeout
    problem: str | None = None
    with contextlib.ExitStack() as stack:
        if stub is not None:
            stack.callback(stub.kill)
        try:
            stack.enter_context(client.setup_kernel(stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL))
        except Exception as error:  # timeouts, a kernel that died at once, zmq errors
            reason = str(error).strip().splitlines()[:1] or [type(error).__name__]
            raise KernelDidNotStart(reason[0][:300]) from error
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or _skipped(cell):
                continue
            if problem is not None:
                _note(cell, NOT_RUN, problem)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                problem = f"not run: the notebook used up its {total_timeout:.0f} s"
                _note(cell, NOT_RUN, problem)
                continue
            try:
                if not client.run(cell, index, min(cell_timeout, left)):
                    _note(cell, f"timed out after {client.timeout} s",
                          "the cell was still running when its time ran out")
                    if not _responsive(client):
                        problem = (f"not run: the kernel ignored the interrupt after cell "
                                   f"{index} timed out")
            except DeadKernelError:
                _note(cell, "kernel died", "the kernel process ended while this cell ran")
                problem = f"not run: the kernel died in cell {index}"
            limit_output(cell)
    return problem


def _read_tree(folder: Path) -> dict[Path, bytes]:
    """Every .py file under `folder` but the grader itself, by relative path."""
    return {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*.py")
            if "grade" not in path.relative_to(folder).parts}


def serve(trusted: dict[Path, bytes], cell_timeout: float, total_timeout: float, *,
          forked: bool = False) -> int:
    """Read the notebook on stdin, run it, write {"notebook", "problem", "started"} on stdout.

    `trusted`: helpers/ by relative path (`_read_tree`), copied afresh for this notebook.
    `forked`: this process is a fork of the zygote, so its kernel can be forked from it too.
    """
    nb = nbformat.reads(sys.stdin.read(), as_version=4)
    sandbox.become_subreaper()
    in_namespace = sandbox.private_tmp()
    base = Path(tempfile.mkdtemp(prefix="grade-", dir="/tmp" if in_namespace else None))
    try:
        # a fresh copy of helpers/ per notebook: edits by a submission die with it
        for relative, data in trusted.items():
            target = base / "lib" / "helpers" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        work = base / "work"
        work.mkdir()
        os.environ.update(
            PYTHONPATH=str(base / "lib"), TMPDIR=str(base), HOME=str(base),
            IPYTHONDIR=str(base / "ipython"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
            MPLCONFIGDIR=str(base / "mpl"), MPLBACKEND="agg",
        )
        sys.path.insert(0, str(base / "lib"))
        tempfile.tempdir = None  # a fork of the zygote may hold the zygote's
        started, problem = True, None
        try:
            problem = execute(nb, work, cell_timeout, total_timeout,
                              KernelStub() if forked else None)
        except KernelDidNotStart as error:
            started, problem = False, f"{KERNEL_DID_NOT_START}: {error}"
        sys.stdout.write(json.dumps({"notebook": nb, "problem": problem, "started": started}))
        sys.stdout.flush()
    finally:
        sandbox.kill_descendants()
        shutil.rmtree(base, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.grade.worker")
    parser.add_argument("--helpers", type=Path, required=True, help="trusted helpers/ to copy")
    parser.add_argument("--cell-timeout", type=float, default=120)
    parser.add_argument("--total-timeout", type=float, default=900)
    args = parser.parse_args()
    trusted = _read_tree(args.helpers)  # before /tmp (where it may live) is covered
    return serve(trusted, args.cell_timeout, args.total_timeout)


if __name__ == "__main__":
    sys.exit(main())
