"""Keep `helpers.checks`'s seal in place in a graded kernel, where an answer cannot remove it.

The seal puts sealed helpers modules back into `sys.modules` before every cell from an IPython
pre_run_cell callback, and an answer cell can unregister that callback before handing the
check cells a fake `helpers.checks`. The grader's kernels (forked from the zygote) add an audit
hook first, and Python has no way to remove an audit hook: on every `exec` (IPython runs each
cell with it) the hook finds the real `helpers.checks` (the module loaded from this kernel's
own copy of helpers/), puts the sealed modules back and registers the callback again. The
checks then see the replacement and refuse (Tampered). nbgrader starts its own kernels, so
this guard is `helpers.grade`'s only.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any


def keeper(checks_file: str) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook for a kernel whose trusted helpers/checks.py is `checks_file`.

    At the first `exec` once IPython's shell exists (before any cell's code runs) it imports
    helpers.checks itself, so what it keeps is the real module and its real functions, taken
    before an answer could touch them.
    """
    trusted = os.path.realpath(checks_file)
    kept: list[Callable[[], Any]] = []  # put_back, shell
    busy: list[bool] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event != "exec" or busy:
            return
        busy.append(True)
        try:
            if not kept:
                shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
                if shell is None:
                    return
                checks = importlib.import_module("helpers.checks")
                if os.path.realpath(getattr(checks, "__file__", "") or "") != trusted:
                    return
                kept.extend([checks._put_back_sealed_modules, checks._shell])
            put_back, shell_of = kept
            put_back()
            shell = shell_of()
            if shell is not None and put_back not in shell.events.callbacks.get(
                    "pre_run_cell", []):
                shell.events.register("pre_run_cell", put_back)
        finally:
            busy.clear()

    return hook


def install(checks_file: str) -> None:
    """Add the hook (for good: audit hooks cannot be removed)."""
    sys.addaudithook(keeper(checks_file))
