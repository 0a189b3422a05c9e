"""The in-process Lambda runtime: zips, isolation, environment, capture, errors, context.

Execution environments: tests/test_execution_environments.py; the worker pool:
tests/test_workers.py."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
import time
import types
import uuid
import zipfile
from unittest import mock

import pytest
from conftest import run_together

from helpers.gateway import lambda_runtime
from helpers.gateway.lambda_runtime import Invocation, LambdaFunction, WorkerPool
from helpers.gateway.runtime.invocation import _request_id


def make_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def zip_function(files: dict[str, str], handler: str = "app.handler", **kwargs) -> LambdaFunction:
    kwargs.setdefault("name", f"fn-{uuid.uuid4().hex[:6]}")
    return LambdaFunction.from_zip(make_zip(files), handler, **kwargs)


def body_lines(inv: Invocation) -> list[str]:
    """Log lines between START and END."""
    start = next(i for i, line in enumerate(inv.logs) if line.startswith("START "))
    end = next(i for i, line in enumerate(inv.logs) if line.startswith("END "))
    return inv.logs[start + 1 : end]


@pytest.fixture
def shared():
    """A module that handlers in zips can `import lr_shared` (e.g. to share a barrier)."""
    module = types.ModuleType("lr_shared")
    sys.modules["lr_shared"] = module
    yield module
    del sys.modules["lr_shared"]




# ----------------------------------------------------------------------------- loading


def test_zip_handler_imports_sibling_module():
    fn = zip_function(
        {
            "app.py": "import utils\nfrom lib.helpers import twice\n"
            "def handler(event, context):\n"
            "    return {'v': utils.shout(event['x']), 'd': twice(2)}\n",
            "utils.py": "def shout(s):\n    return s.upper() + '!'\n",
            "lib/__init__.py": "",
            "lib/helpers.py": "from . import consts\ndef twice(n):\n    return n * consts.TWO\n",
            "lib/consts.py": "TWO = 2\n",
        }
    )
    inv = fn.invoke({"x": "hi"})
    assert inv.ok, inv.error
    assert inv.result == {"v": "HI!", "d": 4}


#: A process that extracts a package, says where, then waits for a line or kills itself.
EXTRACTS = """
import os, signal, sys
from helpers.gateway.runtime import loading
code = loading.extract(bytes.fromhex(sys.argv[1]), "chat-connect")
print(code, flush=True)
if sys.stdin.readline().strip() == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.live
def test_extracted_code_is_deleted_even_after_its_process_was_killed(tmp_path):
    """A normal exit deletes the process's code folder; a SIGKILL (a kernel shut down "now")
    leaves it, and the next process that extracts code deletes it, but never a living one's."""
    import subprocess

    from helpers.gateway.runtime import loading

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    package = make_zip({"app.py": "def handler(event, context):\n    return 1\n"}).hex()

    def start() -> tuple[subprocess.Popen, str]:
        process = subprocess.Popen([sys.executable, "-c", EXTRACTS, package], env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        code = process.stdout.readline().strip()
        assert os.path.exists(os.path.join(code, "app.py")), code
        return process, os.path.dirname(code)

    killed, killed_root = start()
    killed.communicate("kill\n", timeout=60)
    assert os.path.isdir(killed_root)  # no finalizer ran
    living, living_root = start()      # its first extract swept the killed one's folder
    assert not os.path.exists(killed_root)
    assert loading.sweep_abandoned(str(tmp_path)) == []  # the living one's is locked
    assert os.path.isdir(living_root)
    living.communicate("exit\n", timeout=60)
    assert living.returncode == 0 and os.listdir(tmp_path) == []  # gone at a normal exit


def test_slash_handler_path():
    fn = zip_function(
        {"src/__init__.py": "", "src/main.py": "def go(event, context):\n    return 7\n"},
        handler="src/main.go",
    )
    assert fn.invoke({}).result == 7


def test_two_functions_with_same_module_names_do_not_clash():
    a = zip_function(
        {
            "app.py": "import utils\ndef handler(e, c):\n    return utils.WHO\n",
            "utils.py": "WHO = 'a'\n",
        }
    )
    b = zip_function(
        {
            "app.py": "import utils\ndef handler(e, c):\n    return 'b:' + utils.WHO\n",
            "utils.py": "WHO = 'b'\n",
        }
    )
    assert a.invoke({}).result == "a"
    assert b.invoke({}).result == "b:b"
    assert a.invoke({}).result == "a"
    assert "app" not in sys.modules or not hasattr(sys.modules["app"], "handler")
    assert "utils" not in sys.modules


def test_warm_state_survives_and_init_duration_only_on_cold_start():
    fn = zip_function(
        {"app.py": "N = 0\ndef handler(e, c):\n    global N\n    N += 1\n    return N\n"}
    )
    first, second = fn.invoke({}), fn.invoke({})
    assert (first.result, second.result) == (1, 2)
    assert first.init_duration_ms is not None and first.init_duration_ms >= 0
    assert second.init_duration_ms is None
    assert "Init Duration: " in first.logs[-1]
    assert "Init Duration" not in second.logs[-1]


def test_module_not_found():
    inv = zip_function({"other.py": "x = 1\n"}).invoke({})
    assert not inv.ok
    assert inv.error_type == "Runtime.ImportModuleError"
    assert inv.error == (
        "Runtime.ImportModuleError: Unable to import module 'app': No module named 'app'"
    )
    assert inv.result is None
    assert any(line.startswith("[ERROR] Runtime.ImportModuleError") for line in inv.logs)


def test_missing_dependency_named_as_aws_does():
    inv = zip_function({"app.py": "import no_such_dep_xyz\n"}).invoke({})
    assert inv.error == (
        "Runtime.ImportModuleError: Unable to import module 'app': "
        "No module named 'no_such_dep_xyz'"
    )


def test_handler_not_found():
    inv = zip_function({"app.py": "def other(e, c):\n    pass\n"}).invoke({})
    assert inv.error_type == "Runtime.HandlerNotFound"
    assert inv.error == "Runtime.HandlerNotFound: Handler 'handler' missing on module 'app'"


def test_syntax_error():
    inv = zip_function({"app.py": "def handler(e, c)\n    return 1\n"}).invoke({})
    assert inv.error_type == "Runtime.UserCodeSyntaxError"
    assert inv.error.startswith("Runtime.UserCodeSyntaxError: Syntax error in module 'app': ")
    assert "app.py, line 1" in inv.error


def test_malformed_handler_name():
    inv = zip_function({"app.py": ""}, handler="nodot").invoke({})
    assert inv.error_type == "Runtime.MalformedHandlerName"


def test_init_exception_is_reported_and_init_retried_in_a_new_environment(tmp_path):
    flag = tmp_path / "ready"
    fn = zip_function(
        {
            "app.py": "import os\nif not os.path.exists(os.environ['FLAG']):\n"
            "    raise RuntimeError('not ready')\ndef handler(e, c):\n    return 'ok'\n"
        },
        environment={"FLAG": str(flag)},
    )
    failed = fn.invoke({})
    assert failed.error == "RuntimeError: not ready"
    assert failed.init_duration_ms is not None
    flag.touch()
    retried = fn.invoke({})
    assert retried.result == "ok" and retried.init_duration_ms is not None
    assert retried.environment != failed.environment  # Lambda resets a failed environment


# ----------------------------------------------------------------------------- errors and logs


def test_handler_raising_gives_error_and_traceback():
    fn = zip_function({"app.py": "def handler(e, c):\n    raise ValueError('boom')\n"})
    inv = fn.invoke({})
    assert not inv.ok
    assert (inv.error, inv.error_type, inv.result) == ("ValueError: boom", "ValueError", None)
    [error_line] = [line for line in inv.logs if line.startswith("[ERROR]")]
    lines = error_line.split("\n")
    assert lines[0] == "[ERROR] ValueError: boom"
    assert lines[1] == "Traceback (most recent call last):"
    assert re.match(r'  File ".*app\.py", line 2, in handler', lines[2])
    assert lines[3] == "    raise ValueError('boom')"
    assert "helpers/gateway" not in error_line  # the runtime's own frames are left out


def test_start_end_report_lines():
    fn = zip_function({"app.py": "def handler(e, c):\n    return None\n"}, memory_size=256)
    inv = fn.invoke({})
    rid = inv.request_id
    assert uuid.UUID(rid).version == 4
    assert inv.logs[0] == f"START RequestId: {rid} Version: $LATEST"
    assert inv.logs[-2] == f"END RequestId: {rid}"
    assert re.fullmatch(
        rf"REPORT RequestId: {rid}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 256 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms",
        inv.logs[-1],
    )
    assert inv.duration_ms >= 0


def test_print_and_logging_captured_per_invocation_concurrently(shared):
    source = (
        "import logging, sys, lr_shared\n"
        "logger = logging.getLogger()\n"
        "logger.setLevel(logging.INFO)\n"
        "named = logging.getLogger('mylib')\n"
        "def handler(event, context):\n"
        "    event_barrier = lr_shared.barrier\n"
        "    print('hello', event['who'])\n"
        "    event_barrier.wait(2)\n"
        "    logger.info('info from %s', event['who'])\n"
        "    named.warning('named %s', event['who'])\n"
        "    logger.debug('hidden')\n"
        "    sys.stderr.write('err ' + event['who'] + '\\npartial')\n"
        "    event_barrier.wait(2)\n"
        "    print('multi\\nline', flush=True)\n"
        "    return event['who']\n"
    )
    a = zip_function({"app.py": source})
    b = zip_function({"app.py": source})
    shared.barrier = threading.Barrier(2)  # an event must be JSON: hand it over a module
    inv_a, inv_b = run_together(lambda: a.invoke({"who": "A"}), lambda: b.invoke({"who": "B"}))
    for inv, who in ((inv_a, "A"), (inv_b, "B")):
        lines = body_lines(inv)
        assert lines[0] == f"hello {who}"
        assert re.fullmatch(
            rf"\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{inv.request_id}"
            rf"\tinfo from {who}",
            lines[1],
        )
        assert lines[2].endswith(f"\t{inv.request_id}\tnamed {who}")
        assert lines[2].startswith("[WARNING]\t")
        assert f"err {who}" in lines
        assert lines[-3:] == ["multi", "line", "partial"] or lines[-3:] == [
            "partial",
            "multi",
            "line",
        ]
        assert not any("hidden" in line for line in lines)
        other = "B" if who == "A" else "A"
        assert not any(other in line.split("\t")[-1] for line in lines)
    logging.getLogger().setLevel(logging.WARNING)


def test_root_logger_default_level_is_warning_like_lambda():
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.WARNING)
    try:
        fn = zip_function(
            {
                "app.py": "import logging\ndef handler(e, c):\n"
                "    logging.getLogger().info('quiet')\n    logging.warning('loud')\n"
            }
        )
        lines = body_lines(fn.invoke({}))
        assert len(lines) == 1 and lines[0].startswith("[WARNING]") and lines[0].endswith("loud")
    finally:
        root.setLevel(saved)


