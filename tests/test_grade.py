"""`python -m helpers.grade` scores planted right, partial, blank, cheating and hostile
submissions of a small course, explains every lost point, and leaves nothing behind.

The planted class is graded once (a module fixture); tests/test_grade_isolation.py has the
tests that grade submissions of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers.grade import steps
from helpers.grade.__main__ import main
from tests.grading_course import (
    MARK,
    NOTEBOOK,
    expected_points,
    rows,
    status,
    totals,
    write_solutions,
    write_submissions,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("course")
    solutions = write_solutions(base / "solutions")
    submissions = write_submissions(solutions, base / "submitted")
    out = base / "out"
    assert main([str(submissions), "--out", str(out), "--solutions", str(solutions),
                 "--cell-timeout", "8", "--total-timeout", "120", "--quiet"]) == 0
    return out


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_every_planted_submission_gets_its_points(graded: Path) -> None:
    assert totals(graded) == {**{k: float(v) for k, v in expected_points().items()},
                              "not-json": 0.0}
    assert list(rows(graded)[0]) == ["learner", "notebook", "grade_id", "points", "max_points",
                                     "status"]


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_every_lost_point_has_a_reason(graded: Path) -> None:
    assert status(graded, "deleted-check") == {"double-numbers": "check cell deleted",
                                               "double-text": "passed"}
    assert status(graded, "not-json")["double-numbers"] == "not a notebook"
    assert status(graded, "renamed")["double-numbers"] == "not done"
    assert status(graded, "reordered") == {"double-numbers": "passed", "double-text": "not done"}
    assert status(graded, "blank")["double-numbers"] == "not done"
    assert status(graded, "kernel-crash")["double-numbers"].startswith("not run")
    assert status(graded, "ignores-sigint")["double-numbers"].startswith("not run")
    assert status(graded, "infinite-loop")["double-numbers"] == "not done"  # interrupted
    assert status(graded, "hardcoded") == {"double-numbers": "failed", "double-text": "passed"}
    assert all(s == "failed" for s in status(graded, "patched-helpers").values())
    for cheat in ("fake-checks-module", "swapped-code"):  # Tampered, not a silent pass
        assert all(s == "failed" for s in status(graded, cheat).values()), cheat


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_feedback_puts_the_hint_on_its_own_line_without_helper_frames(graded: Path) -> None:
    text = (graded / "feedback" / "partial" / "01_demo.md").read_text()
    assert "CheckFailed: double text: double('ab') is not 'abab'.\nHint: use 2 * x\n" in text
    assert "helpers/checks.py" not in text and "Traceback" not in text
    page = (graded / "feedback" / "deleted-check" / "01_demo.html").read_text()
    assert "check cell deleted" in page and "restore the check cell" in page
    hidden = (graded / "feedback" / "hardcoded" / "01_demo.md").read_text()
    assert "double(-3) is not -6" in hidden  # the hidden test found the hard-coded answer


@pytest.mark.notebooks
@pytest.mark.timeout(600)
def test_nothing_a_submission_started_survives_it(graded: Path) -> None:
    left = subprocess.run(["pgrep", "-f", MARK], capture_output=True, text=True)
    assert left.stdout == "", f"processes left behind: {left.stdout}"
    assert not Path(f"/tmp/{MARK}").exists()
    assert status(graded, "leaves-things-behind") == {"double-numbers": "passed",
                                                      "double-text": "passed"}


def test_restore_checks_puts_back_edited_checks_with_hidden_tests(tmp_path: Path) -> None:
    solutions = write_solutions(tmp_path)
    from tests.grading_course import planted

    submission = planted(solutions, "edited-check")
    assert "HIDDEN" not in nbformat.writes(submission)
    restored = steps.restore_checks(submission, nbformat.read(solutions / NOTEBOOK, 4))
    sources = {c.id: c.source for c in restored.cells}
    assert "### BEGIN HIDDEN TESTS" in sources["double-numbers"]
    assert sources["double"] == "def double(x):\n    return 0"


def test_limit_output_cuts_huge_streams() -> None:
    cell = nbformat.v4.new_code_cell("print(...)", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="x" * 1_000_000)])
    steps.limit_output(cell, limit=1000)
    assert len(cell.outputs[0].text) < 1100 and "cut by the grader" in cell.outputs[0].text


def test_a_check_that_wrote_to_stderr_scores_zero_as_in_nbgrader() -> None:
    cell = nbformat.v4.new_code_cell("", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text="oops")])
    cell.execution_count = 1
    assert steps.cell_result(cell, 2) == (0.0, steps.STDERR, "oops")


def test_cli_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "helpers.grade", str(tmp_path / "nope"),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 2 and "is not a directory" in result.stderr


def test_feedback_explains_each_status_and_escapes_html() -> None:
    from helpers.grade.feedback import markdown, page

    parts = [steps.Part("a", 0, 1, "timed out after 120 s", "still <running>"),
             steps.Part("b", 1, 1, "passed")]
    text = markdown("ann", "01_demo", parts)
    assert text.startswith("# 01_demo: 1 / 2 points\n")
    assert "Why: the cell ran longer than its time limit" in text
    assert "still &lt;running&gt;" in page("ann", "01_demo", parts)
