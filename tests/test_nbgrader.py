"""The real nbgrader adopts the series: generate_assignment, autograde and generate_feedback on
a course built from solutions/, with planted right, blank, partial, cheating, stderr-writing and
hanging submissions; the points equal what `helpers.grade` gives the same submissions
(both must match `tests.grading_course.expected_points`, which tests/test_grade.py asserts)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.grading_course import NOTEBOOK, expected_points, planted, write_solutions

ROOT = Path(__file__).resolve().parents[1]
LEARNERS = ["right", "blank", "partial", "own-checking", "patched-helpers", "edited-helpers-file",
            "fake-checks-module", "swapped-code", "stderr", "infinite-loop"]
LESSON = "02_create_websocket_api.ipynb"
LESSON_SUBMISSIONS = {"lesson-right": "solutions", "lesson-blank": "notebooks"}
#: Seconds per cell: the infinite loop waits it out; lesson 02's slowest cell takes under one.
CELL_TIMEOUT = 20
CONFIG = """
c = get_config()
c.CourseDirectory.course_id = "websockets"
c.Execute.timeout = {timeout}              # seconds per cell; the series uses 120
c.Execute.interrupt_on_timeout = True
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
"""

pytestmark = pytest.mark.skipif(shutil.which("nbgrader") is None
                                and not (Path(sys.executable).parent / "nbgrader").exists(),
                                reason="nbgrader is a test dependency: pip install -e .[dev]")


def nbgrader(course: Path, *args: str) -> str:
    """Run nbgrader as an instructor would: kernels import the `helpers/` shipped with each
    assignment, never this checkout's (no PYTHONPATH)."""
    command = [str(Path(sys.executable).parent / "nbgrader"), *args, "--force"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # nbgrader runs `alembic` by name: the venv's bin must be on PATH even when the venv was
    # never activated (tasks.py runs .venv/bin/python directly).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(command, cwd=course, capture_output=True, text=True, timeout=600,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _checkout_helpers() -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(
        (ROOT / "helpers").rglob("*.py")))).hexdigest()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course with two assignments: `demo` (the planted one) and lesson 02 (release only)."""
    untouched = _checkout_helpers()
    base = tmp_path_factory.mktemp("nbgrader")
    solutions = write_solutions(base / "solutions")
    course = base / "course"
    (course / "nbgrader_config.py").parent.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(CONFIG.format(timeout=CELL_TIMEOUT))
    for assignment, notebook in [("demo", solutions / NOTEBOOK), ("lesson02", ROOT / "solutions"
                                                                  / LESSON)]:
        source = course / "source" / assignment
        shutil.copytree(ROOT / "helpers", source / "helpers",
                        ignore=shutil.ignore_patterns("__pycache__", "grade"))
        shutil.copy(notebook, source)
    # Each nbgrader command costs seconds of imports and gradebook set-up: both assignments
    # go through each command at once (nbgrader reads the assignment id as a glob).
    nbgrader(course, "generate_assignment", "*", "--create")
    for learner in LEARNERS:
        folder = course / "submitted" / learner / "demo"
        shutil.copytree(course / "release" / "demo", folder)
        nbformat.write(planted(solutions, learner), folder / NOTEBOOK)
    for learner, notebook in LESSON_SUBMISSIONS.items():  # a real lesson: right and blank
        folder = course / "submitted" / learner / "lesson02"
        shutil.copytree(course / "release" / "lesson02", folder)
        shutil.copy(ROOT / notebook / LESSON, folder / LESSON)
    nbgrader(course, "autograde", "*", "--create")
    nbgrader(course, "generate_feedback", "demo")
    assert _checkout_helpers() == untouched, "a submission edited this checkout's helpers/"
    return course


def scores(course: Path, notebook: str = "01_demo", assignment: str = "demo",
           learners=LEARNERS) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as book:
        return {learner: book.find_submission_notebook(notebook, assignment, learner).score
                for learner in learners}


@pytest.mark.notebooks
@pytest.mark.timeout(900)
def test_autograde_gives_the_planted_points(course: Path) -> None:
    expected = expected_points()
    assert scores(course) == {learner: float(expected[learner]) for learner in LEARNERS}


@pytest.mark.notebooks
@pytest.mark.timeout(900)
def test_feedback_is_generated_for_every_learner(course: Path) -> None:
    for learner in LEARNERS:
        page = course / "feedback" / learner / "demo" / "01_demo.html"
        assert page.exists(), page
    partial = (course / "feedback" / "partial" / "demo" / "01_demo.html").read_text()
    assert "double(&#x27;ab&#x27;) is not &#x27;abab&#x27;" in partial or "abab" in partial


@pytest.mark.notebooks
@pytest.mark.timeout(900)
def test_release_copies_run_all_past_exercises_and_hide_hidden_tests(course: Path) -> None:
    released = nbformat.read(course / "release" / "lesson02" / LESSON, as_version=4)
    text = nbformat.writes(released)
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    graded = [c for c in released.cells if c.metadata.get("nbgrader", {}).get("grade")
              or c.metadata.get("nbgrader", {}).get("solution")]
    assert graded and all("raises-exception" in c.metadata.get("tags", []) for c in graded)


@pytest.mark.notebooks
@pytest.mark.timeout(900)
def test_a_real_lesson_scores_the_same_under_nbgrader_and_helpers_grade(
        course: Path, tmp_path: Path) -> None:
    from helpers.grade.__main__ import grade

    nbgrader_points = scores(course, LESSON.removesuffix(".ipynb"), "lesson02",
                             list(LESSON_SUBMISSIONS))
    for learner, folder in LESSON_SUBMISSIONS.items():
        (tmp_path / "in" / learner).mkdir(parents=True)
        shutil.copy(ROOT / folder / LESSON, tmp_path / "in" / learner / LESSON)
    results = grade(tmp_path / "in", tmp_path / "out", progress=False)
    ours = {r.job.learner: sum(p.points for p in r.parts) for r in results}
    assert nbgrader_points == ours == {"lesson-right": 2.0, "lesson-blank": 0.0}