def test_marshal_error_and_decimal():
    fn = zip_function(
        {
            "app.py": "import decimal\ndef handler(e, c):\n"
            "    return {'n': decimal.Decimal('1.5')} if e['ok'] else {1, 2}\n"
        }
    )
    assert fn.invoke({"ok": True}).result == {"n": 1.5}
    bad = fn.invoke({"ok": False})
    assert bad.error_type == "Runtime.MarshalError"
    assert bad.error.startswith("Runtime.MarshalError: Unable to marshal response:")


def test_results_come_back_as_json_would_give_them():
    # A flat object of scalars skips the JSON round trip; whatever it returns must be what
    # the round trip gives (a copy; tuples become lists, int keys strings, and so on).
    shared = {"statusCode": 200, "body": "x", "ok": True, "ratio": 0.5, "none": None}
    for returned in (shared, {"pair": (1, 2)}, {1: "one"}, [("a", 1)], "text", 7, None):
        result = LambdaFunction.from_callable(lambda e, c, r=returned: r).invoke({}).result
        assert result == json.loads(json.dumps(returned))
    result = LambdaFunction.from_callable(lambda e, c: shared).invoke({}).result
    assert result is not shared


def test_event_is_a_copy():
    event = {"items": [1]}
    fn = LambdaFunction.from_callable(lambda e, c: e["items"].append(2))
    fn.invoke(event)
    assert event == {"items": [1]}


