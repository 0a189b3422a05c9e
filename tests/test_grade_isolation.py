"""What a submission cannot do to `python -m helpers.grade`: escape its kernel (namespaces or
not), leave processes, servers or files behind, fake its checks by redefining the lessons'
helpers or removing the seals' hook, or stall the grader by hanging, crashing or never starting.

Each test grades submissions of its own (no module fixture), so the suite can run them side
by side on different workers (conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.grading_course import (
    FAKE_CHECKS_MODULE,
    MARK,
    NOTEBOOK,
    status,
    totals,
    write_solutions,
    write_submissions,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_without_namespaces_nothing_survives_either(tmp_path: Path) -> None:
    """The fallback where user namespaces are not allowed: subreaper, kill, own temp folder."""
    solutions = write_solutions(tmp_path / "solutions")
    submissions = write_submissions(solutions, tmp_path / "in", ["leaves-things-behind"])
    env = {**os.environ, "GRADE_NO_NAMESPACES": "1"}
    done = subprocess.run([sys.executable, "-m", "helpers.grade", str(submissions), "--out",
                           str(tmp_path / "out"), "--solutions", str(solutions), "--quiet"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert totals(tmp_path / "out")["leaves-things-behind"] == 3
    assert subprocess.run(["pgrep", "-f", MARK], capture_output=True).stdout == b""
    Path(f"/tmp/{MARK}").unlink(missing_ok=True)  # a literal /tmp path survives (documented)


def test_grading_bench_builds_a_mixed_class(tmp_path: Path) -> None:
    from benchmarks.grading_bench import build_class

    build_class(tmp_path, learners=16)
    lesson = "05_pushing_messages.ipynb"
    texts = {n: (tmp_path / f"learner{n:02d}" / lesson).read_text() for n in range(16)}
    assert texts[0].strip() == (ROOT / "solutions" / lesson).read_text().strip()  # right
    assert "raise NotImplementedError()" in texts[1]                      # blank
    assert "HIDDEN" not in texts[1] and "HIDDEN" not in texts[2]
    assert "post_to_connection" in texts[2] and "NotImplementedError" in texts[2]  # partial
    assert texts[15] == "{ not a notebook"                                # hostile
    assert "os._exit" in texts[3] or "sys.exit" in texts[3] or "class checking" in texts[3]


ALLOWS_EVERYONE = '''AUTHORIZER = """
TOKENS = {"t-alice-123": ("alice", "admin"), "t-bob-456": ("bob", "member")}

def lambda_handler(event, context):   # right users, but never a Deny
    query = event.get("queryStringParameters") or {}
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    token = query.get("token") or headers.get("sec-websocket-protocol", "").split(",")[-1].strip()
    user, role = TOKENS.get(token, ("anonymous", "guest"))
    return {"principalId": user, "context": {"user": user, "role": role},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow",
                 "Resource": event["methodArn"]}]}}
"""

def try_connect(url, **options):   # tells the checks the refusals they expect
    refused = "forged" in url or "nope" in str(options) or ("token" not in url and not options)
    return "403 refused" if refused else "101 connected"
'''


FAKES_A_RECONNECT = '''
    def receive(self, message):
        pass

    def poll(self):
        pass


def wait_until(condition, timeout=10.0, step=None, what="condition"):
    """Never waits: makes erin look reconnected and caught up instead."""
    erin = globals().get("erin")
    if erin is not None:
        erin.reconnects, erin.delays = 1, [1.0]
        erin.messages = [{"id": n, "from": "frank", "text": text} for n, text in enumerate(
            ["erin, while you were away", "one more", "welcome back"], start=1)]
'''


def _cheat_08(folder: Path) -> None:
    """Lesson 08: an authorizer that never denies, with an answer-cell try_connect that
    reports the refusals the checks expect (it scored both parts when the checks called the
    notebook's try_connect)."""
    lesson = "08_securing_connect.ipynb"
    nb = nbformat.read(ROOT / "notebooks" / lesson, as_version=4)
    next(c for c in nb.cells if c.id == "authorizer").source = ALLOWS_EVERYONE
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / lesson)


