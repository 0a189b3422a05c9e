"""The package imports, and the Quick start is the two commands CI runs."""

from __future__ import annotations

import os
import re
import runpy
import tomllib
from pathlib import Path

import tasks

ROOT = Path(__file__).resolve().parents[1]


def test_helpers_imports_without_touching_sys_path():
    import helpers

    assert helpers.__version__
    assert Path(helpers.__file__).resolve().parent == ROOT / "helpers"


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "Quick start must hold exactly one fenced block"
    return [line for line in blocks[0].splitlines() if line.strip() and not line.startswith("#")]


def test_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert "lab" in commands[0]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _quick_start_commands()[1].split("#")[0].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_quick_tier_leaves_out_notebooks_and_browser_tests_by_registered_markers():
    arguments = tasks.pytest_arguments(["--quick", "-k", "routing"])
    assert arguments[-2:] == ["-k", "routing"] and "--quick" not in arguments
    expression = arguments[arguments.index("-m") + 1]
    assert expression == "not notebooks and not browser"
    assert arguments[:2] == ["-n", str((os.cpu_count() or 1) + 1)]
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    registered = {line.split(":")[0] for line in ini["markers"]}
    assert set(re.findall(r"\w+", expression)) - {"not", "and", "or"} <= registered


def test_the_full_suite_is_the_default_and_runs_on_every_core():
    arguments = tasks.pytest_arguments([])
    assert "-m" not in arguments
    assert arguments[:5] == ["-n", str(2 * (os.cpu_count() or 1)), "--dist", "loadscope",
                             "--no-loadscope-reorder"]


def test_the_suite_caches_bytecode_even_where_the_machine_says_not_to(monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    env = tasks._caching_bytecode()
    assert "PYTHONDONTWRITEBYTECODE" not in env and env["PYTHONUNBUFFERED"] == "1"


def test_the_scheduling_hints_name_tests_that_exist():
    """conftest.py's LONGEST_FIRST goes stale silently when a test module moves."""
    hints = runpy.run_path(str(ROOT / "conftest.py"))
    for path in hints["LONGEST_FIRST"]:
        assert (ROOT / path).is_file(), path


def test_every_module_with_a_shared_fixture_is_one_scope():
    """A module whose tests share a fixture wider than a function, split over workers, would
    build that fixture once per worker (an nbgrader course, a JupyterLab): conftest.py must
    keep it whole, and everything else, split, must not need to be whole."""
    hints = runpy.run_path(str(ROOT / "conftest.py"))
    wide = re.compile(r"""scope\s*=\s*["'](module|class|package|session)["']""")
    sharing = {path.relative_to(ROOT).as_posix() for path in (ROOT / "tests").glob("test_*.py")
               if wide.search(path.read_text())}
    assert sharing == set(hints["SHARED_FIXTURE_MODULES"])
    scope_of = hints["scope_of"]
    assert scope_of("tests/test_grade.py::test_every_lost_point_has_a_reason") \
        == "tests/test_grade.py"
    assert scope_of("solutions/05_pushing_messages.ipynb::Cell 3") \
        == "solutions/05_pushing_messages.ipynb"
    assert scope_of("tests/test_cli.py::test_sigterm_also_stops_cleanly") \
        == "tests/test_cli.py::test_sigterm_also_stops_cleanly"
