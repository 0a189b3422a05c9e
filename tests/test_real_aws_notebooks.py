"""Lessons 02-08, every cell, on the real-account code path, against moto: "Run All" on AWS.

The switch is on (`COURSE_REAL_AWS=1`, the moto account confirmed), so the notebooks take the
path they take on AWS: `LocalGateway.from_api` gives the real stage's stand-in, logs come
from CloudWatch Logs, offline-only cells skip themselves. No AWS is touched. moto plays AWS's
control plane; AWS's data plane (the stage at its `wss://` URL, `@connections`, Lambda
writing to CloudWatch Logs) is played by `AwsDataPlane`: the test, never the notebook,
serves each deployed stage with a local gateway and sends the notebook's connections to
`wss://{api}.execute-api.{region}.amazonaws.com/{stage}` there, as DNS and TLS would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from IPython.display import display

from helpers.lessons import real_aws
from helpers.lessons.real_aws import CONFIRM, SWITCH
from helpers.lessons.real_stage import RealStage
from tests.aws_data_plane import serving

#: Each test runs a lesson's code cells from first to last ("Run All"), in this process: a
#: notebook run, so outside `tasks.py test --quick` (seconds each: CloudWatch polls, timeouts).
pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
MOTO_ACCOUNT = "123456789012"


@pytest.fixture
def aws_data_plane(aws, monkeypatch):
    """The switch on, the moto account confirmed, and AWS's data plane played locally."""
    monkeypatch.setenv(SWITCH, "1")
    monkeypatch.setenv(CONFIRM, MOTO_ACCOUNT)
    monkeypatch.delenv("CI", raising=False)  # moto answers: this is the path CI exercises
    with serving(monkeypatch) as plane:
        yield plane
    real_aws._unhook()


def code_cells(lesson: str) -> list[tuple[str, str]]:
    (path,) = SOLUTIONS.glob(f"{lesson}_*.ipynb")
    cells = json.loads(path.read_text())["cells"]
    return [(c["id"], "".join(c["source"])) for c in cells if c["cell_type"] == "code"]


#: Per lesson, the checks that grade on a real account and those that say they cannot (with
#: why: hours of a virtual clock, closes only the local gateway can force).
GRADED_ON_AWS = {
    "02": (["ping route config", "ping route live"], []),
    "03": (["$connect", "$default", "$disconnect"], []),
    "04": (["predict then verify: keys", "predict then verify: shapes",
            "protocol router: chat", "protocol router: game and the rest"], []),
    "05": (["sendmessage: direct", "sendmessage: broadcast", "sendmessage: stale ids"], []),
    "06": (["keep-alive backoff"], ["keep-alive heartbeat", "keep-alive reconnect"]),
    "07": (["backoff_delay", "receive"], ["ResilientChat.poll"]),
    "08": (["authorizer (query string)", "authorizer (Sec-WebSocket-Protocol)",
            "least-privilege policy"], []),
}


def check_names(out: str) -> tuple[list[str], list[str]]:
    """The names of the checks that passed ("✅ name: what") and of those not checked
    ("➖ name: not checked on a real AWS account (why); ...")."""
    lines = out.splitlines()
    return ([line[2:].rsplit(": ", 1)[0] for line in lines if line.startswith("✅ ")],
            [line[2:].partition(": not checked")[0] for line in lines
             if line.startswith("➖ ")])


#: The policy change a cell makes (lessons 03 and 08), and what it prints once IAM applied it.
AFTER_IAM_CHANGE = {"03": ("delete_policy", "ivan received: None"),
                    "08": ("put_policy", "with the policy:  ['pushed', 'the push was allowed']")}


