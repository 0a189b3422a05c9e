"""A deployment package's modules, imported under a private package name.

On Lambda the zip is extracted to `/var/task`, first on `sys.path`, in a process of its own,
so `import utils` finds the zip's `utils.py`. Here many functions, and many execution
environments of one function, share one process, so each environment imports the zip as a
synthetic package ``_lambda_<name>_<hex>`` whose ``__path__`` is the extracted directory:
two environments never share a `sys.modules` entry or module globals.

Modules from the zip run with a private ``__builtins__`` mapping whose ``__import__`` rewrites
absolute imports of names that exist at the top of the zip (``import utils`` ->
``_lambda_<name>_<hex>.utils``); other names import normally and every other builtin is looked
up live in `builtins`. A meta-path finder (`install()`) gives those modules that mapping.
Limits: `importlib.import_module("utils")` in handler code is not rewritten (use ``import``),
and modules report their prefixed ``__name__``.
"""

from __future__ import annotations

import atexit
import builtins
import importlib
import importlib.machinery
import io
import os
import re
import shutil
import sys
import tempfile
import threading
import types
import uuid
import zipfile
from collections.abc import Callable, Iterable
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no locks, so no sweeping; each process removes its own at exit
    fcntl = None  # type: ignore[assignment]

PACKAGE_PREFIX = "_lambda_"

Handler = Callable[[Any, Any], Any]


class InitError(Exception):
    """A load failure shaped like awslambdaric's FaultException (errorType, message, trace)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def extract(zip_bytes: bytes, function_name: str) -> str:
    """Extract a deployment package into a new folder of this process's `code_root`."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", function_name)
    directory = tempfile.mkdtemp(prefix=f"{safe}-", dir=code_root())
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            archive.extractall(directory)
    except Exception:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory


CODE_ROOT_PREFIX = "lambda-code-"
_code_roots: dict[int, str] = {}  # pid -> its folder (a fork claims its own)
_code_roots_lock = threading.Lock()


def code_root() -> str:
    """This process's folder for extracted packages, locked (flock) for as long as it lives.

    A function's folder goes when the function does (a finalizer), but a process killed first
    (a kernel shut down "now", with SIGKILL, as nbval and a forced restart do) runs no
    finalizer: its lock dies with it, so the next process that extracts code deletes the
    folder (`sweep_abandoned`)."""
    with _code_roots_lock:
        folder = _code_roots.get(os.getpid())
        if folder is None:
            folder = _claim_code_root()
            atexit.register(shutil.rmtree, folder, True)
            _code_roots[os.getpid()] = folder
        return folder


def _claim_code_root() -> str:
    """A new folder, locked before it gets the name a sweep looks for (never swept unlocked)."""
    if fcntl is None:
        return tempfile.mkdtemp(prefix=f"{CODE_ROOT_PREFIX}{os.getpid()}-")
    sweep_abandoned(tempfile.gettempdir())
    claimed = tempfile.mkdtemp(prefix=".claim-")
    fcntl.flock(os.open(claimed, os.O_RDONLY), fcntl.LOCK_EX)  # open until we exit: held
    suffix = os.path.basename(claimed).removeprefix(".claim-")
    folder = os.path.join(os.path.dirname(claimed), f"{CODE_ROOT_PREFIX}{os.getpid()}-{suffix}")
    os.rename(claimed, folder)  # the lock is the folder's (its inode's): it comes along
    return folder


def sweep_abandoned(parent: str) -> list[str]:
    """Delete the code folders in `parent` that no living process holds; what was deleted."""
    with os.scandir(parent) as entries:
        folders = [e.path for e in entries if e.name.startswith(CODE_ROOT_PREFIX) and e.is_dir()]
    deleted = []
    for folder in folders:
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:  # gone meanwhile, or not ours to read
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its process is alive
            continue
        else:
            shutil.rmtree(folder, ignore_errors=True)
            deleted.append(folder)
        finally:
            os.close(fd)
    return deleted


def new_package_name(function_name: str) -> str:
    """A fresh, importable package name for one execution environment of a function."""
    safe = re.sub(r"\W", "_", function_name)[:40]
    return f"{PACKAGE_PREFIX}{safe}_{uuid.uuid4().hex[:8]}"


