"""Set up and run the course with nothing but Python >= 3.11.

    python3 tasks.py lab           # create .venv, install, open JupyterLab on lesson 00
    python3 tasks.py test          # create .venv, install, run ruff and the whole test suite
    python3 tasks.py test --quick  # the inner loop: all but the notebook and browser tests

Each command works first, alone, on a fresh clone: it creates `.venv` and installs the
repository into it (again only when pyproject.toml changed). `lab` installs what the notebooks
need; `test` adds the dev extra. Installs use uv when pip can fetch it from the package index
(it downloads in parallel and resolves in a blink), and pip alone otherwise; then everything in
.venv is byte-compiled. Extra arguments go to JupyterLab or pytest.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".install-stamp"
#: Bumped when an install step is added, so that an existing .venv gets it too.
STAMP_VERSION = 2
FIRST_LESSON = "notebooks/00_start_here.ipynb"
#: pytest-xdist: two workers per core, as about a third of the suite's time is waiting (kernels
#: starting, timeouts shown on purpose, a browser rendering): 163 s against 300 s with one per
#: core on 2 cores. Each notebook (and each module sharing a fixture, conftest.py) stays on one
#: worker. Scopes are handed out in collection order (conftest.py puts the longest first), not
#: sorted by their number of tests, xdist's default, which started the longest modules last.
WORKERS = 2 * (os.cpu_count() or 1)
#: The quick tier waits less (no kernels, no browser) and each worker spends 5 CPU-s importing
#: and collecting before its first test: one worker per core plus one (median 54 s against 58 s
#: with two per core on 2 cores).
QUICK_WORKERS = (os.cpu_count() or 1) + 1
LOAD = ["--dist", "loadscope", "--no-loadscope-reorder"]
QUICK = ["-m", "not notebooks and not browser"]


def _run(*cmd: str | Path, **options) -> subprocess.CompletedProcess:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, **{"check": True, **options})


def _installed() -> dict:
    """What the last install put in .venv: {"pyproject": sha256, "extras": [...]}, or {}."""
    try:
        return json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return {}


def _outer_pip() -> list[str | Path] | None:
    """This Python's own pip aimed at .venv (pip >= 22.3 has --python), or None without one.

    Installing uv with it spares .venv an ensurepip run, the slowest step of its creation."""
    try:
        major, minor = (int(part) for part in metadata.version("pip").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if (major, minor) < (22, 3):
        return None
    return [sys.executable, "-m", "pip", "--python", BIN / "python"]


def _venv_pip() -> list[str | Path]:
    """.venv's own pip, bootstrapped by ensurepip the first time it is needed."""
    if subprocess.run([BIN / "python", "-m", "pip", "--version"], capture_output=True).returncode:
        _run(BIN / "python", "-m", "ensurepip", "--default-pip", stdout=subprocess.DEVNULL)
    return [BIN / "python", "-m", "pip"]


def _uv() -> Path | None:
    """uv in .venv, installed by pip on first use; None when pip cannot get it (then pip works)."""
    uv = BIN / ("uv.exe" if os.name == "nt" else "uv")
    for pip in (_outer_pip, _venv_pip):
        command = None if uv.exists() else pip()
        if command is not None:
            quiet = ["--quiet", "--disable-pip-version-check"]
            _run(*command, "install", *quiet, "uv", check=False, stderr=subprocess.DEVNULL)
    if not uv.exists():
        print("uv is not available: installing with pip instead", flush=True)
        return None
    return uv


def ensure_environment(extras: tuple[str, ...] = ()) -> None:
    """Create .venv and install the repo (with `extras`), unless that is already done."""
    if sys.version_info < (3, 11):  # noqa: UP036 (tasks.py runs before the venv exists)
        sys.exit(f"Python >= 3.11 is needed; this is {sys.version.split()[0]}.")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    done = _installed()
    current = done.get("pyproject") == wanted and done.get("version") == STAMP_VERSION
    if (BIN / "python").exists() and current:
        if set(extras) <= set(done.get("extras", ())):
            return
        extras = tuple(sorted({*extras, *done.get("extras", ())}))
    if not (BIN / "python").exists():
        print(f"Creating {VENV.relative_to(ROOT)} ...", flush=True)
        venv.EnvBuilder(with_pip=False).create(VENV)  # pip comes with uv, or from ensurepip
    target = f".[{','.join(extras)}]" if extras else "."
    uv = _uv()
    if uv is not None:  # pip too, so that `%pip install` works in the notebooks
        _run(uv, "pip", "install", "--quiet", "--python", BIN / "python", "-e", target, "pip")
    else:
        _run(*_venv_pip(), "install", "--quiet", "-e", target)
    _compile_bytecode()
    STAMP.write_text(json.dumps({"pyproject": wanted, "extras": sorted(extras),
                                 "version": STAMP_VERSION}))


def _compile_bytecode() -> None:
    """Byte-compile every package in .venv, once per install.

    uv installs no .pyc files, and where PYTHONDONTWRITEBYTECODE is set (many containers and CI
    images) Python never caches them: every process, each notebook kernel and test subprocess,
    would compile botocore, moto and Jupyter from source again, seconds each time."""
    purelib = subprocess.run(
        [BIN / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    _run(BIN / "python", "-m", "compileall", "-q", "-j", "0", purelib, stdout=subprocess.DEVNULL,
         check=False)  # a file that does not compile is only left uncached


def lab(args: list[str]) -> None:
    ensure_environment()
    options = ["--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={ROOT}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.append("--allow-root")  # containers and CI machines often run as root
    os.execv(BIN / "jupyter", [str(BIN / "jupyter"), "lab", *options, FIRST_LESSON, *args])


def pytest_arguments(args: list[str]) -> list[str]:
    """pytest's arguments for `tasks.py test ARGS`: on every core, `--quick` as a marker filter."""
    rest = [a for a in args if a != "--quick"]
    if "--quick" in args:
        return ["-n", str(QUICK_WORKERS), *LOAD, *QUICK, *rest]
    return ["-n", str(WORKERS), *LOAD, *rest]


def test(args: list[str]) -> None:
    ensure_environment(("dev",))
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "python", "-m", "pytest", *pytest_arguments(args), env=_caching_bytecode())


def _caching_bytecode() -> dict[str, str]:
    """This environment, minus PYTHONDONTWRITEBYTECODE (set in many containers and CI images).

    Under it nothing caches bytecode, so each pytest worker would rewrite the asserts of every
    test module again, and every kernel and subprocess of the suite compile helpers/
    again. Both caches land in gitignored __pycache__ folders, and Python checks them against
    their sources' size and mtime (pytest's too)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def main() -> None:
    commands = {"lab": lab, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    try:
        commands[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)


if __name__ == "__main__":
    main()