@pytest.mark.parametrize("lesson", ["02", "03", "04", "05", "06", "07", "08"])
def test_run_all_on_the_real_account_path_reaches_the_end(aws_data_plane, lesson, capsys):
    """Every code cell in order, as "Run All" on AWS.

    On AWS a policy change applies seconds later (docs §6.3a): the cell that changes one
    (lessons 03 and 08) meets a change that applies once it has waited 1.2 s, tries again until
    it does, and shows what it shows offline. (Which try is the first to succeed depends on how
    long the cell's own waits took: a CloudWatch poll sleeps 3 s when the run's END line is not
    there yet.)"""
    change, printed = AFTER_IAM_CHANGE.get(lesson, (None, None))
    namespace: dict = {"display": display, "__name__": "__main__"}
    for cell_id, source in code_cells(lesson):
        lagging = change is not None and "until_iam_applies()" in source
        aws_data_plane.iam_lag = {change: 1.2} if lagging else {}
        exec(compile(source, f"{lesson}:{cell_id}", "exec"), namespace)
        aws_data_plane.listen()
    out = capsys.readouterr().out
    if change is not None:
        assert printed in out.splitlines()
        assert namespace["attempt"] >= 1  # the first try met the old policy and was retried
    assert "REAL AWS account: account 123456789012" in out
    assert "deleted" in out  # the clean-up cell deleted by tag
    stages = [v for v in namespace.values() if isinstance(v, RealStage)]
    assert stages, "the notebook served no stage through LocalGateway.from_api"
    assert aws_data_plane.gateways  # its clients reached the stages through the data plane
    assert real_aws.course_resources() == []  # and the clean-up cell deleted what it made
    assert "locally:" not in out  # no local URL claimed on AWS (lesson 02)
    skipped = [line for line in out.splitlines() if "not checked on a real AWS account" in line]
    assert all(line.endswith("run the notebook offline to grade it") for line in skipped)
    graded, not_graded = GRADED_ON_AWS[lesson]
    assert check_names(out) == (graded, not_graded)
    if lesson == "06":  # each says why it cannot run on AWS
        assert "hours of a virtual clock" in skipped[0] and "LocalGateway.drop" in skipped[1]
    if lesson == "08":  # the rate limit's next minute, skipped on AWS's clock, not slept
        assert "a minute later: ok: calm again" in out
    if lesson == "07":  # the 2-hour cut: on AWS after 2 real hours, with the source
        assert any("2 real hours (docs/aws-behaviour.md §5)" in line for line in skipped)


#: Wrong answers planted in a lesson's exercise cell: (cell id, right text, wrong text), the
#: checks each must fail, and what the first one's message says. On the real path the checks read
#: real answers and CloudWatch Logs: a wrong answer fails there too, it is never skipped.
WRONG_ANSWERS = {
    "04": ("protocol-router",
           ('"${request.body.type}.${request.body.op}"', '"$request.body.type"'),
           ["protocol-router-chat", "protocol-router-game"],
           "expected chat_say, got fallback (route '$default')"),
    "05": ("sendmessage-direct-broadcast",
           ("        try:\n            api.post_to_connection(ConnectionId=target, "
            "Data=message[\"data\"].encode())\n        except api.exceptions.GoneException:\n"
            "            table.delete_item(Key={\"connectionId\": target})\n",
            "        api.post_to_connection(ConnectionId=target, "
            "Data=message[\"data\"].encode())\n"),
           ["sendmessage-stale"], "the broadcast failed: GoneException"),
    # a handler that hangs past its 3 s timeout (10 s: the data plane skips a sleep of 30 s
    # or more on AWS's clock): CloudWatch's "Task timed out" is what each check reports
    "05-hangs": ("sendmessage-direct-broadcast",
                 ('    people = table.scan()["Items"]',
                  '    __import__("time").sleep(10)\n    people = table.scan()["Items"]'),
                 ["sendmessage-direct", "sendmessage-broadcast", "sendmessage-stale"],
                 "the handler failed: function-timeout"),
}


@pytest.mark.parametrize("lesson", sorted(WRONG_ANSWERS))
def test_a_wrong_answer_fails_its_check_on_the_real_account_path(aws_data_plane, lesson,
                                                                 capsys):
    from helpers.checks import CheckFailed

    exercise, (right, wrong), failing, message = WRONG_ANSWERS[lesson]
    namespace: dict = {"display": display, "__name__": "__main__"}
    failed = {}
    for cell_id, source in code_cells(lesson[:2]):
        if cell_id == exercise:
            assert right in source
            source = source.replace(right, wrong)
        try:
            exec(compile(source, f"{lesson}:{cell_id}", "exec"), namespace)
        except CheckFailed as error:
            failed[cell_id] = str(error)
        aws_data_plane.listen()
    out = capsys.readouterr().out
    assert list(failed) == failing, [line for line in out.splitlines() if line[:1] in "✅➖❌"]
    assert message in " ".join(failed[failing[0]].split())  # the message is wrapped
    assert "not checked on a real AWS account" not in out

