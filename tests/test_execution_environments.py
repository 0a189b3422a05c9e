"""Execution environments: concurrent invocations of one function never share module globals.

AWS runs concurrent invocations of a function in separate execution environments, each with
its own init, globals, variables and log stream, and reuses a warm one only for a later
invocation (docs/aws-behaviour.md §4.3a). Real zips, real imports; threads overlap on
barriers and events, never on sleeps.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import types
import uuid
import zipfile

import pytest
from conftest import run_together

from helpers.gateway import lambda_runtime
from helpers.gateway.lambda_runtime import LambdaFunction

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STREAM = re.compile(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}")

# A module that keeps state in a global list, and waits on the test's barrier while holding
# it, so two invocations are provably inside the handler at the same time.
COUNTER_APP = {
    "app.py": (
        "import lr_env_shared\n"
        "SEEN = []\n"
        "def handler(event, context):\n"
        "    SEEN.append(event['who'])\n"
        "    if event.get('overlap'):\n"
        "        lr_env_shared.barrier.wait(5)\n"
        "    return list(SEEN)\n"
    )
}


@pytest.fixture
def shared():
    """`import lr_env_shared` in a handler finds this module (to share a barrier or event)."""
    module = types.ModuleType("lr_env_shared")
    sys.modules["lr_env_shared"] = module
    yield module
    del sys.modules["lr_env_shared"]


def zip_function(files: dict[str, str], **kwargs) -> LambdaFunction:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return LambdaFunction.from_zip(
        buffer.getvalue(), "app.handler", name=f"env-{uuid.uuid4().hex[:6]}", **kwargs
    )




def test_concurrent_invocations_see_separate_module_globals(shared):
    shared.barrier = threading.Barrier(2)
    fn = zip_function(COUNTER_APP)

    a, b = run_together(
        lambda: fn.invoke({"who": "a", "overlap": True}),
        lambda: fn.invoke({"who": "b", "overlap": True}),
    )

    assert (a.result, b.result) == (["a"], ["b"])  # one shared list would hold both
    assert a.environment != b.environment
    assert a.init_duration_ms is not None and b.init_duration_ms is not None


def test_a_later_invocation_reuses_a_warm_environment(shared):
    fn = zip_function(COUNTER_APP)

    first = fn.invoke({"who": "first"})
    later = fn.invoke({"who": "later"})

    assert later.environment == first.environment
    assert later.result == ["first", "later"]  # warm: the module's globals survived
    assert later.init_duration_ms is None


def test_report_shows_init_duration_only_on_an_environments_first_call(shared):
    shared.barrier = threading.Barrier(2)
    fn = zip_function(COUNTER_APP)

    cold = run_together(
        lambda: fn.invoke({"who": "a", "overlap": True}),
        lambda: fn.invoke({"who": "b", "overlap": True}),
    )
    warm = fn.invoke({"who": "c"})

    for outcome in cold:
        assert re.search(r"\tInit Duration: \d+\.\d\d ms$", outcome.logs[-1])
    assert "Init Duration" not in warm.logs[-1]
    assert warm.environment in {outcome.environment for outcome in cold}
    assert fn.idle_environments == 2


def test_logs_name_the_environment_that_served_the_call(shared):
    fn = zip_function(
        {
            "app.py": "import os\n"
            "def handler(event, context):\n"
            "    print('stream', context.log_stream_name)\n"
            "    return [context.log_stream_name, os.environ['AWS_LAMBDA_LOG_STREAM_NAME']]\n"
        }
    )
    seen = []

    outcome = fn.invoke({}, started=lambda running: seen.append(running.environment))

    assert STREAM.fullmatch(outcome.environment)
    assert outcome.result == [outcome.environment, outcome.environment]
    assert seen == [outcome.environment]  # RunningInvocation names it to the gateway too
    assert f"stream {outcome.environment}" in outcome.logs


def test_os_environ_writes_stay_in_their_environment(shared):
    shared.barrier = threading.Barrier(2)
    fn = zip_function(
        {
            "app.py": "import os, lr_env_shared\n"
            "def handler(event, context):\n"
            "    before = os.environ.get('MINE')\n"
            "    if event.get('who'):\n"
            "        os.environ['MINE'] = event['who']\n"
            "        lr_env_shared.barrier.wait(5)\n"
            "    return [before, os.environ.get('MINE')]\n"
        }
    )

    a, b = run_together(lambda: fn.invoke({"who": "a"}), lambda: fn.invoke({"who": "b"}))
    later = fn.invoke({})

    assert (a.result, b.result) == ([None, "a"], [None, "b"])
    expected = "a" if later.environment == a.environment else "b"
    assert later.result == [expected, expected]  # a warm environment keeps its own variables
    assert "MINE" not in os.environ


def test_a_frozen_invocation_never_returns_its_environment(shared):
    """The gateway freezes an invocation at its timeout (`running.frozen`); on AWS the
    sandbox is frozen and reset, so that environment serves no later call."""
    shared.entered, shared.release = threading.Event(), threading.Event()
    fn = zip_function(
        {
            "app.py": "import lr_env_shared\nSEEN = []\n"
            "def handler(event, context):\n"
            "    SEEN.append(event['who'])\n"
            "    if event.get('hang'):\n"
            "        lr_env_shared.entered.set()\n"
            "        lr_env_shared.release.wait(5)\n"
            "    return list(SEEN)\n"
        }
    )
    running = []

    def freeze(invocation):
        invocation.frozen = True  # what the gateway does when the timeout passes
        running.append(invocation)

    outcomes = []
    thread = threading.Thread(
        target=lambda: outcomes.append(fn.invoke({"who": "stuck", "hang": True}, started=freeze))
    )
    thread.start()
    try:
        assert shared.entered.wait(5)
        meanwhile = fn.invoke({"who": "meanwhile"})
    finally:
        shared.release.set()
        thread.join(5)
    after = fn.invoke({"who": "after"})

    assert meanwhile.environment != running[0].environment
    [stuck] = outcomes
    assert stuck.error_type == "Sandbox.Timedout" and stuck.result is None
    assert after.environment == meanwhile.environment  # the frozen one was retired
    assert after.result == ["meanwhile", "after"]
    assert fn.idle_environments == 1
    package_modules = [name for name, module in sys.modules.items()
                       if getattr(module, "SEEN", None) == ["stuck"]]
    assert package_modules == []  # the retired environment's modules are gone


def test_a_timed_out_environment_is_retired():
    fn = LambdaFunction.from_callable(
        lambda event, context: threading.Event().wait(event["wait"]), timeout=0.02
    )

    late = fn.invoke({"wait": 0.1})  # runs past its timeout (measured after the fact)
    following = fn.invoke({"wait": 0})

    assert late.error_type == "Sandbox.Timedout"
    assert following.environment != late.environment
    assert following.init_duration_ms is not None


MODULE_LEVEL_LIST: list[str] = []


def test_plain_callables_get_environments_but_share_the_callers_globals():
    """A plain callable cannot be imported again: each environment has its own variables
    and log stream, but the module globals are those of the module that defined it."""
    MODULE_LEVEL_LIST.clear()
    barrier = threading.Barrier(2)

    def handler(event, context):
        MODULE_LEVEL_LIST.append(event["who"])
        os.environ["WHO"] = event["who"]
        barrier.wait(5)
        return [os.environ["WHO"], context.log_stream_name]

    fn = LambdaFunction.from_callable(handler)

    a, b = run_together(lambda: fn.invoke({"who": "a"}), lambda: fn.invoke({"who": "b"}))

    assert sorted(MODULE_LEVEL_LIST) == ["a", "b"]  # one list: the caller's module
    assert (a.result[0], b.result[0]) == ("a", "b")  # variables: per environment
    assert a.environment != b.environment
    assert (a.result[1], b.result[1]) == (a.environment, b.environment)


def test_importing_the_runtime_modules_patches_nothing():
    """Only `lambda_runtime` (or its `install()`) installs the process-wide hooks."""
    code = (
        "import os, sys, types\n"
        "import helpers\n"
        "pkg = types.ModuleType('helpers.gateway')\n"  # skip helpers.gateway's own __init__
        "pkg.__path__ = [os.path.join(os.path.dirname(helpers.__file__), 'gateway')]\n"
        "sys.modules['helpers.gateway'] = pkg\n"
        "before = (type(os.environ), type(sys.stdout), list(sys.meta_path))\n"
        "import helpers.gateway.runtime.invocation, helpers.gateway.workers\n"
        "after = (type(os.environ), type(sys.stdout), list(sys.meta_path))\n"
        "assert before == after, (before, after)\n"
        "import helpers.gateway.lambda_runtime as lr\n"
        "assert type(os.environ).__name__ == '_OverlayEnviron'\n"
        "lr.uninstall()\n"
        "assert (type(os.environ), type(sys.stdout), list(sys.meta_path)) == before\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": REPO})
    assert done.stdout == "ok\n", done.stderr


def test_uninstalled_runtime_refuses_to_invoke_and_install_restores_it():
    fn = LambdaFunction.from_callable(lambda event, context: os.environ["AWS_REGION"])
    lambda_runtime.uninstall()
    try:
        assert type(os.environ) is os._Environ
        with pytest.raises(RuntimeError, match=r"lambda_runtime\.install\(\)"):
            fn.invoke({})
    finally:
        lambda_runtime.install()
        lambda_runtime.install()  # idempotent
    assert fn.invoke({}).result == "us-east-1"
    assert sum(type(h).__name__ == "_CaptureLogHandler"
               for h in __import__("logging").getLogger().handlers) == 1


def test_an_environment_idle_past_its_lifetime_is_retired_not_reused():
    now = [0.0]
    fn = LambdaFunction.from_callable(lambda event, context: context.log_stream_name,
                                      name="reclaimed")
    reclaim = lambda_runtime.Reclaim(lambda: now[0], idle_lifetime=600)
    first = fn.invoke({}, reclaim=reclaim)
    now[0] = 599.0
    assert fn.invoke({}, reclaim=reclaim).result == first.result  # warm, idle again from 599
    now[0] = 1199.0
    later = fn.invoke({}, reclaim=reclaim)
    assert later.result != first.result and later.init_duration_ms is not None
    assert fn.idle_environments == 1  # the reclaimed one is gone
