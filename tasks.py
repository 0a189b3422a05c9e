"""Set up and run the course with nothing but Python >= 3.11.

    python3 tasks.py lab     # create .venv, install, start JupyterLab on notebooks/00_start_here
    python3 tasks.py test    # create .venv, install, run ruff and the whole test suite

Each command works first, alone, on a fresh clone: it creates `.venv` and installs the
repository into it (again only when pyproject.toml changed). Extra arguments go to
JupyterLab or pytest.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".install-stamp"
FIRST_LESSON = "notebooks/00_start_here.ipynb"


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def ensure_environment() -> None:
    """Create .venv and install the repo with its dev extra, unless already current."""
    if sys.version_info < (3, 11):  # noqa: UP036 (tasks.py runs before the venv exists)
        sys.exit(f"Python >= 3.11 is needed; this is {sys.version.split()[0]}.")
    if not (BIN / "python").exists():
        print(f"Creating {VENV.relative_to(ROOT)} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def lab(args: list[str]) -> None:
    ensure_environment()
    options = ["--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={ROOT}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.append("--allow-root")  # containers and CI machines often run as root
    os.execv(BIN / "jupyter", [str(BIN / "jupyter"), "lab", *options, FIRST_LESSON, *args])


def test(args: list[str]) -> None:
    ensure_environment()
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "python", "-m", "pytest", *args)


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
