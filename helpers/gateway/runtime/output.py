"""Where an invocation's output goes: into its own log lines, never into a notebook cell.

Lambda sends a handler's stdout, stderr and log records to its log stream, one entry per
line. Here several invocations share one process, so `install()` routes by thread:

* `sys.stdout`/`sys.stderr` become `_RoutedStream` proxies: a capturing thread's text goes to
  its `Capture` (one line per line written); other threads write to the original stream
  (e.g. ipykernel's OutStream), except threads named ``gateway-*``, whose stray output is kept
  for `stray_output()`: a background thread's print lands in whichever cell is running, and
  nbval would see it. pytest's capsys and `contextlib.redirect_stdout` may swap the streams
  after `install()`; `keep_installed()` (called at each invocation) puts the proxies back.
* The root logger gets one `_CaptureLogHandler` that formats records like Lambda's runtime
  (``[INFO]\\t<UTC time>Z\\t<request id>\\tmessage``) for capturing threads only. Levels are
  the process's: like awslambdaric (no level unless AWS_LAMBDA_LOG_LEVEL is set) the root
  logger defaults to WARNING, so handlers call ``logger.setLevel(logging.INFO)``; that call
  changes the one process-wide root logger, shared by all functions.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from typing import Any

STRAY_LIMIT = 1000  # entries kept by `stray_output()`: a stuck thread cannot fill memory
_GATEWAY_THREADS = "gateway-"


class Capture:
    """The log lines of one invocation; only its own thread writes to it."""

    __slots__ = ("lines", "partial", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.lines: list[str] = []
        self.partial: dict[str, str] = {}  # stream name -> text after its last newline

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


class _Current(threading.local):
    capture: Capture | None = None


_current = _Current()


def set_capture(capture: Capture | None) -> Capture | None:
    """Send this thread's output to `capture` (None: the real streams); returns the previous."""
    previous, _current.capture = _current.capture, capture
    return previous


def current_capture() -> Capture | None:
    return _current.capture


# --------------------------------------------------------------------------- stray output

_stray_lock = threading.Lock()
_stray: collections.deque[tuple[str, str, str]] = collections.deque(maxlen=STRAY_LIMIT)


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


# --------------------------------------------------------------------------- streams


class _RoutedStream:
    """sys.stdout/sys.stderr proxy that routes each write by the writing thread."""

    def __init__(self, original: Any, name: str) -> None:
        self._original = original
        self._stream_name = name

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        capture = _current.capture
        if capture is not None:
            capture.write(self._stream_name, text)
            return len(text)
        thread_name = threading.current_thread().name
        if thread_name.startswith(_GATEWAY_THREADS) or self._original is None:
            if text:
                _record_stray(thread_name, self._stream_name, text)
            return len(text)
        return self._original.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _current.capture is None and self._original is not None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


# --------------------------------------------------------------------------- logging


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

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_LambdaFormatter())

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: captures are per thread
        capture = _current.capture
        if capture is not None:
            record.aws_request_id = capture.request_id
            try:
                capture.lines.append(self.format(record))
            except Exception:
                self.handleError(record)
            return True
        thread_name = threading.current_thread().name
        if thread_name.startswith(_GATEWAY_THREADS):
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


# --------------------------------------------------------------------------- install


_installed = False
_log_handler = _CaptureLogHandler()


def installed() -> bool:
    return _installed


def install() -> None:
    """Route `sys.stdout`, `sys.stderr` and root-logger records by thread (idempotent)."""
    global _installed
    _installed = True
    keep_installed()
    root = logging.getLogger()
    if _log_handler not in root.handlers:
        root.addHandler(_log_handler)


def keep_installed() -> bool:
    """Put the stream proxies back if something swapped the streams since `install()`;
    returns whether the routing is installed."""
    if not _installed:
        return False
    if not isinstance(sys.stdout, _RoutedStream):
        sys.stdout = _RoutedStream(sys.stdout, "stdout")  # type: ignore[assignment]
    if not isinstance(sys.stderr, _RoutedStream):
        sys.stderr = _RoutedStream(sys.stderr, "stderr")  # type: ignore[assignment]
    return True


def uninstall() -> None:
    """Unwrap the streams (where they are still ours) and remove the log handler."""
    global _installed
    _installed = False
    if isinstance(sys.stdout, _RoutedStream):
        sys.stdout = sys.stdout._original
    if isinstance(sys.stderr, _RoutedStream):
        sys.stderr = sys.stderr._original
    logging.getLogger().removeHandler(_log_handler)
