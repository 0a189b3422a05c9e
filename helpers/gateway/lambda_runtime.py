"""Run Lambda handler code in-process, the way AWS's Python runtime (awslambdaric) would.

The gateway calls `LambdaFunction.invoke` on worker threads (`WorkerPool`), never on its
event loop. Each call returns an `Invocation`: the result or an AWS-shaped error, and the
CloudWatch-style log lines of that one call. Handler errors never escape as exceptions.

Several invocations may run at once in one process, so three process-wide things are made
thread-aware, once, at import (idempotent, also across `importlib.reload`):

* `os.environ` becomes an `_OverlayEnviron`: during an invocation the running thread sees its
  function's variables (its `environment` plus Lambda's own, e.g. `AWS_LAMBDA_FUNCTION_NAME`)
  over the real environment, and its writes stay in that overlay, which persists between warm
  invocations of that function like a sandbox's environment. Outside invocations it is the
  plain process environment (`unittest.mock.patch.dict`, `os.getenv`, moto's `mock_aws` work
  as before; it shares the original's storage, so old references stay coherent).
  Limits: threads a handler starts itself, subprocesses, C code (`getenv(3)`) and modules that
  did `from os import environ` before import see only the process environment.
* `sys.stdout`/`sys.stderr` become `_RoutedStream` proxies: a capturing thread's text goes to
  its invocation's `logs` (one entry per line); other threads write to the original stream
  (e.g. ipykernel's OutStream), except threads named ``gateway-*``, whose stray output is kept
  for `stray_output()` and never reaches a notebook cell (reference teaching-notebooks 7.4).
  The proxies are re-installed at each invocation, because pytest's capsys or
  `contextlib.redirect_stdout` may swap the streams after import.
* The root logger gets one `_CaptureLogHandler` that formats records like Lambda's runtime
  (``[INFO]\\t<UTC time>Z\\t<request id>\\tmessage``) for capturing threads only. Levels are
  the process's: like on AWS (awslambdaric sets no level unless AWS_LAMBDA_LOG_LEVEL is set),
  the root logger defaults to WARNING, so handlers call ``logger.setLevel(logging.INFO)``;
  note that call changes the one process-wide root logger, shared by all functions.

Sibling modules of a zip package: each function's code is imported as a synthetic package
``_lambda_<name>_<hex>`` whose ``__path__`` is the extracted directory, so two functions' ``app``
modules never share a `sys.modules` entry. Modules from the zip run with a private
``__builtins__`` mapping whose ``__import__`` rewrites absolute imports of names that exist at
the top of the zip (``import utils`` -> ``_lambda_<name>_<hex>.utils``); other names import
normally and every other builtin is looked up live in `builtins`. So each function sees its own
siblings (also vendored packages), as `/var/task` first on `sys.path` gives on AWS. Limits:
`importlib.import_module("utils")` in handler code is not rewritten (use ``import``), and
modules report their prefixed ``__name__``. Concurrent invocations of one function share one
module instance (AWS would start a second sandbox with its own cold start).

`context.memory_limit_in_mb` is a ``str`` ("128"), as awslambdaric reads it from
AWS_LAMBDA_FUNCTION_MEMORY_SIZE (powertools' typing says int; the runtime gives str).
"""

from __future__ import annotations

import builtins
import collections
import concurrent.futures
import contextlib
import datetime as _dt
import decimal
import importlib
import importlib.machinery
import itertools
import json
import logging
import math
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import types
import uuid
import weakref
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .config import DEFAULT_ACCOUNT_ID, DEFAULT_REGION

__all__ = [
    "Invocation",
    "LambdaContext",
    "LambdaFunction",
    "RunningInvocation",
    "WorkerPool",
    "clear_stray_output",
    "current_invocation",
    "stray_output",
]

VERSION = "$LATEST"
_PACKAGE_PREFIX = "_lambda_"
_REPORTED_MEMORY_MB = 40  # a process cannot attribute memory to one thread; AWS shows ~40 MB
_STRAY_LIMIT = 1000


