"""A tiny graded course and planted submissions, shared by the helpers.grade and nbgrader tests.

One exercise (`double`) with two graded parts, the first with a hidden test; each planted
submission is the learner copy with one answer (or one act of sabotage) filled in, and the
points it must score.
"""

from __future__ import annotations

import copy
import csv
import os
from pathlib import Path

import nbformat

from helpers.authoring import learner_copy
from helpers.nbbuild import code, md, write_notebook

NOTEBOOK = "01_demo.ipynb"
#: Names the processes and files a submission must not leave behind: one per test process, so
#: that a check for leftovers never sees what a test running beside it (another xdist worker,
#: another checkout's suite) started and has not cleaned up yet.
MARK = f"grade-test-leftover-{os.getpid()}"

SOLUTION_CELLS = [
    md("# Demo"),
    code("from helpers.checks import check, checking"),
    code("""
        def double(x):
            ### BEGIN SOLUTION
            return 2 * x
            ### END SOLUTION
    """, exercise="double"),
    code("""
        from helpers.checks import check, checking
        with checking("double numbers", "doubles numbers"):
            check(double(2) == 4, f"double(2) is {double(2)!r}, not 4", hint="multiply by 2")
            ### BEGIN HIDDEN TESTS
            check(double(-3) == -6, "double(-3) is not -6", hint="multiply by 2")
            ### END HIDDEN TESTS
    """, check="double-numbers", points=2),
    code("""
        from helpers.checks import check, checking
        with checking("double text", "doubles strings"):
            check(double("ab") == "abab", "double('ab') is not 'abab'", hint="use 2 * x")
    """, check="double-text", points=1),
]


def answer(body: str) -> str:
    return "def double(x):\n" + "\n".join("    " + line for line in body.splitlines())


#: Hands the check cells a fake helpers.checks through sys.modules (their import reads it).
FAKE_CHECKS_MODULE = """
import sys, types
fake = types.ModuleType("helpers.checks")
class checking:
    def __init__(self, *args): pass
    def __enter__(self): pass
    def __exit__(self, *exc): return True
fake.checking, fake.check = checking, lambda *args, **kwargs: None
sys.modules["helpers.checks"] = fake"""


# name -> (code of the answer cell, or a function editing the learner notebook; points)
SUBMISSIONS = {
    "right": (answer("return 2 * x"), 3),
    "blank": (None, 0),
    "partial": (answer("return x + x if isinstance(x, int) else x"), 2),
    "hardcoded": (answer("return 4 if x == 2 else x * 2 if isinstance(x, str) else 0"), 1),
    "own-checking": (answer("return 0") + """
class checking:
    def __init__(self, *args): pass
    def __enter__(self): pass
    def __exit__(self, *exc): return True
def check(*args, **kwargs): pass""", 0),
    "patched-helpers": (answer("return 0") + """
import helpers.checks
helpers.checks.check = lambda *args, **kwargs: None
helpers.checks.checking.__exit__ = lambda self, *exc: True""", 0),
    "fake-checks-module": (answer("return 0") + FAKE_CHECKS_MODULE, 0),
    # keeps the function object (and its id), swaps what it runs
    "swapped-code": (answer("return 0") + """
import helpers.checks
helpers.checks.check.__code__ = (lambda condition, what, hint: None).__code__""", 0),
    # edits the helpers/ it was given (only under the temporary directory: never a real checkout)
    "edited-helpers-file": (answer("return 0") + """
import helpers.checks, pathlib, tempfile
path = pathlib.Path(helpers.checks.__file__).resolve()
if path.is_relative_to(pathlib.Path(tempfile.gettempdir()).resolve()):
    path.write_text(path.read_text().replace('if not condition:', 'if False:'))
else:
    raise RuntimeError(f"the grader let a kernel import helpers from {path}")""", 0),
    "stderr": (answer("""import logging, sys, warnings
logging.getLogger("learner").warning("doubling %r", x)
warnings.warn("about to double")
print("debug", x, file=sys.stderr)
return 2 * x"""), 3),
    "renamed": ("def twice(x):\n    return 2 * x", 0),
    "sys-exit": ("import sys\nsys.exit(3)", 0),
    "kernel-crash": ("import os\nos._exit(1)", 0),
    # The hangs sleep: a busy loop is interrupted the same way (SIGINT between bytecodes) but
    # burns a core for the whole cell timeout, which the other tests running beside it need.
    "infinite-loop": ("import time\nwhile True:\n    time.sleep(0.1)", 0),
    "ignores-sigint": ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                       "while True:\n    time.sleep(0.1)", 0),
    "huge-output": (answer("return 2 * x") + "\nprint('x' * 16_000_000)", 3),
    "leaves-things-behind": (answer("return 2 * x") + f"""
import subprocess, sys, socket, threading, http.server
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # {MARK}"],
                 start_new_session=True)
open("/tmp/{MARK}", "w").write("left behind")
server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
open("server-port", "w").write(str(server.server_address[1]))""", 3),
}
EDITS = {  # submissions that change cells other than the answer
    "deleted-check": 1,     # the right answer, the first check cell deleted
    "edited-check": 0,      # a wrong answer, both check cells emptied
    "reordered": 2,         # the right answer, the second check moved above it
}


def write_solutions(folder: Path) -> Path:
    write_notebook(folder / NOTEBOOK, SOLUTION_CELLS)
    return folder


def planted(solutions: Path, learner: str) -> nbformat.NotebookNode:
    """The learner copy of the demo notebook with `learner`'s submission filled in."""
    nb = learner_copy(nbformat.read(solutions / NOTEBOOK, as_version=4), NOTEBOOK)
    cells = {c.id: c for c in nb.cells}
    if learner in SUBMISSIONS:
        source, _ = SUBMISSIONS[learner]
        if source is not None:
            cells["double"].source = source
    elif learner == "deleted-check":
        cells["double"].source = answer("return 2 * x")
        nb.cells.remove(cells["double-numbers"])
    elif learner == "reordered":
        cells["double"].source = answer("return 2 * x")
        nb.cells.remove(cells["double-text"])
        nb.cells.insert(nb.cells.index(cells["double"]), cells["double-text"])
    elif learner == "edited-check":
        cells["double"].source = answer("return 0")
        cells["double-numbers"].source = cells["double-text"].source = "pass"
    return copy.deepcopy(nb)


def expected_points() -> dict[str, int]:
    return {**{name: points for name, (_, points) in SUBMISSIONS.items()}, **EDITS}


def write_submissions(solutions: Path, folder: Path, learners=None) -> Path:
    """folder/<learner>/01_demo.ipynb for each planted learner, plus one that is not JSON."""
    for learner in learners or expected_points():
        (folder / learner).mkdir(parents=True, exist_ok=True)
        nbformat.write(planted(solutions, learner), folder / learner / NOTEBOOK)
    (folder / "not-json").mkdir(parents=True, exist_ok=True)
    (folder / "not-json" / NOTEBOOK).write_text("{ this is not a notebook")
    return folder


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "grades.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def totals(out: Path) -> dict[str, float]:
    points: dict[str, float] = {}
    for row in rows(out):
        points[row["learner"]] = points.get(row["learner"], 0) + float(row["points"])
    return points


def status(out: Path, learner: str) -> dict[str, str]:
    return {r["grade_id"]: r["status"] for r in rows(out) if r["learner"] == learner}
