"""environment.yml (conda, Binder) and pyproject.toml declare the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

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