class _ThreadState(threading.local):
    """What the current thread is running: its capture and its environment overlay."""

    capture: _Capture | None = None
    env: dict[str, str | None] | None = None
    invocation: RunningInvocation | None = None


try:  # keep process-wide state across importlib.reload (the module dict survives a reload)
    _tls  # type: ignore[has-type]  # noqa: B018
except NameError:
    _tls = _ThreadState()


# --------------------------------------------------------------------------- environment


class _OverlayEnviron(os._Environ):  # type: ignore[type-arg]
    """`os.environ` that shows the running invocation's variables over the process's.

    The overlay maps a name to its value, or to None for a variable the handler deleted.
    """

    _lambda_overlay = True

    def __getitem__(self, key: str) -> str:
        env = _tls.env
        if env is not None and key in env:
            value = env[key]
            if value is None:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: str) -> None:
        env = _tls.env
        if env is None:
            super().__setitem__(key, value)
            return
        if not isinstance(key, str) or not isinstance(value, str):
            bad = key if not isinstance(key, str) else value
            raise TypeError(f"str expected, not {type(bad).__name__}")
        env[key] = value

    def __delitem__(self, key: str) -> None:
        env = _tls.env
        if env is None:
            super().__delitem__(key)
            return
        if key not in self:
            raise KeyError(key)
        env[key] = None

    def __iter__(self) -> Iterator[str]:
        env = _tls.env
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
        if _tls.env is None:
            return super().__len__()
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {v!r}" for k, v in self.items())
        return f"environ({{{items}}})"

    def copy(self) -> dict[str, str]:
        return dict(self)


def _install_environ() -> None:
    """Replace `os.environ` once; on reload, rebuild around the same storage."""
    current = os.environ
    if type(current) is _OverlayEnviron:
        return
    os.environ = _OverlayEnviron(  # type: ignore[assignment]  # noqa: B003 - same storage
        current._data,  # type: ignore[attr-defined]
        current.encodekey,  # type: ignore[attr-defined]
        current.decodekey,  # type: ignore[attr-defined]
        current.encodevalue,  # type: ignore[attr-defined]
        current.decodevalue,  # type: ignore[attr-defined]
    )


# --------------------------------------------------------------------------- output capture


