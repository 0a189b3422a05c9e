"""The notebook harness (root conftest.py) catches what it promises to, on a demo repository.

The real notebooks are tested by the harness itself: `solutions/*.ipynb` and `notebooks/*.ipynb`
are collected as two rounds of cells each. Here one demo solution, executed and turned into its
learner copy by `helpers.authoring`, holds one cell for each way a notebook can go wrong, and
the harness runs on it in a pytest subprocess: exactly those cells must fail, with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers.authoring import execute
from helpers.nbbuild import code, write_notebook

ROOT = Path(__file__).resolve().parents[1]
DEMO = "01_demo.ipynb"

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


def _demo_cells() -> list:
    return [
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
        code("with checking('free', 'always'): pass", check="free-check"),  # passes unsolved
        code("double(1)"),  # uses the exercise without the needs-exercise tag
        code("print('served on http://127.0.0.1:' + str(id(object()) % 60000 + 1024))"),
        code("print('stored output')"),  # its stored output is altered below
        code("assert 'seen' not in globals(), 'ran before'\nseen = True"),  # not rerunnable
        code("""
            if 'once' not in globals():
                once = True
                raise ValueError('first run only')
        """, tags=["raises-exception"]),
        code("print('done')"),
    ]


def _outcomes(output: str) -> dict[str, str]:
    """{'<file>::<item>': 'passed' | <its failure report>} from `pytest -rA --color=no`."""
    found = {}
    for node in re.findall(r"^PASSED (\S+\.ipynb::.+)$", output, re.M):
        found[node] = "passed"
    sections = re.split(r"^_{3,} (\S+\.ipynb::.+?) _{3,}$", output, flags=re.M)
    for node, report in zip(sections[1::2], sections[2::2], strict=True):
        found[node] = report
    return found


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    repo = tmp_path_factory.mktemp("demo")
    write_notebook(repo / "solutions" / DEMO, _demo_cells())
    execute([DEMO], root=repo)  # stored outputs, and the learner copy in notebooks/
    solution = repo / "solutions" / DEMO
    nb = nbformat.read(solution, as_version=4)
    stored = next(c for c in nb.cells if "stored output" in c.source)
    stored.outputs[0].text = "something else\n"
    nbformat.write(nb, solution)
    for name in ("conftest.py", "pyproject.toml", "tests/nbval_sanitize.cfg",
                 "tests/kernel_zygote.py", "tests/zygote_kernels.py"):
        (repo / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, repo / name)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "--color=no", "-p", "no:xdist"],
        cwd=repo, capture_output=True, text=True, timeout=600,
    )
    found = _outcomes(result.stdout)
    assert found, result.stdout + result.stderr
    return found


def _failures(outcomes: dict[str, str], folder: str) -> dict[str, str]:
    prefix = f"{folder}/{DEMO}::"
    return {node.removeprefix(prefix): outcome for node, outcome in outcomes.items()
            if node.startswith(prefix) and outcome != "passed"}


def test_every_cell_of_both_copies_runs_twice(outcomes: dict[str, str]) -> None:
    cells = len(_demo_cells())
    for folder in ("solutions", "notebooks"):
        names = {n.split("::")[1] for n in outcomes if n.startswith(f"{folder}/")}
        assert names == {f"Cell {i}{run}" for i in range(cells) for run in ("", ", run 2")}


def test_solution_fails_on_changed_outputs_and_on_cells_that_do_not_rerun(outcomes) -> None:
    failures = _failures(outcomes, "solutions")
    assert set(failures) == {"Cell 6", "Cell 7, run 2", "Cell 8, run 2"}, failures
    assert "Cell outputs differ" in failures["Cell 6"]  # nbval's comparison (ports sanitised)
    assert "Cell execution caused an exception" in failures["Cell 7, run 2"]
    assert "run 1 raised ['ValueError: first run only'], run 2 raised nothing" in (
        failures["Cell 8, run 2"])


def test_learner_copy_fails_on_checks_that_pass_and_plain_cells_that_fail(outcomes) -> None:
    failures = _failures(outcomes, "notebooks")
    assert set(failures) == {"Cell 3", "Cell 4", "Cell 4, run 2", "Cell 7, run 2"}, failures
    assert "check did not fail with CheckFailed/NotDoneYet: []" in failures["Cell 3"]
    assert "Cell execution caused an exception" in failures["Cell 4"]
    assert "Cell execution caused an exception" in failures["Cell 7, run 2"]
