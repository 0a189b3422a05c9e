"""Run a grading worker where nothing it starts can outlive it or reach the next learner.

Best: `unshare` gives the worker its own user, PID and mount namespaces (`--kill-child`): the
worker is PID 1 there, so when it ends the kernel ends, and so does every process a submission
started (servers, double forks); its /tmp is a private tmpfs that vanishes with it. Where user
namespaces are not allowed, the worker runs in its own session and process group, becomes a
child subreaper (orphans come back to it) and kills all its descendants before it exits; its
temporary files live in one directory it removes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
UNSHARE = ("unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount",
           "--propagation", "private", "--kill-child")


@functools.cache
def namespaces_available() -> bool:
    """Whether `unshare` can give us private PID and mount namespaces here (probed once).

    GRADE_NO_NAMESPACES=1 forces the fallback (process group, subreaper, own temp folder).
    """
    if os.environ.get("GRADE_NO_NAMESPACES") == "1" or shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run([*UNSHARE, "sh", "-c", "mount -t tmpfs tmpfs /tmp"],
                               capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def command(argv: Sequence[str]) -> list[str]:
    """`argv` wrapped so that it runs isolated (namespaces if available)."""
    return [*UNSHARE, *argv] if namespaces_available() else list(argv)


CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000


def enter_namespaces() -> None:
    """What `unshare --user --map-root-user --pid --mount --propagation private` does, in this
    (single-threaded) process: its next child is PID 1 of a new PID namespace. Raises OSError.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    for name, line in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                       ("gid_map", f"0 {gid} 1")):
        Path(f"/proc/self/{name}").write_text(line)
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")


def become_subreaper() -> None:
    """Orphaned descendants are re-parented to this process (Linux), so we can reap them."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def kill_descendants(pid: int | None = None, *, reap: bool = True) -> int:
    """SIGKILL every descendant of `pid` (default: this process), deepest first; how many.
    `reap`: wait for those that became our children (not when another loop reaps them)."""
    pid = os.getpid() if pid is None else pid
    seen: list[int] = []
    queue = children(pid)
    while queue:
        child = queue.pop()
        if child not in seen:
            seen.append(child)
            queue += children(child)
    for child in reversed(seen):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    for _ in seen if reap else []:  # reap what became our children
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
    return len(seen)


def private_tmp() -> bool:
    """Inside our own mount namespace: mount a fresh tmpfs on /tmp (True if done).

    When this Python, its packages or the course live under /tmp (a fresh clone made with
    `mktemp -d`, its .venv inside), their top folders are bound back into the new /tmp, or the
    tmpfs would hide them and the kernel with them. Everything else under /tmp is private.
    """
    if os.environ.get("GRADE_IN_NAMESPACE") != "1":
        return False
    tmp = Path("/tmp").resolve()
    keep = sorted({Path(where).resolve().relative_to(tmp).parts[0]
                   for where in (sys.prefix, sys.base_prefix, *sys.path, os.getcwd())
                   if where and Path(where).resolve().is_relative_to(tmp)
                   and Path(where).resolve() != tmp})

    def mount(*args: str) -> bool:
        return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0

    old = Path("/mnt")  # the old /tmp stays reachable here while we bind folders back
    if keep and not mount("--bind", str(tmp), str(old)):
        return False
    if not mount("-t", "tmpfs", "tmpfs", str(tmp)):
        return False
    for name in keep:
        (tmp / name).mkdir()
        mount("--bind", str(old / name), str(tmp / name))
    if keep:
        subprocess.run(["umount", "-l", str(old)], capture_output=True, check=False)
    return True


def run(argv: Sequence[str], stdin: bytes, timeout: float) -> tuple[int | None, bytes, bytes]:
    """Run `argv` isolated with `stdin`; (returncode or None on timeout, stdout, stderr).

    On timeout the whole process group is killed (and with namespaces, everything in them).
    """
    env = {**os.environ, "GRADE_IN_NAMESPACE": "1" if namespaces_available() else "0"}
    process = subprocess.Popen(command(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True, env=env)
    try:
        out, err = process.communicate(stdin, timeout=timeout)
        return process.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return None, out, err
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


if __name__ == "__main__":  # pragma: no cover - manual probe
    print("namespaces:", namespaces_available(), file=sys.stderr)