class _Capture:
    """The log lines of one invocation; only its own thread writes to it."""

    __slots__ = ("lines", "partial", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.lines: list[str] = []
        self.partial: dict[str, str] = {}

    def write(self, stream: str, text: str) -> None:
        buffered = self.partial.get(stream, "") + text
        if "\n" not in buffered:
            self.partial[stream] = buffered
            return
        *complete, rest = buffered.split("\n")
        self.lines.extend(complete)
        self.partial[stream] = rest

    def flush_partial(self) -> None:
        for rest in self.partial.values():
            if rest:
                self.lines.append(rest)
        self.partial.clear()


try:
    _stray, _stray_lock  # type: ignore[has-type]  # noqa: B018
except NameError:
    _stray_lock = threading.Lock()
    _stray: collections.deque[tuple[str, str, str]] = collections.deque(maxlen=_STRAY_LIMIT)


def _record_stray(thread_name: str, stream: str, text: str) -> None:
    with _stray_lock:
        if _stray and _stray[-1][:2] == (thread_name, stream) and not _stray[-1][2].endswith("\n"):
            text = _stray.pop()[2] + text  # print() writes the text and its newline apart
        _stray.append((thread_name, stream, text))


def stray_output() -> list[tuple[str, str, str]]:
    """(thread name, "stdout"/"stderr"/"logging", text) written by idle gateway threads.

    Kept instead of printed, so background threads never write into notebook cells.
    """
    with _stray_lock:
        return list(_stray)


def clear_stray_output() -> None:
    with _stray_lock:
        _stray.clear()


class _RoutedStream:
    """sys.stdout/sys.stderr proxy that routes each write by the writing thread."""

    _lambda_routed = True

    def __init__(self, original: Any, name: str) -> None:
        self._original = original
        self._stream_name = name

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        capture = _tls.capture
        if capture is not None:
            capture.write(self._stream_name, text)
            return len(text)
        thread_name = threading.current_thread().name
        if thread_name.startswith("gateway-") or self._original is None:
            if text:
                _record_stray(thread_name, self._stream_name, text)
            return len(text)
        return self._original.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _tls.capture is None and self._original is not None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def _install_streams() -> None:
    """Put the routing proxies in place (cheap when they already are)."""
    if not isinstance(sys.stdout, _RoutedStream):
        sys.stdout = _RoutedStream(sys.stdout, "stdout")  # type: ignore[assignment]
    if not isinstance(sys.stderr, _RoutedStream):
        sys.stderr = _RoutedStream(sys.stderr, "stderr")  # type: ignore[assignment]


class _LambdaFormatter(logging.Formatter):
    """awslambdaric's text format, in UTC, with the invocation's request id."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )


class _CaptureLogHandler(logging.Handler):
    """Root-logger handler that keeps records of capturing threads in their invocation."""

    _lambda_capture = True

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_LambdaFormatter())

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: captures are per thread
        capture = _tls.capture
        if capture is not None:
            record.aws_request_id = capture.request_id
            try:
                capture.lines.append(self.format(record))
            except Exception:
                self.handleError(record)
            return True
        thread_name = threading.current_thread().name
        if thread_name.startswith("gateway-"):
            try:
                _record_stray(thread_name, "logging", record.getMessage())
            except Exception:
                self.handleError(record)
        elif self._only_handler(record):
            last = logging.lastResort  # our presence would otherwise silence lastResort
            if last is not None and record.levelno >= last.level:
                last.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        pass

    def _only_handler(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return False
            if not logger.propagate:
                break
            logger = logger.parent
        return True


def _install_log_handler() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_lambda_capture", False) and type(handler) is not _CaptureLogHandler:
            root.removeHandler(handler)  # left by an earlier version of this module (reload)
    if not any(type(h) is _CaptureLogHandler for h in root.handlers):
        root.addHandler(_CaptureLogHandler())


# --------------------------------------------------------------------------- loading code


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
    """Wraps a source loader so the module runs with its function's private builtins."""

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


try:
    _code_packages  # type: ignore[has-type]  # noqa: B018
except NameError:
    _code_packages: dict[str, dict[str, Any]] = {}  # package name -> its private builtins


class _CodeFinder:
    """Meta-path finder for modules inside an extracted deployment package."""

    _lambda_finder = True

    @classmethod
    def find_spec(cls, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(_PACKAGE_PREFIX):
            return None
        module_builtins = _code_packages.get(fullname.partition(".")[0])
        if module_builtins is None or path is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _CodeLoader(spec.loader, module_builtins)  # type: ignore[assignment]
        return spec


def _install_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "_lambda_finder", False)]
    sys.meta_path.insert(0, _CodeFinder)  # type: ignore[arg-type]


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


def _purge_package(package: str) -> None:
    for name in [n for n in sys.modules if n.startswith(package + ".")]:
        sys.modules.pop(name, None)


