""""Restart kernel and run all" works twice in a row, on solutions and learner copies alike.

Each notebook's cells run twice in ONE kernel, as a learner who runs everything again would:
the second round must behave like the first (set-up cells stop the previous gateway and moto,
names are reused, nothing piles up). Solutions must run cleanly both times; learner copies may
fail only where a learner sees a friendly check failure or a tagged exercise stub.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from test_exercises import FRIENDLY, _errors, _role

from helpers.authoring import RAISES, learner_copy, run_notebook, skipped

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def twice(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with its cells repeated once (fresh ids for the second round)."""
    again = copy.deepcopy(nb.cells)
    for cell in again:
        cell.id = f"{cell.id}-again"[:64]
    nb.cells = nb.cells + again
    return nb


@pytest.mark.timeout(600)
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_runs_twice_in_one_kernel(solution: Path) -> None:
    nb = twice(nbformat.read(solution, as_version=4))
    run_notebook(nb, ROOT / "solutions")  # raises CellExecutionError on an unexpected error
    first, second = nb.cells[: len(nb.cells) // 2], nb.cells[len(nb.cells) // 2:]
    raised = [[bool(_errors(c)) for c in half] for half in (first, second)]
    assert raised[0] == raised[1], "the second run raised in different cells than the first"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_learner_copy_runs_twice_in_one_kernel(solution: Path) -> None:
    learner = learner_copy(nbformat.read(solution, as_version=4), solution.name)
    nb = run_notebook(twice(learner), ROOT / "notebooks", allow_errors=True)
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or skipped(cell):
            continue
        errors = _errors(cell)
        tolerated = RAISES in cell.metadata.get("tags", []) or (
            _role(cell) == "check" and all(e.split(":")[0] in FRIENDLY for e in errors))
        if errors and not tolerated:
            problems.append(f"cell {index} (id {cell.id}): {errors}")
    assert not problems, "\n".join(problems)
