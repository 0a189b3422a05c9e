"""Every exercise is really an exercise: on the generated learner copy, each graded check fails.

The solution side (checks pass, outputs as stored) is nbval's job on solutions/. Here the learner
copy runs in a fresh kernel with errors allowed; graded check cells must end in a CheckFailed
(or NotDoneYet) error, and every ordinary cell must run cleanly, so that a learner who has not
started yet sees only friendly failures.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from helpers.authoring import RAISES, learner_copy, run_notebook, skipped

ROOT = Path(__file__).resolve().parents[1]
FRIENDLY = {"CheckFailed", "NotDoneYet"}


def _role(cell: nbformat.NotebookNode) -> str:
    grading = cell.metadata.get("nbgrader", {})
    if grading.get("grade") and cell.cell_type == "code":
        return "check"
    if grading.get("solution"):
        return "exercise"
    return "plain"


def graded_notebooks(root: Path = ROOT) -> list[Path]:
    """Solution notebooks with at least one graded check cell (none yet: zero params)."""
    return [
        path for path in sorted((root / "solutions").glob("*.ipynb"))
        if any(_role(c) == "check" for c in nbformat.read(path, as_version=4).cells)
    ]


def _errors(cell: nbformat.NotebookNode) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]


def unsolved_problems(solution: Path, cwd: Path) -> list[str]:
    """Run the learner copy of `solution`; list checks that passed and plain cells that failed."""
    nb = run_notebook(learner_copy(nbformat.read(solution, as_version=4), solution.name), cwd,
                      allow_errors=True)
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or skipped(cell):
            continue
        errors, role = _errors(cell), _role(cell)
        where = f"{solution.name} cell {index} (id {cell.id})"
        if role == "check" and not any(o.ename in FRIENDLY for o in cell.outputs
                                       if o.output_type == "error"):
            problems.append(f"{where}: check did not fail with CheckFailed/NotDoneYet: {errors}")
        elif role == "plain" and RAISES not in cell.metadata.get("tags", []) and errors:
            problems.append(f"{where}: ordinary cell failed in the learner copy: {errors}")
    return problems


@pytest.mark.timeout(900)
@pytest.mark.parametrize("solution", graded_notebooks(), ids=lambda p: p.stem)
def test_checks_fail_on_the_learner_copy(solution: Path) -> None:
    problems = unsolved_problems(solution, ROOT / "notebooks")
    assert not problems, "\n".join(problems)


def test_harness_flags_checks_that_pass_and_plain_cells_that_fail(tmp_path: Path) -> None:
    """The harness itself, on a builder notebook: one good check, one that passes unsolved."""
    from helpers.nbbuild import code, write_notebook

    write_notebook(tmp_path / "solutions" / "01_demo.ipynb", [
        code("from helpers.checks import check, checking"),
        code("""
            def double(x):
                ### BEGIN SOLUTION
                return 2 * x
                ### END SOLUTION
        """, exercise="double"),
        code("""
            with checking("double", "doubles 2"):
                check(double(2) == 4, "double(2) is not 4", hint="multiply")
        """, check="double-check"),
        code("with checking('free', 'always'): pass", check="free-check"),
        plain := code("double(1)"),
    ])
    assert unsolved_problems(tmp_path / "solutions" / "01_demo.ipynb", tmp_path) == [
        "01_demo.ipynb cell 3 (id free-check): check did not fail with CheckFailed/NotDoneYet: []",
        f"01_demo.ipynb cell 4 (id {plain.id}): ordinary cell failed in the learner copy: "
        "['NotImplementedError: ']",
    ]