def _remove_code(package: str, directory: str | None) -> None:
    """Finalizer: forget a function's modules and delete its extracted code."""
    _purge_package(package)
    sys.modules.pop(package, None)
    _code_packages.pop(package, None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


class _InitError(Exception):
    """A load failure shaped like awslambdaric's FaultException."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


# --------------------------------------------------------------------------- public API


@dataclass(eq=False)
class RunningInvocation:
    """The invocation the current thread is running: who calls, and whether it may still act.

    The `@connections` code asks `current_invocation()` for it: `function.role` decides what
    the call may do (IAM), and a `frozen` invocation (past its timeout: AWS freezes the
    sandbox) may do nothing at all.
    """

    function: LambdaFunction
    request_id: str
    frozen: bool = False


def current_invocation() -> RunningInvocation | None:
    """The invocation running on this thread, or None outside any handler (the account owner)."""
    return _tls.invocation



@dataclass
class Invocation:
    """The outcome of one call; handler errors are data here, never exceptions."""

    function_name: str
    request_id: str
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    duration_ms: float = 0.0
    init_duration_ms: float | None = None
    logs: list[str] = field(default_factory=list)
    environment: str | None = None  # which execution environment served it (its log stream)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_message(self) -> str | None:
        """Lambda's `errorMessage`: the text without the `errorType: ` prefix.

        API Gateway reads it, e.g. an authorizer that raises "Unauthorized" means 401.
        """
        if self.error is None or not self.error_type:
            return self.error
        prefix = f"{self.error_type}: "
        return self.error[len(prefix):] if self.error.startswith(prefix) else self.error


class LambdaContext:
    """The `context` argument, with the attributes awslambdaric's LambdaContext has."""

    def __init__(self, function: LambdaFunction, request_id: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.function_name = function.name
        self.function_version = VERSION
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = str(function.memory_size)  # a str, as on AWS
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = function.log_stream_name
        self.client_context = None
        self.identity = None
        self._deadline = deadline  # time.monotonic() value

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def log(self, message: str) -> None:
        sys.stdout.write(message)

    def __repr__(self) -> str:
        return (
            f"LambdaContext(aws_request_id={self.aws_request_id!r}, "
            f"function_name={self.function_name!r})"
        )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    raise TypeError(f"{obj!r} is not JSON serializable")


# One encoder for every call: json.dumps(default=...) would build a new one each time.
_to_json = json.JSONEncoder(default=_json_default).encode


def _request_id() -> str:
    """A random (version 4) UUID string, like Lambda's request ids; cheaper than uuid4()."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _utc_stamp() -> str:
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class LambdaFunction:
    """One deployed function: its configuration, its code and its warm module state."""

    def __init__(
        self,
        *,
        name: str,
        handler: str,
        arn: str | None = None,
        environment: dict[str, str] | None = None,
        timeout: float = 3.0,
        memory_size: int = 128,
        region: str = DEFAULT_REGION,
        code_dir: str | None = None,
        callable_: Callable[[Any, Any], Any] | None = None,
        role: str | None = None,
    ) -> None:
        self.name = name
        self.role = role  # the execution role's ARN; None: no IAM checks (plain callables)
        self.handler = handler
        self.region = region
        self.arn = arn or f"arn:aws:lambda:{region}:{DEFAULT_ACCOUNT_ID}:function:{name}"
        self.environment: dict[str, str] = dict(environment or {})
        self.timeout = float(timeout)
        self.memory_size = int(memory_size)
        self.code_dir = code_dir
        today = _dt.datetime.now(_dt.UTC).strftime("%Y/%m/%d")
        self.log_stream_name = f"{today}/[{VERSION}]{uuid.uuid4().hex}"
        self._callable = callable_
        self._handler_fn: Callable[[Any, Any], Any] | None = None
        self._load_lock = threading.Lock()
        self._sandbox_env: dict[str, str | None] | None = None
        safe = re.sub(r"\W", "_", name)[:40]
        self._package = f"{_PACKAGE_PREFIX}{safe}_{uuid.uuid4().hex[:8]}"
        self._finalizer = weakref.finalize(self, _remove_code, self._package, code_dir)

    def __repr__(self) -> str:
        return f"LambdaFunction(name={self.name!r}, handler={self.handler!r})"

    @classmethod
    def from_zip(
        cls,
        zip_bytes: bytes,
        handler: str,
        *,
        name: str,
        arn: str | None = None,
        environment: dict[str, str] | None = None,
        timeout: float = 3.0,
        memory_size: int = 128,
        region: str = DEFAULT_REGION,
        role: str | None = None,
    ) -> LambdaFunction:
        """A function from a deployment package (what `Code={"ZipFile": ...}` carries).

        The zip is extracted now into its own temp dir; the handler module loads lazily on the
        first invocation (the cold start).
        """
        import io

        directory = tempfile.mkdtemp(prefix=f"lambda-{re.sub(r'[^A-Za-z0-9_-]', '_', name)}-")
        try:
            with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
                archive.extractall(directory)
        except Exception:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return cls(
            name=name,
            handler=handler,
            arn=arn,
            environment=environment,
            timeout=timeout,
            memory_size=memory_size,
            region=region,
            code_dir=directory,
            role=role,
        )

    @classmethod
    def from_callable(
        cls,
        fn: Callable[[Any, Any], Any],
        *,
        name: str | None = None,
        environment: dict[str, str] | None = None,
        timeout: float = 3.0,
        memory_size: int = 128,
        region: str = DEFAULT_REGION,
    ) -> LambdaFunction:
        """A plain Python function as a handler, for lessons and tests (no zip, no import)."""
        return cls(
            name=name or fn.__name__,
            handler=f"{fn.__module__}.{fn.__qualname__}",
            environment=environment,
            timeout=timeout,
            memory_size=memory_size,
            region=region,
            callable_=fn,
        )

    def close(self) -> None:
        """Forget the loaded modules and delete the extracted code (also done on GC/exit)."""
        self._finalizer()

    # -- environment ------------------------------------------------------------------

    def lambda_environment(self) -> dict[str, str]:
        """The variables a handler of this function sees on top of the process's."""
        env = dict(self.environment)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": self.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": VERSION,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "_HANDLER": self.handler,
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream_name,
                "AWS_EXECUTION_ENV": "AWS_Lambda_python{}.{}".format(*sys.version_info[:2]),
            }
        )
        if self.code_dir:
            env["LAMBDA_TASK_ROOT"] = self.code_dir
        return env

    # -- loading ----------------------------------------------------------------------

    def _load(self) -> Callable[[Any, Any], Any]:
        """Import the handler module under this function's package (cold start)."""
        if self._callable is not None:
            return self._callable
        try:
            modname, fname = self.handler.rsplit(".", 1)
        except ValueError as exc:
            raise _InitError(
                "Runtime.MalformedHandlerName", f"Bad handler '{self.handler}': {exc}"
            ) from None
        assert self.code_dir is not None
        top_names = _top_level_names(self.code_dir)
        dotted = modname.replace("/", ".")
        if dotted.partition(".")[0] not in top_names:
            raise _InitError(
                "Runtime.ImportModuleError",
                f"Unable to import module '{modname}': No module named "
                f"'{dotted.partition('.')[0]}'",
            )
        package = self._package
        module_builtins = _FunctionBuiltins(__import__=_make_import(package, top_names))
        _code_packages[package] = module_builtins
        if package not in sys.modules:
            pkg = types.ModuleType(package)
            pkg.__path__ = [self.code_dir]
            pkg.__package__ = package
            pkg.__spec__ = importlib.machinery.ModuleSpec(package, None, is_package=True)
            pkg.__spec__.submodule_search_locations = [self.code_dir]
            sys.modules[package] = pkg
        try:
            module = importlib.import_module(f"{package}.{dotted}")
        except ImportError as exc:
            _purge_package(package)
            message = str(exc).replace(package + ".", "")
            raise _InitError(
                "Runtime.ImportModuleError", f"Unable to import module '{modname}': {message}"
            ) from None
        except SyntaxError as exc:
            _purge_package(package)
            trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {(exc.text or "").strip()}']
            raise _InitError(
                "Runtime.UserCodeSyntaxError",
                f"Syntax error in module '{modname}': {exc}",
                trace,
            ) from None
        except BaseException:
            _purge_package(package)
            raise
        try:
            return getattr(module, fname)
        except AttributeError:
            raise _InitError(
                "Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'"
            ) from None

    def _ensure_loaded(self) -> tuple[Callable[[Any, Any], Any], float | None]:
        """The handler, loading it once (thread-safe); init ms when this call loaded it."""
        handler_fn = self._handler_fn
        if handler_fn is not None:
            return handler_fn, None
        with self._load_lock:
            if self._handler_fn is not None:
                return self._handler_fn, None
            started = time.perf_counter()
            handler_fn = self._load()
            self._handler_fn = handler_fn
            return handler_fn, (time.perf_counter() - started) * 1000

    # -- invoking ---------------------------------------------------------------------

    def invoke(
        self,
        event: dict[str, Any],
        *,
        copy_event: bool = True,
        started: Callable[[RunningInvocation], None] | None = None,
    ) -> Invocation:
        """Run the handler once in the calling thread; return what Lambda would report.

        The handler gets its own JSON-decoded copy of the event, as on AWS; a caller that
        builds a fresh JSON-safe event per call and never reads it again (the gateway) may
        skip that copy with `copy_event=False`. `started` is called (on this thread) just
        before the handler code runs: the function's timeout counts from there.
        """
        request_id = _request_id()
        capture = _Capture(request_id)
        outcome = Invocation(function_name=self.name, request_id=request_id)
        if self._sandbox_env is None:
            self._sandbox_env = dict(self.lambda_environment())
        saved = (_tls.capture, _tls.env, _tls.invocation)
        _install_streams()
        _tls.capture, _tls.env = capture, self._sandbox_env
        _tls.invocation = RunningInvocation(self, request_id)
        init_ms: float | None = None
        duration_ms = 0.0
        timed_out = False
        try:
            init_started = time.perf_counter()
            try:
                handler_fn, init_ms = self._ensure_loaded()
            except _InitError as exc:
                init_ms = (time.perf_counter() - init_started) * 1000
                handler_fn = None
                self._fail(outcome, exc.error_type, exc.message, exc.trace)
            except Exception as exc:
                init_ms = (time.perf_counter() - init_started) * 1000
                handler_fn = None
                self._fail_with(outcome, exc)
            capture.flush_partial()
            init_lines, capture.lines = capture.lines, []
            deadline = time.monotonic() + self.timeout
            began = time.perf_counter()
            if handler_fn is not None:
                payload = event
                if copy_event:
                    with contextlib.suppress(TypeError, ValueError):
                        payload = json.loads(_to_json(event))
                context = LambdaContext(self, request_id, deadline)
                if started is not None:
                    started(_tls.invocation)
                try:
                    raw = handler_fn(payload, context)
                except Exception as exc:
                    self._fail_with(outcome, exc)
                else:
                    try:
                        outcome.result = json.loads(_to_json(raw))
                    except (TypeError, ValueError) as exc:
                        self._fail(
                            outcome, "Runtime.MarshalError", f"Unable to marshal response: {exc}"
                        )
            duration_ms = (time.perf_counter() - began) * 1000
            capture.flush_partial()
            timed_out = duration_ms > self.timeout * 1000
            if timed_out:
                message = f"Task timed out after {self.timeout:.2f} seconds"
                capture.lines.append(f"{_utc_stamp()} {request_id} {message}")
                outcome.result = None
                outcome.error_type = "Sandbox.Timedout"
                outcome.error = f"Sandbox.Timedout: RequestId: {request_id} Error: {message}"
        finally:
            _tls.capture, _tls.env, _tls.invocation = saved
        outcome.duration_ms = duration_ms
        outcome.init_duration_ms = init_ms
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\t"
            f"Memory Size: {self.memory_size} MB\t"
            f"Max Memory Used: {min(self.memory_size, _REPORTED_MEMORY_MB)} MB"
        )
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        if timed_out:
            report += "\tStatus: timeout"
        outcome.logs = [
            *init_lines,
            f"START RequestId: {request_id} Version: {VERSION}",
            *capture.lines,
            f"END RequestId: {request_id}",
            report,
        ]
        return outcome

    def _fail_with(self, outcome: Invocation, exc: BaseException) -> None:
        frames = [
            frame
            for frame in traceback.extract_tb(exc.__traceback__)
            if frame.filename != __file__ and "importlib._bootstrap" not in frame.filename
        ]
        self._fail(outcome, type(exc).__name__, str(exc), traceback.format_list(frames))

    def _fail(
        self, outcome: Invocation, error_type: str, message: str, trace: list[str] | None = None
    ) -> None:
        """Record an error as awslambdaric's log_error prints it."""
        outcome.error_type = error_type
        outcome.error = f"{error_type}: {message}" if message else error_type
        lines = [f"[ERROR] {outcome.error}", "Traceback (most recent call last):"]
        for element in trace or []:
            lines.extend(element.rstrip("\n").splitlines())
        capture = _tls.capture
        if capture is not None:
            capture.flush_partial()
            capture.lines.append("\n".join(lines))