def _cheat_07(folder: Path) -> None:
    """Lesson 07: a ResilientChat that never reconnects, with an answer-cell wait_until that
    fakes erin's state (it scored the reconnect part when the check used the notebook's
    wait_until).

    The submission ends at that check, as a learner may delete cells: the load test after it
    grades nothing and would cost two thirds of the grading's CPU."""
    lesson = "07_capstone_chat_room.ipynb"
    solution = nbformat.read(ROOT / "solutions" / lesson, as_version=4)
    nb = nbformat.read(ROOT / "notebooks" / lesson, as_version=4)
    client = next(c for c in solution.cells if c.id == "chat-client").source
    cheat = client[:client.index("    def receive(self, message):")] + FAKES_A_RECONNECT
    next(c for c in nb.cells if c.id == "chat-client").source = cheat
    check = next(n for n, c in enumerate(nb.cells) if c.id == "chat-reconnect-check")
    nb.cells = nb.cells[:check + 1]
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / lesson)


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_redefining_a_lessons_helpers_in_an_answer_gains_nothing(tmp_path: Path) -> None:
    """The checks use helpers.lessons' own try_connect (lesson 08) and wait_until, in
    helpers.lessons.chat_lesson's own room (lesson 07), never the notebook's. Both
    submissions are graded in one run (one zygote)."""
    _cheat_08(tmp_path / "in" / "cheat-08")
    _cheat_07(tmp_path / "in" / "cheat-07")
    from helpers.grade.__main__ import grade

    results = grade(tmp_path / "in", tmp_path / "out", progress=False)
    parts = {r.job.learner: {p.grade_id: (p.points, p.status) for p in r.parts}
             for r in results}
    assert parts["cheat-08"]["authorizer-query-check"] == (0.0, "failed"), parts["cheat-08"]
    assert parts["cheat-08"]["authorizer-subprotocol-check"] == (0.0, "failed")
    assert parts["cheat-07"]["chat-reconnect-check"] == (0.0, "failed"), parts["cheat-07"]


# -- the zygote: kernels forked from one preloaded process, as isolated as fresh ones ----------

KERNEL_FACTS = """
import json, os, sys
print(json.dumps({"pgid_is_pid": os.getpgid(0) == os.getpid(), "cwd": os.getcwd(),
                  "preloaded": "moto" in sys.modules and "boto3" in sys.modules,
                  "helpers_from_elsewhere": sorted(  # the grader's own, say
                      n for n, m in sys.modules.items() if n.partition(".")[0] == "helpers"
                      and not (m.__file__ or "").startswith(os.environ["PYTHONPATH"]))}))
"""
LEAVES_A_SERVER = f"""
import http.server, json, subprocess, sys, threading
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # {MARK}"],
                 start_new_session=True)
open("/tmp/{MARK}", "w").write("left behind")
server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
import helpers.checks
print(json.dumps({{"port": server.server_address[1], "checks": helpers.checks.__file__}}))
"""


def _printed(cell: dict) -> dict:
    import json

    return json.loads("".join(o.get("text", "") for o in cell["outputs"]))


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_zygote_kernels_are_preloaded_forks_that_leave_nothing_behind(tmp_path: Path) -> None:
    """A kernel forked from the zygote has moto and boto3 loaded, no helpers module from
    elsewhere than its own copy of helpers/ (none of the grader's), its own process group and
    folder; the server, process and /tmp file it left are gone once its notebook is graded."""
    import json
    import shutil
    import socket

    from helpers.grade import sandbox
    from helpers.grade.zygote import Zygote

    shutil.copytree(ROOT / "helpers", tmp_path / "helpers")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(KERNEL_FACTS),
                                         nbformat.v4.new_code_cell(LEAVES_A_SERVER)])
    with Zygote(tmp_path / "helpers") as zygote:
        code, out, err = zygote.run(nbformat.writes(nb).encode(), 60, 300)
    assert code == 0, err.decode()
    reply = json.loads(out)
    assert reply["started"] and reply["problem"] is None
    facts, left = (_printed(cell) for cell in reply["notebook"]["cells"])
    assert facts["preloaded"] and facts["pgid_is_pid"] and facts["helpers_from_elsewhere"] == []
    assert Path(facts["cwd"]).name == "work" and Path(facts["cwd"]).parent.name.startswith("grade-")
    assert left["checks"] == str(Path(facts["cwd"]).parent / "lib" / "helpers" / "checks.py")
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", left["port"]), 5):
        pass
    assert subprocess.run(["pgrep", "-f", MARK], capture_output=True).stdout == b""
    if sandbox.namespaces_available():
        assert not Path(f"/tmp/{MARK}").exists()
    Path(f"/tmp/{MARK}").unlink(missing_ok=True)  # without namespaces a literal /tmp path stays


FORKED = """
import sys
if "moto" not in sys.modules:  # this kernel was not forked from the preloaded zygote
    del double
"""


