"""Every change this project makes to other libraries, installed in one place, undoable.

The local gateway needs a few changes to code it does not own:

==========================  ==================================================================
``moto_gaps``               moto's apigatewayv2: deployments, ``get_route_responses``,
                            ``update_stage``, ``wss://`` endpoints, the 29 s integration
                            default, WebSocket validations, write counters; moto's DynamoDB:
                            bounded memory (`moto_gaps.dynamodb`)
``interception``            botocore and moto's stubber: ``@connections`` calls built the AWS
                            way reach a running local gateway (and its IAM check)
``lambda_runtime``          ``os.environ`` (per-invocation variables), ``sys.stdout`` and
                            ``sys.stderr`` (per-invocation capture), a logging handler, and a
                            ``sys.meta_path`` finder (each function's own modules)
==========================  ==================================================================

`install()` applies all of them (idempotent); `uninstall()` puts back what was there.
Importing `helpers.gateway` arranges for `install_moto_parts()` to run as soon as moto is
imported (`install_when_moto_is_imported`), so a plain ``moto.mock_aws()`` has the gaps filled;
importing a pure module (``helpers.gateway.routing``, ``events``, ...) imports neither moto nor
this module's targets, and patches nothing.

The changes themselves are made with `replace` and `add_entry`, which remember the original.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

_ABSENT = object()
_lock = threading.RLock()
#: (owner, attribute) -> (original or _ABSENT, our replacement), in installation order.
_replaced: dict[tuple[Any, str], tuple[Any, Any]] = {}
#: (id(mapping), key) -> (mapping, key, label): dict entries we added.
_added: dict[tuple[int, Any], tuple[MutableMapping[Any, Any], Any, str]] = {}


def replace(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Set ``owner.name = make(current)`` unless our replacement is already there.

    ``make`` receives the current attribute (for wrapping) and returns the new one. If
    something else was put back meanwhile (a test's monkeypatch), we wrap that.
    """
    with _lock:
        key = (owner, name)
        current = owner.__dict__.get(name, _ABSENT) if hasattr(owner, "__dict__") else _ABSENT
        known = _replaced.get(key)
        if known is not None and current is known[1]:
            return
        original = current if known is None else known[0]
        replacement = make(getattr(owner, name, None))
        if callable(replacement) and current is not _ABSENT:
            with contextlib.suppress(AttributeError):  # "what was there before us"
                replacement.__wrapped__ = getattr(owner, name)
        setattr(owner, name, replacement)
        _replaced[key] = (original, replacement)


def add_entry(mapping: MutableMapping[Any, Any], key: Any, value: Any, *, label: str) -> None:
    """``mapping.setdefault(key, value)``, remembered so that `uninstall` removes it;
    ``label`` names the mapping in `installed`."""
    with _lock:
        if key not in mapping:
            mapping[key] = value
            _added[(id(mapping), key)] = (mapping, key, label)


def is_replaced(owner: Any, name: str) -> bool:
    known = _replaced.get((owner, name))
    return known is not None and getattr(owner, name, None) is known[1]


_MOTO_PARTS = ("helpers.gateway.moto_gaps", "helpers.gateway.interception")
_deferred: set[str] = set()  # parts whose own import triggered the installation


def install_moto_parts() -> None:
    """moto's gaps, and the @connections interception (moto's stubber and botocore)."""
    _hook.disarm()  # importing moto below must not trigger a second, nested installation
    for name in _MOTO_PARTS:
        module = sys.modules.get(name)
        if module is not None and not hasattr(module, "install"):
            _deferred.add(name)  # it is importing moto right now: it installs when done
        else:
            importlib.import_module(name).install()


def install_if_deferred(name: str) -> None:
    """Called by each moto part at the end of its import: install it if moto's import (which
    it started) asked for it meanwhile."""
    if name in _deferred:
        _deferred.discard(name)
        importlib.import_module(name).install()