def test_timeout_reported_after_the_fact():
    fn = LambdaFunction.from_callable(lambda e, c: time.sleep(0.06) or "late", timeout=0.05)
    inv = fn.invoke({})
    assert inv.error_type == "Sandbox.Timedout"
    assert inv.result is None
    assert any(line.endswith("Task timed out after 0.05 seconds") for line in inv.logs)
    assert inv.logs[-1].endswith("\tStatus: timeout")


# ----------------------------------------------------------------------------- context


def test_context_fields_and_remaining_time():
    seen = {}

    def handler(event, context):
        seen["first"] = context.get_remaining_time_in_millis()
        time.sleep(0.03)
        seen["second"] = context.get_remaining_time_in_millis()
        seen["ctx"] = context

    fn = LambdaFunction.from_callable(handler, name="ctxfn", timeout=2.0, memory_size=512)
    inv = fn.invoke({})
    ctx = seen["ctx"]
    assert ctx.aws_request_id == inv.request_id
    assert ctx.function_name == "ctxfn"
    assert ctx.function_version == "$LATEST"
    assert ctx.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:ctxfn"
    assert ctx.memory_limit_in_mb == "512"  # a str, as AWS's runtime gives it
    assert ctx.log_group_name == "/aws/lambda/ctxfn"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", ctx.log_stream_name)
    assert ctx.log_stream_name == inv.environment
    assert 1900 <= seen["first"] <= 2000
    assert seen["second"] <= seen["first"] - 25


