"""Write solution notebooks from Python, with nbgrader markup and byte-stable JSON.

Lesson authors describe a notebook as a list of cells and let `write_notebook` save it; the
`execute` command of `helpers.authoring` then runs it and stores the outputs. Cell metadata
follows nbgrader's schema version 3 (reference/teaching-notebooks.md §2.1), so an nbgrader
course can adopt the series unchanged.

    from helpers.nbbuild import code, md, write_notebook
    write_notebook("solutions/02_create_api.ipynb", [
        md("# Create the API"),
        code('''
            def ping(event, context):
                ### BEGIN SOLUTION
                return {"statusCode": 200, "body": "pong"}
                ### END SOLUTION
        ''', exercise="ping-route"),
        code("with checking('ping route', 'answers pong'): ...", check="ping-route-check"),
    ])
"""

from __future__ import annotations

import copy
import hashlib
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

SCHEMA_VERSION = 3
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# What ipykernel reports, minus "version": the patch release would make every diff noisy.
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}


def _source(text: str) -> str:
    """Dedent and trim blank edges, so authors can indent triple-quoted cells freely."""
    return textwrap.dedent(text).strip("\n")


def _content_id(cell: NotebookNode) -> str:
    """An id from the cell's content, not nbformat's random one: rebuilding does not churn."""
    return f"{cell.cell_type[:2]}-{hashlib.sha256(cell.source.encode()).hexdigest()[:8]}"


def md(text: str, *, exercise: str | None = None, points: int = 1) -> NotebookNode:
    """A Markdown cell; `exercise=` makes it a manually graded written answer (nbgrader)."""
    cell = nbformat.v4.new_markdown_cell(_source(text))
    cell["id"] = _content_id(cell)
    if exercise is not None:
        _grade(cell, exercise, grade=True, solution=True, locked=False, points=points)
    return cell


def _grade(cell: NotebookNode, grade_id: str, *, grade: bool, solution: bool, locked: bool,
           points: int | None = None) -> None:
    """nbgrader's cell metadata (schema 3); the grade_id is also the cell id."""
    metadata = {"grade": grade, "grade_id": grade_id, "locked": locked,
                "schema_version": SCHEMA_VERSION, "solution": solution}
    if grade:
        metadata["points"] = points
    cell.metadata["nbgrader"] = dict(sorted(metadata.items()))
    cell["id"] = grade_id


def code(
    src: str,
    *,
    tags: Sequence[str] = (),
    exercise: str | None = None,
    check: str | None = None,
    points: int = 1,
) -> NotebookNode:
    """A code cell; `exercise=` (answer cell) or `check=` (graded test cell) names its grade_id.

    The grade_id also becomes the cell id, so a grader can restore check cells by id. Both kinds
    are tagged `raises-exception` (they fail until the learner has answered).
    """
    if exercise is not None and check is not None:
        raise ValueError("a cell is either an exercise or a check, not both")
    cell = nbformat.v4.new_code_cell(_source(src))
    cell["id"] = _content_id(cell)
    if tags:
        cell.metadata["tags"] = list(dict.fromkeys(tags))
    if exercise is not None:
        _grade(cell, exercise, grade=False, solution=True, locked=False)
    elif check is not None:
        _grade(cell, check, grade=True, solution=False, locked=True, points=points)
    if exercise is not None or check is not None:
        # fails until answered: "Run All" in an nbgrader release copy must go past it
        cell.metadata["tags"] = [*cell.metadata.get("tags", []), "raises-exception"]
    return cell


def _unique_ids(cells: list[NotebookNode]) -> None:
    """Suffix repeated content ids ("ma-1a2b3c4d-2"); a repeated grade_id is an author error."""
    taken: set[str] = set()
    for cell in cells:
        cell_id, n = cell["id"], 1
        if cell_id in taken and "nbgrader" in cell.metadata:
            raise ValueError(f"grade_id {cell_id!r} is used twice; grade ids must be unique")
        while cell_id in taken:
            n += 1
            cell_id = f"{cell['id']}-{n}"
        cell["id"] = cell_id
        taken.add(cell_id)


def normalise_metadata(nb: NotebookNode) -> None:
    """Pin kernelspec and language_info so notebooks do not differ by machine or patch release."""
    nb.metadata["kernelspec"] = copy.deepcopy(KERNELSPEC)
    nb.metadata["language_info"] = copy.deepcopy(LANGUAGE_INFO)


def dumps(nb: NotebookNode) -> str:
    """The notebook as nbformat writes it (indent 1, sorted keys) plus a final newline."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def save(nb: NotebookNode, path: str | Path) -> bool:
    """Write `nb` to `path` unless the bytes are already there; return whether it wrote."""
    path = Path(path)
    text = dumps(nb)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def write_notebook(path: str | Path, cells: Iterable[NotebookNode]) -> NotebookNode:
    """Save an unexecuted notebook of `cells`; run `python -m helpers.authoring execute` next."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [copy.deepcopy(cell) for cell in cells]
    _unique_ids(nb.cells)
    normalise_metadata(nb)
    nbformat.validate(nb)
    save(nb, path)
    return nb
