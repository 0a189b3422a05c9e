"""How the suite runs the notebooks: one kernel per copy, "Run All" twice in it, under nbval.

For every `solutions/NN_*.ipynb`, two pytest files are collected (both marked `notebooks`):

* the solution: nbval's own cell items (its kernel, `runtest`, output comparison with
  `tests/nbval_sanitize.cfg`), then every cell again in the same kernel. Round 1 is what
  `pytest --nbval solutions/` checks (with more patience for late output: OUTPUT_TIMEOUT);
  round 2 is "Run All" a second time: it must raise in the same cells as round 1 and
  nowhere unexpected.
* its learner copy `notebooks/NN_*.ipynb` (generated from the solution; a test keeps them in
  sync): every cell twice in one kernel. Graded check cells must fail with `CheckFailed` or
  `NotDoneYet` in round 1, and cells not tagged `raises-exception` must run cleanly both times,
  so a learner who has not started yet sees only friendly failures.

So each notebook is executed twice per copy (four times in all), not six times. Each notebook
file is one scope (pytest-xdist `--dist loadscope` keeps its cells on one worker, in order).
Each copy's kernel is forked from the session's kernel zygote (tests/kernel_zygote.py), which
imported ipykernel, boto3, moto and matplotlib once; tests/test_kernel_zygote.py holds a forked
kernel to what a fresh one sees. With `--nbval` or `--nbval-lax` on the command line, nbval
collects the notebooks itself, plainly, each in a fresh kernel.
"""

from __future__ import annotations

import gc
import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from nbval.plugin import IPyNbCell, IPyNbFile

from tests import kernel_zygote, zygote_kernels

#: What a learner's unsolved check may raise (helpers.checks): anything else is a bug.
FRIENDLY = ("CheckFailed", "NotDoneYet")
#: The longest test modules (`--durations`: a JupyterLab and browser, an nbgrader course, the
#: grader on every planted submission and on hostile ones, every lesson's real-AWS path, a
#: thirty-member chat, moto under load, fresh interpreters importing moto, the quick benchmark,
#: the Quick start's JupyterLab, a check waiting out a hung handler), collected first.
#: `--dist loadscope --no-loadscope-reorder` (tasks.py) hands scopes to workers in collection
#: order: started last, one of them would keep a worker busy long after the others finished.
#: The notebooks come next.
LONGEST_FIRST = ("tests/test_jupyterlab.py", "tests/test_nbgrader.py", "tests/test_grade.py",
                 "tests/test_real_aws_notebooks.py", "tests/test_grade_isolation.py",
                 "tests/test_real_aws_path.py", "tests/test_lesson_chat.py",
                 "tests/test_cli.py", "tests/test_patches.py", "tests/test_chat_browser.py",
                 "tests/test_moto_dynamodb.py", "tests/test_benchmark_smoke.py",
                 "tests/test_quick_start.py", "tests/test_lesson_checks.py")
#: Test modules with a fixture wider than a function (a JupyterLab, an nbgrader course, a
#: graded class, kernels): each is one scope, so its fixture is built once, on one worker.
#: Every other test is a scope of its own, so a long module spreads over the workers; a
#: notebook is always one scope (its cells run in order in one kernel).
#: (tests/test_smoke.py checks that this names every such module.)
SHARED_FIXTURE_MODULES = ("tests/test_jupyterlab.py", "tests/test_nbgrader.py",
                          "tests/test_grade.py", "tests/test_notebook_harness.py",
                          "tests/test_kernel_zygote.py")
#: nbval waits 5 s for each output message once a cell has finished: too tight on a busy
#: machine (the output is on its way, the kernel process is just not scheduled yet).
OUTPUT_TIMEOUT = 60


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    option = parent.config.option
    if file_path.suffix != ".ipynb" or option.nbval or option.nbval_lax:
        return None
    folder, root = file_path.parent, parent.config.rootpath
    if folder == root / "solutions":
        return SolutionNotebook.from_parent(parent, path=file_path)
    if folder == root / "notebooks" and (root / "solutions" / file_path.name).exists():
        return LearnerNotebook.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(config.rootpath).as_posix() if item.path.is_relative_to(
            config.rootpath) else ""
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order (testpaths: notebooks first)


def uses_kernel_zygote(nodeid: str) -> bool:
    """Notebooks get their kernels from the session's zygote, and its own tests test it."""
    return ".ipynb::" in nodeid or nodeid.startswith("tests/test_kernel_zygote.py::")


def scope_of(nodeid: str) -> str:
    """The xdist scope of a test: its file for a notebook or a SHARED_FIXTURE_MODULES module,
    else the test itself."""
    path = nodeid.split("::", 1)[0]
    return path if path.endswith(".ipynb") or path in SHARED_FIXTURE_MODULES else nodeid