def test_from_callable_defaults():
    def greet(event, context):
        return {"statusCode": 200, "body": f"hi {event['name']}"}

    fn = LambdaFunction.from_callable(greet)
    assert fn.name == "greet"
    assert fn.handler.endswith(".greet")
    assert fn.timeout == 3.0 and fn.memory_size == 128 and fn.region == "us-east-1"
    inv = fn.invoke({"name": "ada"})
    assert inv.ok and inv.result == {"statusCode": 200, "body": "hi ada"}
    assert inv.function_name == "greet"


# ----------------------------------------------------------------------------- environment


def test_environment_per_function_concurrently():
    barrier = threading.Barrier(2)

    def handler(event, context):
        before = os.environ["TABLE"]
        barrier.wait(2)  # both invocations are inside their handlers now
        os.environ["WRITTEN"] = before
        barrier.wait(2)
        return {
            "table": os.getenv("TABLE"),
            "written": os.environ["WRITTEN"],
            "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "region": os.environ["AWS_REGION"],
            "default_region": os.environ["AWS_DEFAULT_REGION"],
            "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
            "handler": os.environ["_HANDLER"],
            "group": os.environ["AWS_LAMBDA_LOG_GROUP_NAME"],
            "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "path_visible": "PATH" in os.environ,
            "in_copy": dict(os.environ)["TABLE"],
        }

    one = LambdaFunction.from_callable(handler, name="one", environment={"TABLE": "t1"})
    two = LambdaFunction.from_callable(
        handler, name="two", environment={"TABLE": "t2"}, region="eu-west-1"
    )
    a, b = run_together(lambda: one.invoke({}), lambda: two.invoke({}))
    assert a.ok and b.ok, (a.error, b.error)
    assert a.result["table"] == a.result["written"] == a.result["in_copy"] == "t1"
    assert b.result["table"] == b.result["written"] == b.result["in_copy"] == "t2"
    assert (a.result["name"], b.result["name"]) == ("one", "two")
    assert b.result["region"] == b.result["default_region"] == "eu-west-1"
    assert a.result["memory"] == "128" and a.result["version"] == "$LATEST"
    assert a.result["group"] == "/aws/lambda/one"
    assert a.result["handler"] == one.handler
    assert a.result["path_visible"]
    assert "TABLE" not in os.environ and "WRITTEN" not in os.environ


def test_environ_writes_persist_in_the_function_sandbox_only():
    def handler(event, context):
        count = int(os.environ.get("COUNTER", "0")) + 1
        os.environ["COUNTER"] = str(count)
        if event.get("delete"):
            del os.environ["HOME_ISH"]
        return {"count": count, "has": "HOME_ISH" in os.environ}

    with mock.patch.dict(os.environ, {"HOME_ISH": "/h"}):
        fn = LambdaFunction.from_callable(handler)
        assert fn.invoke({}).result == {"count": 1, "has": True}
        assert fn.invoke({"delete": True}).result == {"count": 2, "has": False}
        assert os.environ["HOME_ISH"] == "/h"
        assert "COUNTER" not in os.environ


