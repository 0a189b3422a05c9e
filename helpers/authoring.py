"""Turn solution notebooks into learner notebooks, check they are in sync, re-execute them.

    python -m helpers.authoring generate [NAMES...]   # solutions/ -> notebooks/
    python -m helpers.authoring check [NAMES...]      # exit 1 if notebooks/ is stale
    python -m helpers.authoring execute [NAMES...]    # re-run solutions/ in place, then generate

NAMES select notebooks by file name, stem or number prefix (`02`, `02_create_api`). The markup
is nbgrader's (reference/teaching-notebooks.md §2.1): `### BEGIN SOLUTION` / `### END SOLUTION`
regions in cells marked `solution: true`, `### BEGIN HIDDEN TESTS` / `### END HIDDEN TESTS` in
cells marked `grade: true`. The builder for writing solutions lives in `helpers.nbbuild`.

Exercise and check cells carry `raises-exception` in the solutions too (nbgrader makes its
release copies from them), so `execute` checks that they did not raise in the solution.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode

from helpers.nbbuild import dumps, normalise_metadata, save

ROOT = Path(__file__).resolve().parents[1]
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)
RAISES = "raises-exception"
# A solution cell tagged so uses an exercise's result: it may fail in the learner copy.
NEEDS_EXERCISE = "needs-exercise"
SKIP_TAGS = {"nbval-skip", "skip-execution"}
CELL_TIMEOUT = 120


class MarkupError(ValueError):
    """Bad nbgrader markup in a solution notebook; the message names notebook and cell."""


class ExecutionFailed(RuntimeError):
    """A solution notebook raised where it should not; the message names the notebook."""


def _where(name: str, index: int, cell: NotebookNode) -> str:
    return f"{name}, cell {index} (id {cell.get('id', '?')})"


def _replace_regions(
    source: str, begin: str, end: str, stub: Sequence[str] | None, where: str
) -> tuple[str, int]:
    """Replace each begin..end region by `stub` at the BEGIN line's indentation (None: drop it).

    Delimiters match as substrings of a line, as in nbgrader, so any comment prefix works.
    """
    out: list[str] = []
    inside = False
    regions = 0
    for number, line in enumerate(source.splitlines(), start=1):
        if begin in line:
            if inside:
                raise MarkupError(f"{where}: nested {begin!r} at line {number}")
            inside, regions = True, regions + 1
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + stub_line for stub_line in stub or ())
        elif end in line:
            if not inside:
                raise MarkupError(f"{where}: {end!r} without {begin!r} at line {number}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkupError(f"{where}: {begin!r} has no matching {end!r}")
    text = "\n".join(out)
    return (text + "\n" if source.endswith("\n") and out else text), regions


def _has(source: str, marker: str) -> bool:
    return marker in source


def learner_cell(cell: NotebookNode, where: str) -> NotebookNode:
    """The learner's version of one solution cell: stubbed, hidden tests removed, no outputs."""
    cell = copy.deepcopy(cell)
    grading = cell.metadata.get("nbgrader", {})
    is_solution, is_graded = bool(grading.get("solution")), bool(grading.get("grade"))
    is_code = cell.cell_type == "code"
    if any(_has(cell.source, m) for m in ("BEGIN SOLUTION", "END SOLUTION")) and not is_solution:
        raise MarkupError(f"{where}: solution region in a cell not marked nbgrader solution: true")
    if any(_has(cell.source, m) for m in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")):
        if not is_graded:
            raise MarkupError(f"{where}: hidden tests in a cell not marked nbgrader grade: true")
        cell.source, _ = _replace_regions(
            cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", None, where
        )
    if is_solution:
        stub = CODE_STUB if is_code else TEXT_STUB
        cell.source, regions = _replace_regions(
            cell.source, "BEGIN SOLUTION", "END SOLUTION", stub, where
        )
        if not regions:
            cell.source = "\n".join(stub)
    if is_code:
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
        tags = cell.metadata.get("tags", [])
        if may_raise(cell) and RAISES not in tags:
            cell.metadata["tags"] = [*tags, RAISES]
    return cell


def may_raise(cell: NotebookNode) -> bool:
    """Exercise, check and needs-exercise cells: they fail until the learner has answered."""
    grading = cell.metadata.get("nbgrader", {})
    tags = cell.metadata.get("tags", [])
    return cell.cell_type == "code" and (
        bool(grading.get("solution") or grading.get("grade")) or NEEDS_EXERCISE in tags)


def tag_release_cells(nb: NotebookNode) -> NotebookNode:
    """Tag cells that may raise `raises-exception` in the solution itself.

    nbgrader's release copies are made from solutions/, so the tag must already be there for
    "Run All" to go past an unfinished exercise in JupyterLab, as it does in notebooks/.
    """
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if may_raise(cell) and RAISES not in tags:
            cell.metadata["tags"] = [*tags, RAISES]
    return nb


def learner_copy(nb: NotebookNode, name: str = "<notebook>") -> NotebookNode:
    """The learner notebook generated from solution `nb` (which is left untouched)."""
    grade_ids: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and grade_ids.setdefault(grade_id, index) != index:
            where, first = _where(name, index, cell), grade_ids[grade_id]
            raise MarkupError(f"{where}: grade_id {grade_id!r} is also cell {first}'s")
    learner = copy.deepcopy(nb)
    learner.cells = [learner_cell(c, _where(name, i, c)) for i, c in enumerate(nb.cells)]
    return learner


def _select(folder: Path, names: Sequence[str]) -> list[Path]:
    """Notebooks in `folder` matching `names` (all if empty); an unmatched name is an error."""
    found = sorted(folder.glob("*.ipynb"))
    if not names:
        return found
    chosen: list[Path] = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        hits = [p for p in found if p.stem == stem or p.stem.startswith(stem + "_")]
        if not hits:
            raise SystemExit(f"no notebook in {folder} matches {name!r}")
        chosen.extend(p for p in hits if p not in chosen)
    return chosen


def _read(path: Path) -> NotebookNode:
    return nbformat.read(path, as_version=4)


def _expected(solution: Path, root: Path) -> str:
    return dumps(learner_copy(_read(solution), str(solution.relative_to(root))))


def generate(names: Sequence[str] = (), *, root: Path = ROOT) -> list[Path]:
    """Write notebooks/ from solutions/; return the learner notebooks that changed."""
    changed = []
    for solution in _select(root / "solutions", names):
        target = root / "notebooks" / solution.name
        text = _expected(solution, root)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            changed.append(target)
    return changed


def stale(names: Sequence[str] = (), *, root: Path = ROOT) -> list[str]:
    """Problems that make notebooks/ differ from what `generate` would write (empty: in sync)."""
    problems = []
    solutions = _select(root / "solutions", names)
    for solution in solutions:
        target = root / "notebooks" / solution.name
        rel = target.relative_to(root)
        if not target.exists():
            problems.append(f"{rel}: missing")
        elif target.read_text(encoding="utf-8") != _expected(solution, root):
            problems.append(f"{rel}: differs from the generated copy of {solution.name}")
    if not names:
        wanted = {s.name for s in solutions}
        for extra in sorted((root / "notebooks").glob("*.ipynb")):
            if extra.name not in wanted:
                problems.append(f"{extra.relative_to(root)}: no solutions/{extra.name} for it")
    return problems


def skipped(cell: NotebookNode) -> bool:
    """Cells nbval would skip (tag or `# NBVAL_SKIP`); `execute` keeps their stored outputs."""
    if cell.cell_type != "code":
        return False
    tags = set(cell.metadata.get("tags", []))
    marked = any(line.strip() == "# NBVAL_SKIP" for line in cell.source.splitlines())
    return marked or bool(tags & SKIP_TAGS)


def run_notebook(
    nb: NotebookNode, cwd: Path, *, allow_errors: bool = False, timeout: int = CELL_TIMEOUT
) -> NotebookNode:
    """Execute `nb` in place in a fresh python3 kernel started in `cwd`; skipped cells stay as is.

    Without `allow_errors`, an error in a cell not tagged raises-exception stops the run with
    nbclient's CellExecutionError.
    """
    from nbclient import NotebookClient  # late: generate and check do not need a kernel

    held = {i: c.source for i, c in enumerate(nb.cells) if skipped(c)}
    for i in held:
        nb.cells[i].source = ""  # nbclient does not run empty cells, and leaves their outputs
    try:
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
            record_timing=False, resources={"metadata": {"path": str(cwd)}},
        ).execute()
    finally:
        for i, source in held.items():
            nb.cells[i].source = source
    return nb


