"""Check helpers fail loudly with a hint, pass with one line, spot unstarted exercises, refuse
to run on replaced machinery, and keep stderr out of graded cells."""

from __future__ import annotations

import builtins
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import helpers.checks
from helpers.checks import CheckFailed, NotDoneYet, Tampered, check, checking, passed, tampered

ROOT = Path(__file__).resolve().parents[1]


def test_check_passes_silently_on_true() -> None:
    assert check(1 + 1 == 2, "arithmetic", hint="none") is None


def test_check_failure_says_what_and_hint() -> None:
    with pytest.raises(CheckFailed) as raised:
        check(False, "the reply was 'ping', not 'pong'.", hint="return 'pong'")
    assert str(raised.value) == "the reply was 'ping', not 'pong'.\nHint: return 'pong'"
    assert isinstance(raised.value, AssertionError)
    assert repr(raised.value) == f"CheckFailed({str(raised.value)!r})"


def test_passed_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    passed("ping route: answers 'pong'")
    assert capsys.readouterr().out == "✅ ping route: answers 'pong'\n"


def test_checking_prints_success_when_block_passes(capsys: pytest.CaptureFixture[str]) -> None:
    with checking("ping route", "the two-way route answers 'pong'"):
        check(True, "unused", hint="unused")
    assert capsys.readouterr().out == "✅ ping route: the two-way route answers 'pong'\n"


def test_checking_prefixes_failures_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CheckFailed) as raised, checking("ping route", "ok"):
        check(False, "no reply", hint="add a route response")
    assert str(raised.value) == "ping route: no reply.\nHint: add a route response"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert capsys.readouterr().out == ""


def test_stub_becomes_not_done_yet() -> None:
    def handler() -> None:
        # YOUR CODE HERE
        raise NotImplementedError()

    not_done = r"^ping route: exercise not done yet\.\nHint: replace"
    with pytest.raises(NotDoneYet, match=not_done), checking("ping route", "ok"):
        handler()


def test_missing_name_becomes_not_done_yet() -> None:
    missing = r"name 'route_id' is not defined\.\nHint: finish"
    with pytest.raises(NotDoneYet, match=missing), checking("ping route", "ok"):
        route_id  # type: ignore[name-defined]  # noqa: B018, F821


def test_other_errors_propagate_untouched() -> None:
    with pytest.raises(KeyError), checking("ping route", "ok"):
        {}["body"]


def test_every_line_of_a_failure_fits_nbgrader_validate() -> None:
    with pytest.raises(CheckFailed) as raised, checking("sendmessage", "ok"):
        check(False, "ben should receive 'hi ben' (sent to nickname 'ben'), got None",
              hint="find the row whose nickname equals message['to']")
    assert str(raised.value).splitlines()[-1] == (
        "Hint: find the row whose nickname equals message['to']")


def test_a_replaced_check_function_makes_every_check_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helpers.checks, "check", lambda *args, **kwargs: None)
    replaced = r"^x: the notebook replaced helpers\.checks\.check,"
    with pytest.raises(Tampered, match=replaced), checking("x", "ok"):
        pass


def test_a_replaced_helper_method_or_builtin_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.client import Client

    tampered()  # seal helpers.client as imported
    monkeypatch.setattr(Client, "recv", lambda self, timeout=None: "pong")
    monkeypatch.setattr(builtins, "round", lambda *args: 0)
    assert tampered() == ["builtins.round", "helpers.client.Client.recv"]


def test_a_fake_checks_module_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "helpers.checks", type(sys)("helpers.checks"))
    assert "sys.modules['helpers.checks']" in tampered()


def test_a_swapped_code_object_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """`f.__code__ = ...` keeps the function object (and its id) but changes what it does."""
    # Modules imported since the seal are sealed when `tampered` first sees them: first with
    # the real code, or a later test of this process sees their `check.__code__` as swapped.
    assert tampered() == []
    monkeypatch.setattr(helpers.checks.check, "__code__", (lambda condition, what, hint: None)
                        .__code__)
    assert "helpers.checks.check.__code__" in tampered()


def test_a_helpers_module_first_seen_must_be_the_code_helpers_held() -> None:
    """A module a check imports later (here helpers.lessons.pictures) is sealed when first
    seen, but only if it is what helpers/ held at the seal: not a fake put in sys.modules,
    not a file edited since. In a fresh interpreter, so this process's seal is untouched."""
    script = """
import sys, types
import helpers.checks
from helpers.checks import tampered
real = helpers.checks._HELPERS_DIR + "lessons/pictures.py"
fake = types.ModuleType("helpers.lessons.pictures")
fake.__file__ = real
exec("def draw(*args, **kwargs):\\n    return None", fake.__dict__)
fake.draw.__module__ = "helpers.lessons.pictures"
sys.modules["helpers.lessons.pictures"] = fake
print(tampered())
del sys.modules["helpers.lessons.pictures"]
sys.modules["helpers.lessons.limits"] = types.ModuleType("helpers.lessons.limits")
print(tampered())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "['helpers.lessons.pictures.draw']", done.stderr
    assert "sys.modules['helpers.lessons.limits']" in second
    assert "sys.modules['helpers.lessons.pictures']" in second  # it went missing


def test_untouched_machinery_and_new_data_are_fine() -> None:
    helpers.checks.SOME_DATA = [1, 2]  # data may change; only callables are sealed
    try:
        assert tampered() == []
    finally:
        del helpers.checks.SOME_DATA


def test_stderr_inside_a_check_goes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """(Warnings too: the planted stderr submission in tests/test_grade.py warns in a kernel.)"""
    logger = logging.getLogger("learner")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    try:
        with checking("noisy", "still passes"):
            print("to stderr", file=sys.stderr)
            logger.warning("a log line")
    finally:
        logger.removeHandler(handler)
    out, err = capsys.readouterr()
    assert err == ""
    assert "to stderr\n" in out and "a log line\n" in out
    assert out.endswith("✅ noisy: still passes\n")
    assert handler.stream is sys.stderr


def test_long_lines_are_wrapped_for_nbgrader_validate() -> None:
    hint = "in `except api.exceptions.GoneException:` call table.delete_item(Key=...) " * 2
    with pytest.raises(CheckFailed) as raised, checking("sendmessage: stale ids", "ok"):
        check(False, "the stale id is still in the table: ['ann', 'ben', 'stale0']", hint=hint)
    lines = str(raised.value).splitlines()
    assert max(map(len, lines)) <= 86 and lines[1].startswith("Hint: in `except")
    assert " ".join(line.strip() for line in lines[1:]) == f"Hint: {hint}".strip()
