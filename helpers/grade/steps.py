"""The pure grading steps: no kernel, no files, one job each (like nbgrader's preprocessors).

A submission becomes a *graded notebook* (`restore_checks`), the worker runs it, and `score`
turns the executed cells into one `Part` per graded cell of the solution, each with a status
that names the reason for every lost point.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass

import nbformat
from nbformat import NotebookNode

MAX_OUTPUT_CHARS = 20_000  # per cell: 16 MB of prints must not reach grades or feedback
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# statuses: a part either passed or says why it did not
PASSED = "passed"
FAILED = "failed"
NOT_DONE = "not done"
DELETED = "check cell deleted"
NOT_RUN = "not run"
NOT_NOTEBOOK = "not a notebook"
STDERR = "wrote to stderr"
KERNEL_DID_NOT_START = "kernel did not start"


@dataclass(frozen=True)
class Part:
    """One graded cell's result: what a row of grades.csv says."""

    grade_id: str
    points: float
    max_points: float
    status: str
    message: str = ""


class NotANotebook(ValueError):
    """The submission is not a notebook nbformat can read; the message says why."""


def read_submission(text: str) -> NotebookNode:
    """Parse a submitted file, or raise NotANotebook with a short reason."""
    try:
        nb = nbformat.reads(text, as_version=4)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NotANotebook(f"the file is not JSON ({error.__class__.__name__})") from None
    except Exception as error:  # nbformat raises many kinds on odd JSON
        raise NotANotebook(str(error).splitlines()[0][:200]) from None
    if not isinstance(nb.get("cells"), list):
        raise NotANotebook("the file has no cells")
    return nb


def _grading(cell: NotebookNode) -> dict:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return nbgrader if isinstance(nbgrader, dict) else {}


def graded_cells(nb: NotebookNode) -> dict[str, NotebookNode]:
    """The solution's graded code cells (check cells) by grade_id, in notebook order."""
    return {_grading(c)["grade_id"]: c for c in nb.cells
            if c.cell_type == "code" and _grading(c).get("grade") and _grading(c).get("grade_id")}


def locked_cells(nb: NotebookNode) -> dict[str, NotebookNode]:
    return {_grading(c)["grade_id"]: c for c in nb.cells
            if _grading(c).get("locked") and _grading(c).get("grade_id")}


def restore_checks(submission: NotebookNode, solution: NotebookNode) -> NotebookNode:
    """The notebook to run: the submission with every check (and locked) cell's source and
    metadata taken from the solution by grade_id, hidden tests included (nbgrader's
    OverwriteCells). Answer cells stay the learner's; a deleted check cell stays deleted
    (`score` says so); outputs are cleared."""
    sealed = locked_cells(solution)
    graded = copy.deepcopy(submission)
    for cell in graded.cells:
        if cell.get("cell_type") == "code":
            cell.outputs, cell.execution_count = [], None
        original = sealed.get(_grading(cell).get("grade_id"))
        if original is not None:
            cell.cell_type, cell.source = original.cell_type, original.source
            cell.metadata = copy.deepcopy(original.metadata)
            if original.cell_type == "code":
                cell.setdefault("outputs", [])
                cell.setdefault("execution_count", None)
    return graded


def limit_output(cell: NotebookNode, limit: int = MAX_OUTPUT_CHARS) -> None:
    """Keep at most `limit` characters of a cell's outputs (stream text, tracebacks, data)."""
    budget, kept = limit, []
    for output in cell.get("outputs", []):
        size = len(json.dumps(output))
        if size <= budget:
            kept.append(output)
            budget -= size
        elif output.get("output_type") == "stream" and budget > 0:
            kept.append({**output, "text": str(output.get("text", ""))[:budget]
                         + "\n[... output cut by the grader]\n"})
            budget = 0
        elif output.get("output_type") == "error":
            kept.append({**output, "traceback": output["traceback"][-3:]})
    cell.outputs = [nbformat.from_dict(o) for o in kept]


def _error_message(output: NotebookNode) -> str:
    """An error output as the learner should read it: 'Name: message', colours removed."""
    value = ANSI.sub("", str(output.get("evalue", ""))).strip()
    return f"{output.get('ename', 'Error')}: {value}" if value else str(output.get("ename"))


def cell_result(cell: NotebookNode, max_points: float) -> tuple[float, str, str]:
    """(points, status, message) of one executed graded cell, by nbgrader's rule: an error or
    any stderr output scores 0; otherwise full points."""
    run_note = cell.get("metadata", {}).get("grading", {})
    if run_note.get("status"):  # set by the worker: timed out, kernel died, not run
        return 0.0, run_note["status"], run_note.get("message", "")
    if cell.get("execution_count") is None and not cell.get("outputs"):
        return 0.0, NOT_RUN, "the cell did not run"
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            name = output.get("ename")
            status = NOT_DONE if name == "NotDoneYet" else FAILED
            return 0.0, status, _error_message(output)
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return 0.0, STDERR, ANSI.sub("", str(output.get("text", "")))[:500]
    return max_points, PASSED, ""


def score(executed: NotebookNode | None, solution: NotebookNode,
          reason: str = NOT_RUN, detail: str = "") -> list[Part]:
    """One Part per graded cell of the solution. `executed` None: every part scores 0 with
    status `reason` ("not a notebook", "timed out after 900 s", ...) and message `detail`."""
    parts = []
    found = graded_cells(executed) if executed is not None else {}
    for grade_id, original in graded_cells(solution).items():
        max_points = float(_grading(original).get("points", 0))
        if executed is None:
            parts.append(Part(grade_id, 0.0, max_points, reason, detail))
        elif grade_id not in found:
            parts.append(Part(grade_id, 0.0, max_points, DELETED,
                              "the check cell was deleted from the notebook, so it could not "
                              "run; copy it back from a fresh copy of the notebook"))
        else:
            points, status, message = cell_result(found[grade_id], max_points)
            parts.append(Part(grade_id, points, max_points, status, message))
    return parts
