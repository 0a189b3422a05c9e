"""Grade a class: N learners x every graded notebook, mixed right, partial, blank and hostile.

    python -m benchmarks.grading_bench [--learners 30] [--jobs N] [--keep DIR] [--no-zygote]

Prints the wall time, the median and p90 seconds per notebook, the CPU seconds per notebook
(the grader's processes and all they started), and the points per kind of submission.
`--learners 4` (one of each kind) is a quick run; `--no-zygote` starts a fresh worker and
kernel per notebook, for comparison. CPU-heavy (one kernel per notebook, `--jobs` at a
time): on a shared machine the figures say as much about the neighbours as about the grader.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from helpers.authoring import CODE_STUB, learner_copy
from helpers.grade.__main__ import ROOT, default_jobs, grade

HOSTILE = {  # the answer cell replaced by something a grader must survive
    "crash": "import os\nos._exit(1)",
    "sys-exit": "import sys\nsys.exit(1)",
    "own-checking": ("class checking:\n    def __init__(self, *a): pass\n"
                     "    def __enter__(self): pass\n    def __exit__(self, *e): return True"),
}


def kind(learner: int) -> str:
    return ["right", "blank", "partial", "hostile"][learner % 4]


def submission(solution: nbformat.NotebookNode, name: str, learner: int) -> str:
    """The notebook text learner number `learner` hands in."""
    what = kind(learner)
    if what == "right":
        return nbformat.writes(solution)
    blank = learner_copy(solution, name)
    if what == "blank":
        return nbformat.writes(blank)
    answers = [c for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")]
    if what == "partial":  # every answer right but its last solution region left a stub
        solved = {c.id: c.source for c in answers}
        last = answers[-1].id if answers else None
        for cell in blank.cells:
            if cell.id in solved:
                cell.source = solved[cell.id] if cell.id != last else stub_last(solved[cell.id])
        return nbformat.writes(blank)
    hostile = sorted(HOSTILE)[learner // 4 % len(HOSTILE)]
    if learner // 4 % 4 == 3:
        return "{ not a notebook"
    for cell in blank.cells:
        if answers and cell.id == answers[0].id:
            cell.source = HOSTILE[hostile]
    return nbformat.writes(blank)


def stub_last(source: str) -> str:
    """`source` with its last ### BEGIN/END SOLUTION region replaced by the learner's stub."""
    lines = source.splitlines()
    begin = max(i for i, line in enumerate(lines) if "BEGIN SOLUTION" in line)
    end = next(i for i in range(begin, len(lines)) if "END SOLUTION" in lines[i])
    indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
    return "\n".join([*lines[:begin], *(indent + s for s in CODE_STUB), *lines[end + 1:]])


def build_class(folder: Path, learners: int) -> None:
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        if not any(c.metadata.get("nbgrader", {}).get("grade") for c in solution.cells):
            continue
        for learner in range(learners):
            target = folder / f"learner{learner:02d}" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(submission(solution, path.name, learner), encoding="utf-8")


def children_cpu() -> float:
    """User + system seconds of every finished process this one started (and they theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="write submissions and grades here")
    parser.add_argument("--no-zygote", action="store_true",
                        help="a fresh Python per worker and kernel, as before the zygote")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as scratch:
        base = args.keep or Path(scratch)
        build_class(base / "submitted", args.learners)
        started, cpu = time.monotonic(), children_cpu()
        results = grade(base / "submitted", base / "graded", jobs=args.jobs,
                        zygote=not args.no_zygote)
        wall, cpu = time.monotonic() - started, children_cpu() - cpu
    print(f"{os.cpu_count()} cores, {args.jobs or default_jobs()} notebooks at a time; load "
          f"average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    seconds = sorted(r.seconds for r in results)
    print(f"{len(results)} notebooks ({args.learners} learners) in {wall / 60:.1f} min wall; "
          f"per notebook median {statistics.median(seconds):.1f} s, "
          f"p90 {seconds[int(0.9 * (len(seconds) - 1))]:.1f} s, max {seconds[-1]:.1f} s")
    print(f"CPU {cpu:.0f} s in the grader's processes, {cpu / len(results):.2f} s per notebook "
          f"({'fresh workers' if args.no_zygote else 'zygote'})")
    by_kind: dict[str, list[float]] = {}
    for result in results:
        learner = int(result.job.learner.removeprefix("learner"))
        got = sum(p.points for p in result.parts)
        best = sum(p.max_points for p in result.parts)
        by_kind.setdefault(kind(learner), []).append(got / best if best else 0)
    for name, shares in sorted(by_kind.items()):
        print(f"  {name:8s} {len(shares):3d} notebooks, mean score {statistics.mean(shares):.0%}")


if __name__ == "__main__":
    main()