def _quiet_raisers(nb: NotebookNode, name: str) -> list[str]:
    """Cells tagged raises-exception that did not raise: the tag would hide a real change.

    Cells that may raise in a learner's copy (`may_raise`) carry the tag for the release copy.
    """
    return [
        f"{_where(name, i, c)}: tagged {RAISES} but raised nothing"
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and RAISES in c.metadata.get("tags", []) and not may_raise(c)
        and "nbval-ignore-output" not in c.metadata.get("tags", []) and not skipped(c)
        and not any(o.output_type == "error" for o in c.outputs)
    ]


def _failed_checks(nb: NotebookNode, name: str) -> list[str]:
    """Exercise and check cells that raised in the solution: the answer or its check is wrong.

    (They carry raises-exception for the learner, so nbclient does not stop on them.)
    """
    return [
        f"{_where(name, i, c)}: raised in the solution: "
        + "; ".join(f"{o.ename}: {o.evalue}" for o in c.outputs if o.output_type == "error")
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade_id")
        and any(o.output_type == "error" for o in c.outputs)
    ]


def execute(names: Sequence[str] = (), *, root: Path = ROOT, timeout: int = CELL_TIMEOUT) -> None:
    """Re-run solution notebooks in place (cwd solutions/), then regenerate their learner copies."""
    folder = root / "solutions"
    chosen = _select(folder, names)
    for path in chosen:
        name = str(path.relative_to(root))
        nb = _read(path)
        learner_copy(nb, name)  # fail on bad markup before spending a kernel on it
        started = time.perf_counter()
        try:
            run_notebook(nb, folder, timeout=timeout)
        except CellExecutionError as error:
            raise ExecutionFailed(f"{name}: {error}") from None
        normalise_metadata(nb)
        tag_release_cells(nb)
        failed = _failed_checks(nb, name)
        if failed:
            raise ExecutionFailed("\n".join(failed))
        problems = _quiet_raisers(nb, name)
        if problems:
            raise MarkupError("\n".join(problems))
        save(nb, path)
        print(f"executed {name} in {time.perf_counter() - started:.1f} s", flush=True)
    generate([p.name for p in chosen], root=root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.authoring", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["generate", "check", "execute"])
    parser.add_argument("names", nargs="*", help="notebooks to handle (default: all)")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (for tests)")
    args = parser.parse_intermixed_args(argv)
    try:
        if args.command == "generate":
            for path in generate(args.names, root=args.root):
                print(f"wrote {path.relative_to(args.root)}")
        elif args.command == "check":
            problems = stale(args.names, root=args.root)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print("run: python -m helpers.authoring generate", file=sys.stderr)
                return 1
        else:
            execute(args.names, root=args.root)
    except MarkupError as error:
        print(f"markup error: {error}", file=sys.stderr)
        return 2
    except ExecutionFailed as error:
        print(f"execution failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