# --------------------------------------------------------------------------- worker pool


class WorkerPool:
    """Daemon threads that run invocations off the event loop.

    Python runs one thread at a time (the GIL), so for handlers that compute, more threads
    only add switching: measured here, one busy worker answers ~25% more messages per second
    than ten. Handlers that block (sleep, wait, hang) are another matter: a thread is only
    started at once while fewer than `eager` exist; after that, work that has waited
    `grow_after` seconds without a free worker gets a new thread (up to `max_workers`), so a
    handler that never returns holds only its own thread. Workers beyond `keep_idle` exit
    after `idle_timeout` idle.
    """

    def __init__(
        self,
        *,
        name: str = "gateway-worker",
        max_workers: int = 256,
        keep_idle: int = 4,
        idle_timeout: float = 30.0,
        eager: int = 1,
        grow_after: float = 0.005,
    ) -> None:
        self.name = name
        self.max_workers = max_workers
        self.keep_idle = keep_idle
        self.idle_timeout = idle_timeout
        self.eager = eager
        self.grow_after = grow_after
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = threading.Condition(self._lock)  # wakes the grower
        self._idle = 0  # workers waiting for work that no submit has claimed yet
        self._unclaimed = 0  # queued work that no worker has claimed yet
        self._threads: set[threading.Thread] = set()
        self._numbers = itertools.count(1)
        self._closed = False
        self._grower: threading.Thread | None = None
        self._last_finish = time.monotonic()

    @property
    def size(self) -> int:
        return len(self._threads)

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("WorkerPool is shut down")
            if self._idle > 0:
                self._idle -= 1
            elif len(self._threads) < min(self.eager, self.max_workers):
                self._start_worker()
            else:
                self._unclaimed += 1
                self._start_grower()
                self._waiting.notify()
            self._queue.put((future, fn, args, kwargs))
        return future

    def _start_worker(self) -> None:
        """Lock held."""
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{next(self._numbers)}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _start_grower(self) -> None:
        """Lock held: the thread that adds workers when queued work waits too long."""
        if self._grower is None:
            self._grower = threading.Thread(target=self._grow, name=f"{self.name}-grower",
                                            daemon=True)
            self._grower.start()

    def _grow(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._unclaimed:
                    self._waiting.wait()
                    continue
                self._waiting.wait(self.grow_after)
                # Work waits and no worker has finished anything for a whole `grow_after`:
                # they are all blocked (sleeping, hung), not just busy. Add one.
                stalled = time.monotonic() - self._last_finish >= self.grow_after
                if self._unclaimed and stalled and not self._closed \
                        and len(self._threads) < self.max_workers:
                    self._unclaimed -= 1
                    self._start_worker()

    def _finished(self) -> None:
        """Lock held: a worker is free; it takes queued work if any, else counts as idle."""
        self._last_finish = time.monotonic()
        if self._unclaimed:
            self._unclaimed -= 1
        else:
            self._idle += 1

    def _work(self) -> None:
        me = threading.current_thread()
        get = self._queue.get
        while True:
            try:
                item = get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0 and len(self._threads) > self.keep_idle:
                        self._idle -= 1
                        self._threads.discard(me)
                        return
                continue
            if item is None:
                with self._lock:
                    self._threads.discard(me)
                return
            future, fn, args, kwargs = item
            item = None
            if not future.set_running_or_notify_cancel():
                with self._lock:
                    self._finished()
                continue
            _install_streams()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                with self._lock:
                    self._finished()  # free before the caller wakes, so its next submit reuses us
                future.set_exception(exc)
            else:
                with self._lock:
                    self._finished()
                future.set_result(result)
            future = fn = args = kwargs = result = None  # type: ignore[assignment]

    def shutdown(self, timeout: float = 1.0) -> None:
        """Stop idle workers, cancel queued work; never wait on a hung handler past timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            self._waiting.notify_all()
            threads = list(self._threads)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            thread.join(remaining)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


_install_environ()
_install_streams()
_install_log_handler()
_install_finder()
