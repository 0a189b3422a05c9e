"""The command line: grade every SUBMISSIONS/<learner>/<notebook>.ipynb in parallel.

Each notebook: read (or "not a notebook"), restore checks from solutions/, run in a sandboxed
worker (fresh kernel, timeouts), score, write feedback. A broken or hostile submission gets a
score and a reason; the run goes on and exits 0 once every notebook is graded.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from helpers.grade import feedback, sandbox
from helpers.grade.steps import (
    KERNEL_DID_NOT_START,
    NOT_NOTEBOOK,
    NotANotebook,
    Part,
    read_submission,
    restore_checks,
    score,
)
from helpers.grade.zygote import Zygote, ZygoteUnavailable

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["learner", "notebook", "grade_id", "points", "max_points", "status"]


@dataclass(frozen=True)
class Job:
    learner: str
    notebook: str          # file name, e.g. 02_create_websocket_api.ipynb
    path: Path


@dataclass(frozen=True)
class Result:
    job: Job
    parts: list[Part]
    seconds: float


def find_jobs(submissions: Path, solutions: Path) -> list[Job]:
    """Every <learner>/<notebook>.ipynb whose notebook has graded parts in solutions/."""
    graded = {p.name for p in solutions.glob("*.ipynb")}
    return [Job(path.parent.name, path.name, path)
            for path in sorted(submissions.glob("*/*.ipynb")) if path.name in graded]


Runner = Callable[[bytes, float, float], tuple[int | None, bytes, bytes]]


def fresh_worker(helpers_dir: Path) -> Runner:
    """Run each notebook in a new `python -m helpers.grade.worker` in `sandbox` (no zygote)."""
    def run(notebook: bytes, cell_timeout: float,
            total_timeout: float) -> tuple[int | None, bytes, bytes]:
        argv = [sys.executable, "-m", "helpers.grade.worker", "--helpers", str(helpers_dir),
                "--cell-timeout", str(cell_timeout), "--total-timeout", str(total_timeout)]
        return sandbox.run(argv, notebook, total_timeout + 60)
    return run


def forked_worker(zygote: Zygote, fallback: Runner) -> Runner:
    """Run each notebook in a fork of `zygote`; should the zygote stop, in `fallback`."""
    def run(notebook: bytes, cell_timeout: float,
            total_timeout: float) -> tuple[int | None, bytes, bytes]:
        try:
            return zygote.run(notebook, cell_timeout, total_timeout)
        except ZygoteUnavailable as error:
            print(f"grading without a zygote: {error}", file=sys.stderr)
            return fallback(notebook, cell_timeout, total_timeout)
    return run


def grade_one(job: Job, solution: nbformat.NotebookNode, run: Runner,
              cell_timeout: float, total_timeout: float) -> Result:
    """Grade one submission; never raises for anything the submission does.

    A kernel that did not start gets one more try (nothing of the notebook ran) before the
    notebook scores 0 with that reason.
    """
    started = time.monotonic()
    try:
        submission = read_submission(job.path.read_text(encoding="utf-8", errors="replace"))
    except NotANotebook as error:
        return Result(job, score(None, solution, NOT_NOTEBOOK, str(error)),
                      time.monotonic() - started)
    graded = nbformat.writes(restore_checks(submission, solution)).encode()
    for attempt in (1, 2):
        code, out, err = run(graded, cell_timeout, total_timeout)
        if code is None:
            parts = score(None, solution, f"timed out after {total_timeout:.0f} s",
                          "the notebook did not finish in its total time; it was stopped")
            break
        try:
            reply = json.loads(out)
            executed = nbformat.from_dict(reply["notebook"])
        except (ValueError, KeyError):
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            parts = score(None, solution, "grader error", tail[0][:300])
            break
        if reply.get("started", True):
            parts = score(executed, solution)
            break
        parts = score(None, solution, KERNEL_DID_NOT_START,
                      f"{reply.get('problem')} (tried {attempt} times)")
    return Result(job, parts, time.monotonic() - started)


class Progress:
    """A one-line progress bar on stderr: [#####.....] 12/180 notebooks, 3 min."""

    def __init__(self, total: int, stream=sys.stderr) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def step(self) -> None:
        with self.lock:
            self.done += 1
            width = 30
            filled = width * self.done // max(self.total, 1)
            minutes = (time.monotonic() - self.started) / 60
            end = "\n" if self.done == self.total else ""
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] "
                              f"{self.done}/{self.total} notebooks, {minutes:.1f} min{end}")
            self.stream.flush()