def test_environ_outside_invocations_is_the_process_environment():
    assert type(os.environ).__name__ == "_OverlayEnviron"
    assert isinstance(os.environ, os._Environ)
    with mock.patch.dict(os.environ, {"LR_TEST_VAR": "1"}):
        assert os.getenv("LR_TEST_VAR") == "1"
        assert os.environ.copy()["LR_TEST_VAR"] == "1"
    assert "LR_TEST_VAR" not in os.environ
    os.environ["LR_TEST_VAR2"] = "x"
    try:
        assert os.environb[b"LR_TEST_VAR2"] == b"x"  # same storage as the original
    finally:
        del os.environ["LR_TEST_VAR2"]


def test_env_visible_during_module_init():
    fn = zip_function(
        {"app.py": "import os\nT = os.environ['TABLE']\ndef handler(e, c):\n    return T\n"},
        environment={"TABLE": "from-config"},
    )
    assert fn.invoke({}).result == "from-config"


# ----------------------------------------------------------------------------- stray output


@pytest.mark.parametrize("fixture", ["capsys", "capfd"])
def test_gateway_threads_never_write_to_real_streams(fixture, request):
    captured = request.getfixturevalue(fixture)
    lambda_runtime.clear_stray_output()

    def stray():
        print("stray stdout")
        sys.stderr.write("stray stderr\n")
        logging.getLogger("x").error("stray log")

    lambda_runtime.install()  # capsys swapped sys.stdout after import: route it again
    t = threading.Thread(target=stray, name="gateway-test-1")
    t.start()
    t.join(2)
    out, err = captured.readouterr()
    assert "stray" not in out + err
    texts = [entry[2] for entry in lambda_runtime.stray_output()]
    assert "stray stdout" in "".join(texts)
    assert "stray stderr\n" in texts and "stray log" in texts


def test_main_thread_output_still_reaches_stdout(capsys):
    fn = LambdaFunction.from_callable(lambda e, c: print("inside"))
    inv = fn.invoke({})
    print("outside")
    assert capsys.readouterr().out == "outside\n"
    assert "inside" in inv.logs


# ----------------------------------------------------------------------------- ids and callers


def test_request_ids_are_version_4_uuids():
    ids = {_request_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_current_invocation_names_the_running_call_and_started_comes_before_the_code():
    seen = []

    def handler(event, context):
        running = lambda_runtime.current_invocation()
        seen.append(("handler", running.function.name, running.request_id, running.frozen,
                     running.environment))
        return {"statusCode": 200}

    function = LambdaFunction.from_callable(handler, name="whoami")
    function.role = "arn:aws:iam::123456789012:role/whoami-role"
    outcome = function.invoke({}, started=lambda running: seen.append(("started", running)))

    assert outcome.ok
    (first, started), (label, name, request_id, frozen, environment) = seen
    assert first == "started" and started.function is function
    assert (label, name, request_id, frozen) == ("handler", "whoami", outcome.request_id, False)
    assert environment == started.environment == outcome.environment
    assert started.function.role.endswith("role/whoami-role")
    assert lambda_runtime.current_invocation() is None  # outside any handler: the account owner


def test_many_concurrent_invocations_keep_their_own_output_and_print_nothing(capfd):
    lambda_runtime.install()  # capfd may have swapped sys.stdout after import
    fn = zip_function(
        {
            "app.py": "import logging, sys\n"
            "def handler(event, context):\n"
            "    print('out', event['i'])\n"
            "    logging.warning('log %s', event['i'])\n"
            "    sys.stderr.write(f\"err {event['i']}\\n\")\n"
            "    return event['i']\n"
        }
    )
    with WorkerPool(name="gateway-test-load", grow_after=0.001, idle_timeout=600) as pool:
        futures = [pool.submit(fn.invoke, {"i": i}) for i in range(200)]
        outcomes = [future.result(60) for future in futures]
        threads = pool.size

    assert [outcome.result for outcome in outcomes] == list(range(200))
    for i, outcome in enumerate(outcomes):
        lines = body_lines(outcome)
        assert lines[0] == f"out {i}" and lines[1].endswith(f"\tlog {i}")
        assert lines[2:] == [f"err {i}"]
    # an environment serves one invocation at a time: never more of them than threads
    assert len({outcome.environment for outcome in outcomes}) <= threads
    assert capfd.readouterr() == ("", "")