def install() -> None:
    """Install every patch listed above (idempotent)."""
    install_moto_parts()
    runtime = importlib.import_module("helpers.gateway.lambda_runtime")
    if hasattr(runtime, "install"):
        runtime.install()
    else:  # a runtime that installs at import: its installers are idempotent, call them anyway
        for name in ("_install_environ", "_install_streams", "_install_log_handler",
                     "_install_finder"):
            getattr(runtime, name, lambda: None)()


def uninstall() -> None:
    """Undo every patch made through this module, and the runtime's if it can undo its own."""
    with _lock:
        _hook.disarm()
        runtime = sys.modules.get("helpers.gateway.lambda_runtime")
        runtime_uninstall = getattr(runtime, "uninstall", None)
        if runtime_uninstall is not None:
            runtime_uninstall()
        for (owner, name), (original, _) in reversed(list(_replaced.items())):
            if original is _ABSENT:
                if name in getattr(owner, "__dict__", {}):
                    delattr(owner, name)
            else:
                setattr(owner, name, original)
        _replaced.clear()
        for mapping, key, _ in _added.values():
            mapping.pop(key, None)
        _added.clear()


def installed() -> list[str]:
    """What is patched now, as ``module.Owner.attribute`` names (for a reader or a test):
    ours, then the lambda runtime's (which it installs itself)."""
    names = []
    for (owner, name), (_, replacement) in _replaced.items():
        if getattr(owner, name, None) is replacement:
            names.append(f"{getattr(owner, '__module__', '')}.{owner.__qualname__}.{name}"
                         if isinstance(owner, type) else f"{owner.__name__}.{name}")
    names += [f"{label}[{key!r}]" for mapping, key, label in _added.values() if key in mapping]
    return names + _runtime_patches()


def _runtime_patches() -> list[str]:
    """The lambda runtime's replacements, recognised by their classes' home (this package)."""
    import logging
    import os

    def ours(obj: Any) -> bool:
        return getattr(type(obj), "__module__", "").startswith("helpers.gateway.") or (
            getattr(obj, "__module__", "") or "").startswith("helpers.gateway.")

    names = ["os.environ"] if ours(os.environ) else []
    names += [f"sys.{stream}" for stream in ("stdout", "stderr") if ours(getattr(sys, stream))]
    if any(ours(handler) for handler in logging.getLogger().handlers):
        names.append("logging.root.handlers")
    if any(ours(finder) and finder is not _hook for finder in sys.meta_path):
        names.append("sys.meta_path")
    return names


class _WhenMotoIsImported:
    """A `sys.meta_path` finder that runs `install_moto_parts` once moto has been imported."""

    def __init__(self) -> None:
        self.armed = False

    def arm(self) -> None:
        with _lock:
            if "moto" in sys.modules:
                install_moto_parts()
            elif not self.armed:
                self.armed = True
                sys.meta_path.insert(0, self)  # type: ignore[arg-type]

    def disarm(self) -> None:
        self.armed = False
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # type: ignore[arg-type]

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "moto" or not self.armed:
            return None
        self.disarm()  # one shot; and find moto's real spec without us in the way
        spec = importlib.util.find_spec("moto")
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module: Any) -> None:
            original_exec(module)
            sys.modules["moto"] = module  # as the import system will; submodules need it
            install_moto_parts()

        spec.loader = _Loader(loader, exec_module)
        return spec


class _Loader:
    """moto's own loader, with `exec_module` followed by our installation."""

    def __init__(self, inner: Any, exec_module: Callable[[Any], None]) -> None:
        self._inner, self.exec_module = inner, exec_module

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_hook = _WhenMotoIsImported()


def install_when_moto_is_imported() -> None:
    """Fill moto's gaps now if moto is loaded, else as soon as it is (what `import
    helpers.gateway` does, so that importing it costs no moto import)."""
    _hook.arm()


__all__ = ["add_entry", "install", "install_moto_parts", "install_when_moto_is_imported",
           "installed", "is_replaced", "replace", "uninstall"]
