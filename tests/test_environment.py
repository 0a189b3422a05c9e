"""environment.yml (conda, Binder) and pyproject.toml declare the same dependencies."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _declared_in_pyproject() -> dict[str, SpecifierSet]:
    project = _pyproject()["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return {Requirement(r).name.lower(): Requirement(r).specifier for r in requirements}


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _declared_in_environment() -> dict[str, SpecifierSet]:
    declared = {}
    for entry in _environment()["dependencies"]:
        if isinstance(entry, str) and entry not in ("pip",) and not entry.startswith("python"):
            name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry).groups()
            declared[name.lower()] = SpecifierSet(spec.replace(" ", ""))
    return declared


def test_environment_and_pyproject_declare_the_same_dependencies():
    assert _declared_in_environment() == _declared_in_pyproject()


def test_environment_python_matches_requires_python():
    pythons = [e for e in _environment()["dependencies"] if str(e).startswith("python")]
    assert pythons == [f"python{_pyproject()['project']['requires-python']}"]


def test_environment_installs_this_repository_with_its_dev_extra():
    pip_sections = [e["pip"] for e in _environment()["dependencies"] if isinstance(e, dict)]
    assert pip_sections == [['-e ".[dev]"']]
    assert "conda-forge" in _environment()["channels"]


def test_license_is_an_spdx_string_so_installs_print_no_deprecation_banner():
    """setuptools >= 77 warns on a TOML-table license, and accepts the SPDX string only >= 77."""
    pyproject = _pyproject()
    assert isinstance(pyproject["project"]["license"], str)
    setuptools = [Requirement(r) for r in pyproject["build-system"]["requires"]
                  if Requirement(r).name == "setuptools"]
    assert [r.specifier.contains("76.9") for r in setuptools] == [False]


def _needed_by(requirements: list[str]) -> set[str]:
    """Distributions installed by `requirements` (with their extras), transitively."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for line in metadata.requires(requirement.name) or ():
            sub = Requirement(line)
            extras = requirement.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return {name for name, _ in seen}


def _without_magics(cell: str) -> str:
    """A notebook cell as Python: IPython's `%` and `!` lines dropped (a module keeps its
    lines: there `!= x` may continue the line before)."""
    return "\n".join(line for line in cell.splitlines()
                     if not line.lstrip().startswith(("%", "!")))


def _imports(source: str) -> set[str]:
    """Top-level modules that Python `source` imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_notebooks_and_helpers_import_only_what_tasks_py_lab_installs():
    """`tasks.py lab` installs the project without its dev extra: the lessons must not need it."""
    sources = [p.read_text() for p in (ROOT / "helpers").rglob("*.py")]
    for notebook in sorted((ROOT / "solutions").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        sources += [_without_magics("".join(c["source"]))
                    for c in cells if c["cell_type"] == "code"]
    imported = set().union(*map(_imports, sources)) - set(sys.stdlib_module_names) - {"helpers"}
    installed = _needed_by(_pyproject()["project"]["dependencies"])
    providers = metadata.packages_distributions()
    missing = {name: providers.get(name, ["?"]) for name in imported
               if not {canonicalize_name(d) for d in providers.get(name, ())} & installed}
    assert not missing, f"the lessons import what only the dev extra installs: {missing}"


def test_importing_jsonschema_builds_no_iri_grammar():
    """Every Jupyter process imports jsonschema (pyproject.toml says why it stays below 4.25):
    with rfc3987-syntax, each would spend some 2 CPU-s building IRI parsers first."""
    probe = "import sys, jsonschema, jupyter_events; print('rfc3987_syntax' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "False"