class _Scopes:
    """`--dist loadscope`, with `scope_of`'s scopes (an xdist hook)."""

    @staticmethod
    def pytest_xdist_make_scheduler(config: pytest.Config, log):
        if config.getoption("dist") != "loadscope":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class Scheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return scope_of(nodeid)

        return Scheduling(config, log)

    @staticmethod
    def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
        """The controller starts the kernel zygote once some worker has notebooks to run."""
        zygote = getattr(node.config, "kernel_zygote", None)
        if zygote is not None and any(map(uses_kernel_zygote, ids)):
            zygote.start()


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):  # a dev dependency, and `-p no:xdist` exists
        config.pluginmanager.register(_Scopes())
    option = config.option
    if not hasattr(config, "workerinput") and not (option.nbval or option.nbval_lax) \
            and not option.collectonly and sys.platform == "linux":  # the controller, or no workers
        config.kernel_zygote = kernel_zygote.Zygote()
        os.environ[kernel_zygote.ADDRESS] = config.kernel_zygote.address  # workers inherit it


def pytest_unconfigure(config: pytest.Config) -> None:
    zygote = getattr(config, "kernel_zygote", None)
    if zygote is not None:
        os.environ.pop(kernel_zygote.ADDRESS, None)
        zygote.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """The test processes run gateways, moto and whole lessons in-process: they collect
    garbage as a kernel that ran `start_moto` does, and never scan what collection built."""
    from helpers.aws import GC_THRESHOLDS

    zygote = getattr(session.config, "kernel_zygote", None)
    if zygote is not None and any(uses_kernel_zygote(item.nodeid) for item in session.items):
        zygote.start()  # pytest without workers
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()
    gc.freeze()


def is_check(cell) -> bool:
    """A graded check cell (nbgrader `grade: true` on a code cell)."""
    return cell.cell_type == "code" and bool(cell.metadata.get("nbgrader", {}).get("grade"))


def errors(outputs) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in outputs or () if o["output_type"] == "error"]


class NotebookCell(IPyNbCell):
    """nbval's cell item, plus what the harness expects of the cell in its round."""

    def __init__(self, *args, expect=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.output_timeout = OUTPUT_TIMEOUT
        self.expect = expect  # called after nbval's runtest; returns a problem or None

    def reportinfo(self):
        return self.path, 0, self.nodeid  # nbval's says "Cell N" in both rounds

    def runtest(self) -> None:
        super().runtest()  # runs the cell; fails on unexpected errors and differing outputs
        problem = self.expect and self.expect(self)
        if problem:
            self.raise_cell_error(problem)


class _TwoRounds(IPyNbFile):
    """A notebook whose code cells run twice in one kernel ("Run All", then again)."""

    def setup(self) -> None:
        """nbval's setup, with a kernel forked from the session's zygote when there is one."""
        address = os.environ.get(kernel_zygote.ADDRESS)
        if address is None or not self.config.option.nbval_current_env:  # another Python
            return super().setup()
        try:
            self.kernel = zygote_kernels.running_kernel(
                address, cwd=str(self.path.parent),
                startup_timeout=self.config.option.nbval_kernel_startup_timeout)
        except zygote_kernels.ZygoteUnavailable:
            return super().setup()
        self.setup_sanitize_files()
        return None

    def collect(self):
        first: list[NotebookCell] = []
        for plain in super().collect():  # nbval's items: its tags, comments and options
            item = NotebookCell.from_parent(
                self, name=plain.name, cell_num=plain.cell_num, cell=plain.cell,
                options=plain.options, expect=self.first_round,
            )
            first.append(item)
        second = [
            NotebookCell.from_parent(
                self, name=f"{item.name}, run 2", cell_num=item.cell_num, cell=item.cell,
                options=defaultdict(bool, item.options, check=False),
                expect=lambda again, item=item: self.second_round(again, item),
            )
            for item in first
        ]
        for item in first + second:
            item.add_marker(pytest.mark.notebooks)
            yield item

    def first_round(self, item: NotebookCell) -> str | None:
        return None

    def second_round(self, again: NotebookCell, first: NotebookCell) -> str | None:
        return None


class SolutionNotebook(_TwoRounds):
    """Round 1 is nbval's check; round 2 must raise exactly where round 1 raised."""

    def second_round(self, again: NotebookCell, first: NotebookCell) -> str | None:
        before, after = errors(first.test_outputs), errors(again.test_outputs)
        if bool(before) != bool(after):
            return f"run 1 raised {before or 'nothing'}, run 2 raised {after or 'nothing'}"
        return None


class LearnerNotebook(_TwoRounds):
    """Unsolved checks fail kindly; nbval fails any other cell not tagged raises-exception."""

    def first_round(self, item: NotebookCell) -> str | None:
        raised = errors(item.test_outputs)
        if is_check(item.cell) and not any(e.startswith(FRIENDLY) for e in raised):
            return f"check did not fail with CheckFailed/NotDoneYet: {raised}"
        return None
