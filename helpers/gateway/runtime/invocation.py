"""One Lambda invocation, run in the calling thread and reported as Lambda reports it.

The gateway calls `LambdaFunction.invoke` on worker threads, never on its event loop. Each
call takes an execution environment (`environments`), runs the handler with that
environment's `os.environ` overlay (`environ`) and captures its output (`output`), and
returns an `Invocation`: the result or an AWS-shaped error, and the log lines of that one
call (START, the handler's lines, END, and REPORT with `Init Duration` on an environment's
first call: https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html). Handler
errors never escape as exceptions.

`context.memory_limit_in_mb` is a ``str`` ("128"), as awslambdaric reads it from
AWS_LAMBDA_FUNCTION_MEMORY_SIZE (powertools' typing says int; the runtime gives str).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import json
import math
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import ids
from ..config import DEFAULT_ACCOUNT_ID, DEFAULT_REGION
from . import environ, loading, output
from .environments import VERSION, EnvironmentPool, ExecutionEnvironment, Reclaim

_REPORTED_MEMORY_MB = 40  # one process cannot attribute memory to a thread; observed on AWS: ~40 MB
_RUNTIME_DIR = os.path.dirname(__file__)  # our frames are left out of handler tracebacks


@dataclass(eq=False)
class RunningInvocation:
    """The invocation the current thread is running: who calls, and whether it may still act.

    The `@connections` code asks `current_invocation()` for it: `function.role` decides what
    the call may do (IAM), and a `frozen` invocation (past its timeout: AWS freezes the
    sandbox) may do nothing at all. `environment` is the log stream of the execution
    environment running it.
    """

    function: LambdaFunction
    request_id: str
    frozen: bool = False
    environment: str | None = None


class _Current(threading.local):
    running: RunningInvocation | None = None


_current = _Current()


def current_invocation() -> RunningInvocation | None:
    """The invocation running on this thread, or None outside any handler (the account owner)."""
    return _current.running


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

    def __init__(self, function: LambdaFunction, request_id: str, deadline: float,
                 log_stream_name: str) -> None:
        self.aws_request_id = request_id
        self.function_name = function.name
        self.function_version = VERSION
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = str(function.memory_size)  # a str, as on AWS
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = log_stream_name
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


#: A random (version 4) UUID string, like Lambda's request ids; cheaper than uuid4().
_request_id = ids.new_uuid

#: Types whose values JSON gives back equal (a `bool` stays a `bool`, a `float` round-trips).
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _marshal(value: Any) -> Any:
    """The handler's return value as Lambda hands it on: through JSON (raises TypeError or
    ValueError when it cannot be). A flat object of scalars, what nearly every handler
    returns, comes back equal from the round trip, so it is copied without one."""
    if type(value) is dict:
        scalars = _JSON_SCALARS
        for key, item in value.items():
            if type(key) is not str or type(item) not in scalars:
                break
        else:
            return dict(value)
    return json.loads(_to_json(value))


def _utc_stamp() -> str:
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _require_installed() -> None:
    """Raise unless the process hooks are in place; puts swapped stream proxies back."""
    if not (output.keep_installed() and environ.installed()):
        raise RuntimeError(
            "The Lambda runtime's process hooks are not installed (os.environ overlay, output "
            "capture): call helpers.gateway.lambda_runtime.install() first."
        )


class LambdaFunction:
    """One deployed function: its configuration, its code and its execution environments."""

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
        self._callable = callable_
        self._environments = EnvironmentPool(self._new_environment)
        self._finalizer = weakref.finalize(
            self, loading.remove_code, self._environments.packages, code_dir
        )

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

        The zip is extracted now into its own temp dir; each execution environment imports
        the handler module on its first invocation (its cold start).
        """
        return cls(
            name=name,
            handler=handler,
            arn=arn,
            environment=environment,
            timeout=timeout,
            memory_size=memory_size,
            region=region,
            code_dir=loading.extract(zip_bytes, name),
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
        """A plain Python function as a handler, for lessons and tests (no zip, no import).

        Its execution environments each have their own `os.environ` and log stream, but
        module globals are those of the module that defines `fn`, shared by all of them.
        """
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
        """Forget every environment's modules and delete the extracted code (also on GC)."""
        self._finalizer()

    @property
    def idle_environments(self) -> int:
        """How many warm environments wait for a later invocation."""
        return self._environments.idle

    # -- environments -----------------------------------------------------------------

    def lambda_environment(self, log_stream_name: str) -> dict[str, str]:
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
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
                "AWS_EXECUTION_ENV": "AWS_Lambda_python{}.{}".format(*sys.version_info[:2]),
            }
        )
        if self.code_dir:
            env["LAMBDA_TASK_ROOT"] = self.code_dir
        return env

    def _new_environment(self) -> ExecutionEnvironment:
        return ExecutionEnvironment(
            function_name=self.name,
            handler=self.handler,
            variables=self.lambda_environment,
            code_dir=self.code_dir,
            callable_=self._callable,
            role=self.role,
        )

    # -- invoking ---------------------------------------------------------------------

    def invoke(
        self,
        event: dict[str, Any],
        *,
        copy_event: bool = True,
        started: Callable[[RunningInvocation], None] | None = None,
        reclaim: Reclaim | None = None,
    ) -> Invocation:
        """Run the handler once in the calling thread; return what Lambda would report.

        The handler gets its own JSON-decoded copy of the event, as on AWS; a caller that
        builds a fresh JSON-safe event per call and never reads it again (the gateway) may
        skip that copy with `copy_event=False`. `started` is called (on this thread) just
        before the handler code runs: the function's timeout counts from there. An idle
        warm environment serves the call, or a new one starts (its init runs first); with
        `reclaim`, environments idle for longer than its lifetime are gone by then.
        """
        _require_installed()
        environment = self._environments.acquire(reclaim)
        request_id = _request_id()
        capture = output.Capture(request_id)
        running = RunningInvocation(self, request_id, environment=environment.log_stream_name)
        environment.running = running  # requests signed with its credentials are this call's
        outcome = Invocation(function_name=self.name, request_id=request_id,
                             environment=environment.log_stream_name)
        saved_capture = output.set_capture(capture)
        saved_overlay = environ.set_overlay(environment.environ)
        saved_running, _current.running = _current.running, running
        init_ms: float | None = None
        duration_ms = 0.0
        timed_out = fit_for_reuse = False
        try:
            handler_fn, init_ms = self._init(environment, outcome)
            if capture.partial:
                capture.flush_partial()
            init_lines, capture.lines = capture.lines, []
            deadline = time.monotonic() + self.timeout
            began = time.perf_counter()
            if handler_fn is not None:
                payload = event
                if copy_event:
                    with contextlib.suppress(TypeError, ValueError):
                        payload = json.loads(_to_json(event))
                context = LambdaContext(self, request_id, deadline, environment.log_stream_name)
                if started is not None:
                    started(running)
                self._run(handler_fn, payload, context, outcome)
            duration_ms = (time.perf_counter() - began) * 1000
            if capture.partial:
                capture.flush_partial()
            timed_out = running.frozen or duration_ms > self.timeout * 1000
            if timed_out:
                running.frozen = True  # whatever still acts for it (a thread it started) too
                self._time_out(outcome, capture)
            fit_for_reuse = handler_fn is not None and not timed_out
        finally:
            output.set_capture(saved_capture)
            environ.set_overlay(saved_overlay)
            _current.running = saved_running
            if fit_for_reuse:
                self._environments.release(environment, reclaim)
            else:  # init failed, timed out, frozen, or interrupted: Lambda resets it
                self._environments.retire(environment)
        outcome.duration_ms = duration_ms
        outcome.init_duration_ms = init_ms
        outcome.logs = [
            *init_lines,
            f"START RequestId: {request_id} Version: {VERSION}",
            *capture.lines,
            f"END RequestId: {request_id}",
            self._report(outcome, timed_out),
        ]
        return outcome

    def _report(self, outcome: Invocation, timed_out: bool) -> str:
        """The REPORT line: durations, memory, `Init Duration` on an environment's first call."""
        duration_ms = outcome.duration_ms
        report = (
            f"REPORT RequestId: {outcome.request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\t"
            f"Memory Size: {self.memory_size} MB\t"
            f"Max Memory Used: {min(self.memory_size, _REPORTED_MEMORY_MB)} MB"
        )
        if outcome.init_duration_ms is not None:
            report += f"\tInit Duration: {outcome.init_duration_ms:.2f} ms"
        if timed_out:
            report += "\tStatus: timeout"
        return report

    def _time_out(self, outcome: Invocation, capture: output.Capture) -> None:
        """Past its timeout the result is dropped and the call fails as Lambda reports it."""
        message = f"Task timed out after {self.timeout:.2f} seconds"
        capture.lines.append(f"{_utc_stamp()} {outcome.request_id} {message}")
        outcome.result = None
        outcome.error_type = "Sandbox.Timedout"
        outcome.error = f"Sandbox.Timedout: RequestId: {outcome.request_id} Error: {message}"

    def _init(
        self, environment: ExecutionEnvironment, outcome: Invocation
    ) -> tuple[loading.Handler | None, float | None]:
        """The environment's handler (init on its first call): (handler or None, init ms)."""
        began = time.perf_counter()
        try:
            return environment.handler()
        except loading.InitError as exc:
            self._fail(outcome, exc.error_type, exc.message, exc.trace)
        except Exception as exc:
            self._fail_with(outcome, exc)
        return None, (time.perf_counter() - began) * 1000

    def _run(self, handler_fn: loading.Handler, payload: Any, context: LambdaContext,
             outcome: Invocation) -> None:
        try:
            raw = handler_fn(payload, context)
        except Exception as exc:
            self._fail_with(outcome, exc)
            return
        try:
            outcome.result = _marshal(raw)
        except (TypeError, ValueError) as exc:
            self._fail(outcome, "Runtime.MarshalError", f"Unable to marshal response: {exc}")

    def _fail_with(self, outcome: Invocation, exc: BaseException) -> None:
        frames = [
            frame
            for frame in traceback.extract_tb(exc.__traceback__)
            if not frame.filename.startswith(_RUNTIME_DIR)
            and "importlib._bootstrap" not in frame.filename
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
        capture = output.current_capture()
        if capture is not None:
            capture.flush_partial()
            capture.lines.append("\n".join(lines))
