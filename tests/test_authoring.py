"""Learner notebooks are generated from solutions exactly as nbgrader would stub them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from helpers import authoring
from helpers.authoring import MarkupError, generate, learner_copy, main, stale
from helpers.nbbuild import code, md, write_notebook

ROOT = Path(__file__).resolve().parents[1]

SOLUTION_FUNC = '''
    def ping(event, context):
        """Answer pings."""
        ### BEGIN SOLUTION
        return {"statusCode": 200, "body": "pong"}
        ### END SOLUTION
'''
CHECK = """
    assert ping({}, None)["body"] == "pong"
    ### BEGIN HIDDEN TESTS
    assert ping({"x": 1}, None)["statusCode"] == 200
    ### END HIDDEN TESTS
"""


def sample_cells() -> list:
    return [
        md("# Sample\nSome prose."),
        code("x = 1", tags=["nbval-ignore-output"]),
        code(SOLUTION_FUNC, exercise="ping"),
        code("answer = 42", exercise="whole"),
        code(CHECK, check="ping-check", points=2),
        md("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", exercise="why"),
    ]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "solutions").mkdir()
    (tmp_path / "notebooks").mkdir()
    write_notebook(tmp_path / "solutions" / "01_sample.ipynb", sample_cells())
    return tmp_path


def learner(repo: Path) -> nbformat.NotebookNode:
    generate(root=repo)
    return nbformat.read(repo / "notebooks" / "01_sample.ipynb", as_version=4)


def test_solution_region_becomes_indented_stub(repo: Path) -> None:
    cell = learner(repo).cells[2]
    assert cell.source == (
        "def ping(event, context):\n"
        '    """Answer pings."""\n'
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError()"
    )


def test_solution_cell_without_delimiters_is_replaced_wholesale(repo: Path) -> None:
    assert learner(repo).cells[3].source == "# YOUR CODE HERE\nraise NotImplementedError()"


def test_markdown_region_becomes_answer_stub(repo: Path) -> None:
    assert learner(repo).cells[5].source == "Why?\nYOUR ANSWER HERE"


def test_hidden_tests_are_removed(repo: Path) -> None:
    assert learner(repo).cells[4].source == 'assert ping({}, None)["body"] == "pong"'


def test_exercise_and_check_cells_get_raises_exception_tag_only(repo: Path) -> None:
    tags = [c.metadata.get("tags") for c in learner(repo).cells]
    assert tags == [None, ["nbval-ignore-output"], ["raises-exception"], ["raises-exception"],
                    ["raises-exception"], None]


def test_nbgrader_metadata_and_cell_ids_are_kept(repo: Path) -> None:
    solution = nbformat.read(repo / "solutions" / "01_sample.ipynb", as_version=4)
    generated = learner(repo)
    assert [c.id for c in generated.cells] == [c.id for c in solution.cells]
    assert generated.cells[2].id == "ping"
    assert generated.cells[4].metadata.nbgrader == {
        "grade": True, "grade_id": "ping-check", "locked": True, "points": 2,
        "schema_version": 3, "solution": False,
    }
    assert generated.cells[2].metadata.nbgrader["solution"] is True


def test_outputs_and_counts_are_cleared(repo: Path) -> None:
    path = repo / "solutions" / "01_sample.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].execution_count = 1
    nbformat.write(nb, path)
    cell = learner(repo).cells[1]
    assert (cell.outputs, cell.execution_count) == ([], None)


def test_output_is_byte_stable_with_trailing_newline(repo: Path) -> None:
    generate(root=repo)
    target = repo / "notebooks" / "01_sample.ipynb"
    first = target.read_bytes()
    assert first.endswith(b"}\n") and b'\n "cells": [\n  {\n' in first
    assert generate(root=repo) == []
    assert target.read_bytes() == first


def test_builder_ids_do_not_churn_when_rebuilt(tmp_path: Path) -> None:
    a = write_notebook(tmp_path / "a.ipynb", [*sample_cells(), md("x"), md("x")])
    b = write_notebook(tmp_path / "b.ipynb", [*sample_cells(), md("x"), md("x")])
    assert (tmp_path / "a.ipynb").read_bytes() == (tmp_path / "b.ipynb").read_bytes()
    assert len({c.id for c in a.cells}) == len(a.cells) == len(b.cells)


def test_check_reports_missing_stale_and_extra(repo: Path) -> None:
    assert stale(root=repo) == ["notebooks/01_sample.ipynb: missing"]
    generate(root=repo)
    assert stale(root=repo) == []
    target = repo / "notebooks" / "01_sample.ipynb"
    target.write_text(target.read_text().replace("YOUR CODE HERE", "edited"))
    (repo / "notebooks" / "99_orphan.ipynb").write_text("{}")
    assert stale(root=repo) == [
        "notebooks/01_sample.ipynb: differs from the generated copy of 01_sample.ipynb",
        "notebooks/99_orphan.ipynb: no solutions/99_orphan.ipynb for it",
    ]
    assert main(["check", "--root", str(repo)]) == 1
    assert main(["generate", "--root", str(repo), "01"]) == 0
    assert stale(["01"], root=repo) == []


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (code("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", exercise="e"),
         "nested 'BEGIN SOLUTION' at line 2"),
        (code("x = 1\n### BEGIN SOLUTION\nx = 2", exercise="e"),
         "'BEGIN SOLUTION' has no matching 'END SOLUTION'"),
        (code("### END SOLUTION", exercise="e"),
         "'END SOLUTION' without 'BEGIN SOLUTION' at line 1"),
        (code("### BEGIN SOLUTION\nx = 2\n### END SOLUTION"),
         "solution region in a cell not marked nbgrader solution: true"),
        (code("### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS", exercise="e"),
         "hidden tests in a cell not marked nbgrader grade: true"),
    ],
)
def test_bad_markup_names_notebook_and_cell(cell, message: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[md("intro"), cell])
    nb.cells[1].id = "the-cell"
    with pytest.raises(MarkupError) as raised:
        learner_copy(nb, "solutions/07_chat.ipynb")
    assert str(raised.value) == f"solutions/07_chat.ipynb, cell 1 (id the-cell): {message}"


def test_duplicate_grade_ids_are_rejected(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [code("a = 1", exercise="e"), code("b = 2", check="e")]
    with pytest.raises(MarkupError, match="grade_id 'e' is also cell 0's"):
        learner_copy(nb, "n.ipynb")
    with pytest.raises(ValueError, match="grade_id 'e' is used twice"):
        write_notebook(tmp_path / "n.ipynb", [code("a = 1", exercise="e"), code("b", check="e")])


def test_generate_refuses_unknown_names(repo: Path) -> None:
    with pytest.raises(SystemExit, match="matches '42'"):
        generate(["42"], root=repo)


def test_learner_notebooks_are_in_sync_with_solutions() -> None:
    """The real repository: notebooks/ is exactly what `generate` writes from solutions/."""
    problems = authoring.stale(root=ROOT)
    assert not problems, "\n".join([*problems, "run: python -m helpers.authoring generate"])


def test_cells_using_an_exercise_result_may_fail_in_the_learner_copy() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [code("print(ping({}, None))", tags=["needs-exercise"]), code("print(1)")]
    cells = learner_copy(nb).cells
    assert [c.metadata.get("tags") for c in cells] == [["needs-exercise", "raises-exception"], None]


def test_builder_tags_exercise_and_check_cells_for_release_copies() -> None:
    """nbgrader makes its release copies from solutions/: the tag must be there already."""
    cells = [code("a = 1", exercise="e"), code("assert a", check="e-check"), code("b = 2")]
    assert [c.metadata.get("tags") for c in cells] == [["raises-exception"],
                                                        ["raises-exception"], None]


def test_tag_release_cells_adds_the_tag_once() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [code("print(ping({}, None))", tags=["needs-exercise"]), code("x = 1")]
    nb.cells[0].metadata["tags"] = ["needs-exercise"]
    authoring.tag_release_cells(authoring.tag_release_cells(nb))
    assert [c.metadata.get("tags") for c in nb.cells] == [["needs-exercise", "raises-exception"],
                                                           None]


def test_execute_refuses_a_solution_whose_check_fails(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    write_notebook(tmp_path / "solutions" / "01_bad.ipynb", [
        code("x = 1", exercise="x"),
        code("assert x == 2, 'x is not 2'", check="x-check"),
    ])
    with pytest.raises(authoring.ExecutionFailed, match=r"id x-check\): raised in the solution: "
                       r"AssertionError: x is not 2"):
        authoring.execute(root=tmp_path)


def graded_exercises(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("grade")]


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_graded_part_has_hidden_tests_that_learners_never_see(path: Path) -> None:
    solution = nbformat.read(path, as_version=4)
    checks = graded_exercises(solution)
    assert all("### BEGIN HIDDEN TESTS" in c.source for c in checks), [
        c.id for c in checks if "### BEGIN HIDDEN TESTS" not in c.source]
    assert all("from helpers.checks import" in c.source for c in checks), (
        "check cells import what they use, so an answer cell cannot redefine it")
    learner = (ROOT / "notebooks" / path.name).read_text()
    assert "HIDDEN TESTS" not in learner
    assert all(c.metadata.get("nbgrader", {}).get("points") for c in checks)
