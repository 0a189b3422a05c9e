"""`os.environ` as each execution environment sees it, in one process.

On Lambda every execution environment is its own process with its own environment
variables (its function's `Environment` plus Lambda's own, e.g. `AWS_LAMBDA_FUNCTION_NAME`),
and a handler's writes stay in that sandbox. Here many environments share one process, so
`install()` replaces `os.environ` by an `_OverlayEnviron`: a thread running an invocation sees
its environment's overlay (a dict) over the real variables, and its writes land in the overlay,
which lives as long as the execution environment (warm invocations see them). Other threads
see the plain process environment, so `unittest.mock.patch.dict`, `os.getenv` and moto's
`mock_aws` work as before; the overlay shares the original's storage, so old references stay
coherent.

Limits: threads a handler starts itself, subprocesses, C code (`getenv(3)`) and modules that
did `from os import environ` before `install()` see only the process environment.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

#: An execution environment's variables; None marks a variable its handler deleted.
Overlay = dict[str, str | None]


class _Current(threading.local):
    overlay: Overlay | None = None


_current = _Current()


def set_overlay(overlay: Overlay | None) -> Overlay | None:
    """Make `overlay` what this thread's `os.environ` shows; returns the previous one."""
    previous, _current.overlay = _current.overlay, overlay
    return previous


class _OverlayEnviron(os._Environ):  # type: ignore[type-arg]
    """`os.environ` that shows the running invocation's variables over the process's."""

    def __getitem__(self, key: str) -> str:
        env = _current.overlay
        if env is not None and key in env:
            value = env[key]
            if value is None:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: str) -> None:
        env = _current.overlay
        if env is None:
            super().__setitem__(key, value)
            return
        if not isinstance(key, str) or not isinstance(value, str):
            bad = key if not isinstance(key, str) else value
            raise TypeError(f"str expected, not {type(bad).__name__}")
        env[key] = value

    def __delitem__(self, key: str) -> None:
        env = _current.overlay
        if env is None:
            super().__delitem__(key)
            return
        if key not in self:
            raise KeyError(key)
        env[key] = None

    def __iter__(self) -> Iterator[str]:
        env = _current.overlay
        if env is None:
            yield from super().__iter__()
            return
        env = dict(env)
        for key in super().__iter__():
            if key not in env:
                yield key
        for key, value in env.items():
            if value is not None:
                yield key

    def __len__(self) -> int:
        if _current.overlay is None:
            return super().__len__()
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {v!r}" for k, v in self.items())
        return f"environ({{{items}}})"

    def copy(self) -> dict[str, str]:
        return dict(self)


def _rebuild(environ: os._Environ, cls: type) -> os._Environ:  # type: ignore[type-arg]
    return cls(
        environ._data,  # type: ignore[attr-defined]  # the same storage
        environ.encodekey,  # type: ignore[attr-defined]
        environ.decodekey,  # type: ignore[attr-defined]
        environ.encodevalue,  # type: ignore[attr-defined]
        environ.decodevalue,  # type: ignore[attr-defined]
    )


def installed() -> bool:
    return type(os.environ) is _OverlayEnviron


def install() -> None:
    """Replace `os.environ` by the overlay (idempotent)."""
    if not installed():
        os.environ = _rebuild(os.environ, _OverlayEnviron)  # type: ignore[assignment]  # noqa: B003


def uninstall() -> None:
    """Put back a plain `os._Environ` on the same storage (idempotent)."""
    if installed():
        os.environ = _rebuild(os.environ, os._Environ)  # type: ignore[assignment]  # noqa: B003