def load_handler(code_dir: str, handler: str, package: str) -> Handler:
    """Import the handler module of `code_dir` under `package` (an environment's init).

    Raises `InitError` with the errorType and message awslambdaric reports; other exceptions
    raised by the module's init code propagate unchanged.
    """
    if not _finder_installed():
        raise RuntimeError(
            "The Lambda runtime's import hook is not installed: call "
            "helpers.gateway.lambda_runtime.install() first."
        )
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as exc:
        raise InitError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    top_names = _top_level_names(code_dir)
    dotted = modname.replace("/", ".")
    if dotted.partition(".")[0] not in top_names:
        raise InitError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{modname}': No module named '{dotted.partition('.')[0]}'",
        )
    _builtins_by_package[package] = _FunctionBuiltins(__import__=_make_import(package, top_names))
    pkg = types.ModuleType(package)
    pkg.__path__ = [code_dir]
    pkg.__package__ = package
    pkg.__spec__ = importlib.machinery.ModuleSpec(package, None, is_package=True)
    pkg.__spec__.submodule_search_locations = [code_dir]
    sys.modules[package] = pkg
    try:
        module = importlib.import_module(f"{package}.{dotted}")
    except ImportError as exc:
        unload(package)
        message = str(exc).replace(package + ".", "")
        raise InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{modname}': {message}"
        ) from None
    except SyntaxError as exc:
        unload(package)
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {(exc.text or "").strip()}']
        raise InitError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {exc}", trace
        ) from None
    except BaseException:
        unload(package)
        raise
    try:
        return getattr(module, fname)
    except AttributeError:
        unload(package)
        raise InitError(
            "Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'"
        ) from None


def unload(package: str) -> None:
    """Forget an environment's modules (its globals go with them)."""
    # sys.modules.copy() copies in one C call: other threads may be importing meanwhile
    for name in [n for n in sys.modules.copy() if n == package or n.startswith(package + ".")]:
        sys.modules.pop(name, None)
    _builtins_by_package.pop(package, None)


def remove_code(packages: Iterable[str], directory: str | None) -> None:
    """Forget every environment's modules and delete the extracted code (a finalizer)."""
    for package in list(packages):
        unload(package)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


def _top_level_names(root: str) -> frozenset[str]:
    """Module and package names importable from the top of a deployment package."""
    names = set()
    suffixes = [*importlib.machinery.SOURCE_SUFFIXES, *importlib.machinery.EXTENSION_SUFFIXES]
    for entry in os.listdir(root):
        full = os.path.join(root, entry)
        if os.path.isdir(full):
            if entry.isidentifier() and entry != "__pycache__":
                names.add(entry)
            continue
        for suffix in suffixes:
            if entry.endswith(suffix) and entry[: -len(suffix)].isidentifier():
                names.add(entry[: -len(suffix)])
    return frozenset(names)


# --------------------------------------------------------------------------- import hook


class _FunctionBuiltins(dict):  # type: ignore[type-arg]
    """A module's private builtins: our `__import__`, everything else live from `builtins`."""

    def __missing__(self, key: str) -> Any:
        try:
            return getattr(builtins, key)
        except AttributeError:
            raise KeyError(key) from None


def _make_import(package: str, top_names: frozenset[str]) -> Callable[..., Any]:
    def __import__(
        name: str,
        globals: dict[str, Any] | None = None,
        locals: dict[str, Any] | None = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        if level == 0 and name.partition(".")[0] in top_names:
            module = builtins.__import__(f"{package}.{name}", globals, locals, fromlist, 0)
            if not fromlist:
                return sys.modules[f"{package}.{name.partition('.')[0]}"]
            return module
        return builtins.__import__(name, globals, locals, fromlist, level)

    return __import__


class _CodeLoader:
    """Wraps a source loader so the module runs with its environment's private builtins."""

    def __init__(self, inner: Any, module_builtins: dict[str, Any]) -> None:
        self._inner = inner
        self._builtins = module_builtins

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__builtins__"] = self._builtins
        self._inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_builtins_by_package: dict[str, dict[str, Any]] = {}  # loaded package -> its private builtins


class _CodeFinder:
    """Meta-path finder for modules inside an extracted deployment package."""

    @classmethod
    def find_spec(cls, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(PACKAGE_PREFIX):
            return None
        module_builtins = _builtins_by_package.get(fullname.partition(".")[0])
        if module_builtins is None or path is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _CodeLoader(spec.loader, module_builtins)  # type: ignore[assignment]
        return spec


def _finder_installed() -> bool:
    return _CodeFinder in sys.meta_path


def install() -> None:
    """Put the deployment-package finder first on `sys.meta_path` (idempotent)."""
    if not _finder_installed():
        sys.meta_path.insert(0, _CodeFinder)  # type: ignore[arg-type]


def uninstall() -> None:
    """Remove the finder; packages loaded already keep working, new ones cannot load."""
    while _finder_installed():
        sys.meta_path.remove(_CodeFinder)  # type: ignore[arg-type]