def write_outputs(results: Sequence[Result], out: Path) -> None:
    """grades.csv (one row per part) and feedback/<learner>/<notebook>.md/.html."""
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(results, key=lambda r: (r.job.learner, r.job.notebook))
    with (out / "grades.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for result in ordered:
            for part in result.parts:
                writer.writerow([result.job.learner, Path(result.job.notebook).stem,
                                 part.grade_id, f"{part.points:g}", f"{part.max_points:g}",
                                 part.status])
    for result in ordered:
        folder = out / "feedback" / result.job.learner
        folder.mkdir(parents=True, exist_ok=True)
        stem = Path(result.job.notebook).stem
        (folder / f"{stem}.md").write_text(
            feedback.markdown(result.job.learner, stem, result.parts), encoding="utf-8")
        (folder / f"{stem}.html").write_text(
            feedback.page(result.job.learner, stem, result.parts), encoding="utf-8")


def default_jobs() -> int:
    """Two notebooks per core: a lesson spends most of its time waiting on sockets and timers."""
    return 2 * (os.cpu_count() or 1)


def grade(submissions: Path, out: Path, *, solutions: Path = ROOT / "solutions",
          jobs: int | None = None, cell_timeout: float = 120, total_timeout: float = 900,
          progress: bool = True, zygote: bool = True) -> list[Result]:
    """Grade everything under `submissions` into `out`; return the results.

    `zygote`: fork each notebook's worker and kernel from one preloaded process (`zygote`)
    instead of starting Python twice per notebook; the same isolation, much less CPU.
    """
    work = find_jobs(submissions, solutions)
    originals = {name: nbformat.read(solutions / name, as_version=4)
                 for name in {job.notebook for job in work}}
    bar = Progress(len(work)) if progress and work else None
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="grade-helpers-") as trusted, \
            contextlib.ExitStack() as stack:
        helpers_dir = Path(trusted) / "helpers"  # one clean copy; each worker copies it again
        shutil.copytree(ROOT / "helpers", helpers_dir,
                        ignore=shutil.ignore_patterns("__pycache__"))
        run = fresh_worker(helpers_dir)
        if zygote and work:
            try:
                run = forked_worker(stack.enter_context(Zygote(helpers_dir)), run)
            except ZygoteUnavailable as error:
                print(f"grading without a zygote: {error}", file=sys.stderr)
        with ThreadPoolExecutor(max_workers=jobs or default_jobs()) as pool:
            futures = [pool.submit(grade_one, job, originals[job.notebook], run,
                                   cell_timeout, total_timeout) for job in work]
            for future in as_completed(futures):
                results.append(future.result())
                if bar:
                    bar.step()
    write_outputs(results, out)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.grade", description=__doc__)
    parser.add_argument("submissions", type=Path, help="SUBMISSIONS/<learner>/<notebook>.ipynb")
    parser.add_argument("--out", type=Path, required=True, help="where grades.csv goes")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--jobs", type=int, default=None,
                        help="notebooks at a time (default: 2 per core)")
    parser.add_argument("--cell-timeout", type=float, default=120)
    parser.add_argument("--total-timeout", type=float, default=900)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a directory of <learner>/<notebook>.ipynb")
    results = grade(args.submissions, args.out, solutions=args.solutions, jobs=args.jobs,
                    cell_timeout=args.cell_timeout, total_timeout=args.total_timeout,
                    progress=not args.quiet)
    got = sum(p.points for r in results for p in r.parts)
    best = sum(p.max_points for r in results for p in r.parts)
    print(f"graded {len(results)} notebooks: {got:g} of {best:g} points; "
          f"{args.out / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