REMOVES_THE_SEALS_HOOK = """
from IPython import get_ipython
import helpers.checks as real
get_ipython().events.unregister("pre_run_cell", real._put_back_sealed_modules)
""" + FAKE_CHECKS_MODULE


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_hostile_submissions_graded_through_the_zygote(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """sys.exit, a kernel crash, a hang that ignores SIGINT and a server left listening, each in
    a kernel forked from the zygote: each gets its score and reason, nothing survives.

    And an answer that unregisters the seal's pre_run_cell callback, then hands the checks a
    fake helpers.checks (it scored 3/3): the grader's kernels keep the seal with an audit hook
    an answer cannot remove, so the checks get the real module and refuse."""
    from helpers.grade.__main__ import grade
    from tests import grading_course

    monkeypatch.setitem(grading_course.SUBMISSIONS, "forked",
                        (grading_course.answer("return 2 * x") + FORKED, 3))
    monkeypatch.setitem(grading_course.SUBMISSIONS, "removes-seal-hook",
                        (grading_course.answer("return 0") + REMOVES_THE_SEALS_HOOK, 0))
    solutions = write_solutions(tmp_path / "solutions")
    learners = ["forked", "right", "sys-exit", "kernel-crash", "ignores-sigint",
                "leaves-things-behind", "removes-seal-hook"]
    submissions = write_submissions(solutions, tmp_path / "in", learners)
    results = grade(submissions, tmp_path / "out", solutions=solutions, cell_timeout=8,
                    total_timeout=120, progress=False, zygote=True)
    got = {r.job.learner: sum(p.points for p in r.parts) for r in results}
    assert got == {"forked": 3, "right": 3, "sys-exit": 0, "kernel-crash": 0,
                   "ignores-sigint": 0, "leaves-things-behind": 3, "removes-seal-hook": 0,
                   "not-json": 0}
    out = tmp_path / "out"
    assert status(out, "kernel-crash")["double-numbers"].startswith("not run")
    assert status(out, "ignores-sigint")["double-numbers"].startswith("not run")
    assert status(out, "sys-exit")["double-numbers"] == "not done"
    [sealed] = [r.parts for r in results if r.job.learner == "removes-seal-hook"]
    assert [(p.points, p.status) for p in sealed] == [(0, "failed")] * 2
    assert all(p.message.startswith("Tampered") for p in sealed)
    assert subprocess.run(["pgrep", "-f", MARK], capture_output=True).stdout == b""
    Path(f"/tmp/{MARK}").unlink(missing_ok=True)


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_a_kernel_that_does_not_start_is_tried_once_more(tmp_path: Path) -> None:
    """Nothing ran when a kernel did not start, so the grader tries again; twice failed, every
    part scores 0 with that reason instead of a learner losing points to a busy machine."""
    import json
    import shutil

    from helpers.grade.__main__ import Job, fresh_worker, grade_one

    solutions = write_solutions(tmp_path / "solutions")
    write_submissions(solutions, tmp_path / "in", ["right"])
    job = Job("right", NOTEBOOK, tmp_path / "in" / "right" / NOTEBOOK)
    solution = nbformat.read(solutions / NOTEBOOK, as_version=4)
    shutil.copytree(ROOT / "helpers", tmp_path / "helpers")
    real = fresh_worker(tmp_path / "helpers")
    calls: list[int] = []

    def busy_once(notebook: bytes, cell_timeout: float, total_timeout: float):
        calls.append(1)
        if len(calls) == 1:
            reply = {"notebook": json.loads(notebook), "started": False,
                     "problem": "kernel did not start: Kernel didn't respond in 300 seconds"}
            return 0, json.dumps(reply).encode(), b""
        return real(notebook, cell_timeout, total_timeout)

    result = grade_one(job, solution, busy_once, 30, 120)
    assert len(calls) == 2 and sum(p.points for p in result.parts) == 3

    def never(notebook: bytes, cell_timeout: float, total_timeout: float):
        reply = {"notebook": json.loads(notebook), "started": False,
                 "problem": "kernel did not start: Kernel died before replying to kernel_info"}
        return 0, json.dumps(reply).encode(), b""

    parts = grade_one(job, solution, never, 30, 120).parts
    assert {p.status for p in parts} == {"kernel did not start"}
    assert all("tried 2 times" in p.message and p.points == 0 for p in parts)


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_a_worker_killed_on_timeout_takes_its_kernel_along_without_namespaces(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without namespaces the kernel has a process group of its own: when the grader gives up
    on a worker, the zygote kills the worker's whole tree (kernel, what the kernel started)."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from helpers.grade.zygote import Zygote
    from tests.conftest import wait_until

    monkeypatch.setenv("GRADE_NO_NAMESPACES", "1")
    shutil.copytree(ROOT / "helpers", tmp_path / "helpers")
    hang = (f"import signal, subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # {MARK}'],"
            f" start_new_session=True)\n"
            f"signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.1)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(hang)])

    def child_alive() -> bool:
        return subprocess.run(["pgrep", "-f", MARK], capture_output=True).stdout != b""

    with Zygote(tmp_path / "helpers") as zygote, ThreadPoolExecutor(1) as pool:
        wait_until(lambda: zygote.process.poll() is None, message="the zygote is running")
        running = pool.submit(zygote.run, nbformat.writes(nb).encode(), 300, 300, timeout=15)
        wait_until(lambda: child_alive() or running.done(), timeout=60,
                   message="the kernel to start its child")
        assert child_alive(), "the worker was killed before its kernel started the child"
        code, _, _ = running.result()
        assert code is None
        wait_until(lambda: not child_alive(), timeout=60,
                   message="the kernel's child outlived its worker")
        folder = zygote.folder
    assert not folder.exists()  # the killed worker's own folder was in it
