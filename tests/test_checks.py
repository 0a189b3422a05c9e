"""Check helpers fail loudly with a hint, pass with one line, and spot unstarted exercises."""

from __future__ import annotations

import pytest

from helpers.checks import CheckFailed, NotDoneYet, check, checking, passed


def test_check_passes_silently_on_true() -> None:
    assert check(1 + 1 == 2, "arithmetic", hint="none") is None


def test_check_failure_says_what_and_hint() -> None:
    with pytest.raises(CheckFailed) as raised:
        check(False, "the reply was 'ping', not 'pong'.", hint="return 'pong'")
    assert str(raised.value) == "the reply was 'ping', not 'pong'. Hint: return 'pong'"
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
    assert str(raised.value) == "ping route: no reply. Hint: add a route response"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert capsys.readouterr().out == ""


def test_stub_becomes_not_done_yet() -> None:
    def handler() -> None:
        # YOUR CODE HERE
        raise NotImplementedError()

    not_done = r"^ping route: exercise not done yet\. Hint: replace"
    with pytest.raises(NotDoneYet, match=not_done), checking("ping route", "ok"):
        handler()


def test_missing_name_becomes_not_done_yet() -> None:
    missing = r"name 'route_id' is not defined\. Hint: finish"
    with pytest.raises(NotDoneYet, match=missing), checking("ping route", "ok"):
        route_id  # type: ignore[name-defined]  # noqa: B018, F821


def test_other_errors_propagate_untouched() -> None:
    with pytest.raises(KeyError), checking("ping route", "ok"):
        {}["body"]
