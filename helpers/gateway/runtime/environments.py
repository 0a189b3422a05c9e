"""A function's execution environments: who runs which invocation, with which globals.

On AWS each execution environment serves one invocation at a time; concurrent invocations
of one function run in separate environments, each with its own init (module import, the
`Init Duration` on its first REPORT line), module globals, environment variables and log
stream; a warm environment is reused only by a later invocation, and nothing guarantees
which (docs/aws-behaviour.md §4.3a; lifecycle:
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html; one log stream
per environment, named ``YYYY/MM/DD/[$LATEST]<id>``:
https://docs.aws.amazon.com/lambda/latest/operatorguide/log-structure.html). An environment
whose invocation failed its init or timed out is reset by Lambda; here it is retired and
the next invocation starts a new one.

A zip function's environment imports the package under its own name (`loading`). A plain
callable (`LambdaFunction.from_callable`) cannot be imported again: its environments have
their own `os.environ` overlay and log stream, but its module globals are the caller's
module's, shared by every environment.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import credentials, loading
from .environ import Overlay

VERSION = "$LATEST"


def new_log_stream_name() -> str:
    """``YYYY/MM/DD/[$LATEST]<32 hex>``, dated today in UTC, as Lambda names a new stream."""
    today = _dt.datetime.now(_dt.UTC).strftime("%Y/%m/%d")
    return f"{today}/[{VERSION}]{uuid.uuid4().hex}"


class ExecutionEnvironment:
    """One sandbox of a function; serves one invocation at a time."""

    def __init__(
        self,
        *,
        function_name: str,
        handler: str,
        variables: Callable[[str], Mapping[str, str]],
        code_dir: str | None = None,
        callable_: loading.Handler | None = None,
        role: str | None = None,
    ) -> None:
        self.log_stream_name = new_log_stream_name()
        self.environ: Overlay = dict(variables(self.log_stream_name))  # writes persist here
        # The role's credentials, its own (see `credentials`); none without a role.
        self.credentials = credentials.issue(self) if role else None
        if self.credentials is not None:
            self.environ.update(self.credentials.environment())
        self.running: Any = None  # the invocation it runs or ran last (a RunningInvocation)
        self.package = loading.new_package_name(function_name) if code_dir else None
        self._handler = handler
        self._code_dir = code_dir
        self._handler_fn = callable_
        self._initialized = False

    def __repr__(self) -> str:
        return f"ExecutionEnvironment({self.log_stream_name!r})"

    def handler(self) -> tuple[loading.Handler, float | None]:
        """The handler, running init on the first call: (handler, init ms or None if warm).

        Raises `loading.InitError` or whatever the module's init code raised.
        """
        if self._initialized:
            assert self._handler_fn is not None
            return self._handler_fn, None
        began = time.perf_counter()
        if self._code_dir is not None:
            assert self.package is not None
            self._handler_fn = loading.load_handler(self._code_dir, self._handler, self.package)
        self._initialized = True
        assert self._handler_fn is not None
        return self._handler_fn, (time.perf_counter() - began) * 1000

    def retire(self) -> None:
        """Forget this environment's modules (nothing of it is reused)."""
        if self.package is not None:
            loading.unload(self.package)


@dataclass(frozen=True)
class Reclaim:
    """When idle environments go: after `idle_lifetime` seconds of `now()` without a call.

    On AWS, Lambda keeps an environment "for some time" after an invocation and then
    reclaims it (docs/aws-behaviour.md §4.3a). `now` is the caller's clock (the gateway's,
    which a `VirtualClock` moves by hand), read when an invocation ends and when the next
    one looks for a warm environment."""

    now: Callable[[], float]
    idle_lifetime: float


class EnvironmentPool:
    """A function's idle warm environments; `acquire` starts a new one when none is idle.

    Only `release`d environments are reused, so an environment is never shared by two
    invocations at once; `packages` lists the loaded packages of every live environment,
    for the function's finalizer (it must not reference the function or its environments).
    With a `Reclaim`, an environment idle for longer than its lifetime is retired instead
    of reused.
    """

    def __init__(self, make: Callable[[], ExecutionEnvironment]) -> None:
        self._make = make
        self._idle: list[tuple[ExecutionEnvironment, float]] = []  # (environment, idle since)
        self._lock = threading.Lock()
        self.packages: set[str] = set()

    def acquire(self, reclaim: Reclaim | None = None) -> ExecutionEnvironment:
        expired: list[ExecutionEnvironment] = []
        found = None
        with self._lock:
            if reclaim is not None and self._idle:
                oldest = reclaim.now() - reclaim.idle_lifetime
                expired = [env for env, since in self._idle if since <= oldest]
                if expired:
                    self._idle = [(env, since) for env, since in self._idle if since > oldest]
            if self._idle:
                found = self._idle.pop()[0]  # the most recently used: fewest stay warm
        for environment in expired:
            self.retire(environment)
        if found is not None:
            return found
        environment = self._make()
        if environment.package is not None:
            with self._lock:
                self.packages.add(environment.package)
        return environment

    def release(self, environment: ExecutionEnvironment, reclaim: Reclaim | None = None) -> None:
        """The invocation is over and the environment is fit to serve another."""
        since = reclaim.now() if reclaim is not None else 0.0
        with self._lock:
            self._idle.append((environment, since))

    def retire(self, environment: ExecutionEnvironment) -> None:
        """The environment must never serve again (init failed, timed out, frozen, idle
        too long)."""
        environment.retire()
        with self._lock:
            self.packages.discard(environment.package)  # type: ignore[arg-type]

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)
