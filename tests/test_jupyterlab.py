"""Every notebook as a learner sees it: served by JupyterLab, rendered in headless Chromium.

nbval checks what the kernel printed; it cannot see what JupyterLab does with it. A Mermaid
diagram JupyterLab cannot parse, an output no renderer accepts, a plot that never loads or a red
error box are only visible in a browser. One JupyterLab server (started the way the README's
`python3 tasks.py lab` starts it) serves the repository; one Chromium page renders the notebooks
one after another; each notebook's test reads its own report. A screenshot of every notebook is
kept under `test-artifacts/jupyterlab/` (gitignored; the path is printed): the first screen a
learner sees, or with `JUPYTERLAB_SCREENSHOTS=full` the whole notebook (the page grown to its
height, which makes rendering twice as slow: for a person to review).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from browser import chromium, missing_reason


def in_the_browser(test):
    """Marks for a test that serves JupyterLab and drives Chromium: rendering every notebook
    takes minutes on a busy machine, all in the first such test's set-up."""
    for mark in (pytest.mark.browser, pytest.mark.live, pytest.mark.slow,
                 pytest.mark.timeout(900)):
        test = mark(test)
    return test


ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [p.relative_to(ROOT).as_posix() for folder in ("solutions", "notebooks")
             for p in sorted((ROOT / folder).glob("[0-9]*.ipynb"))]
ARTIFACTS = ROOT / "test-artifacts" / "jupyterlab"
RENDER_TIMEOUT_MS = 90_000
#: A notebook broken on purpose, rendered with the others: proof that the checks can fail.
PROBE = "test-artifacts/probe/broken.ipynb"
#: Screenshots of whole notebooks, not only of their first screen.
FULL_SCREENSHOTS = os.environ.get("JUPYTERLAB_SCREENSHOTS") == "full"
#: The first screen a learner sees.
VIEWPORT = {"width": 1100, "height": 900}

#: User settings for the test server: every cell in the DOM (no windowing, so the checks and
#: the screenshot see the whole notebook), no autosave (opening must never write a notebook),
#: no news or update checks (no network here).
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


@dataclass
class Expected:
    """What a notebook's JSON says the page must show once rendered."""

    cells: int
    markdown_cells: int
    diagrams: int
    plots: int
    may_raise: list[int] = field(default_factory=list)  # cells tagged raises-exception

    @classmethod
    def of(cls, path: Path) -> Expected:
        cells = json.loads(path.read_text())["cells"]
        markdown = [c for c in cells if c["cell_type"] == "markdown"]
        outputs = [o for c in cells for o in c.get("outputs", [])]
        bundles = [o.get("data", {}) for o in outputs]
        fences = sum("".join(c["source"]).count("```mermaid") for c in markdown)
        fences += sum(1 for b in bundles if "text/vnd.mermaid" in b
                      or "```mermaid" in "".join(b.get("text/markdown", "")))
        return cls(
            cells=len(cells),
            markdown_cells=len(markdown),
            diagrams=fences,
            plots=sum(1 for b in bundles if "image/png" in b),
            may_raise=[i for i, c in enumerate(cells)
                       if "raises-exception" in c.get("metadata", {}).get("tags", [])],
        )


#: Once JupyterLab has rendered everything `Expected` counts (arg: its fields), the page
#: height that shows the whole notebook: its cells (not the scroll-past-end space, which grows
#: with the page) plus the bars above and below. Until then, false. (The notebook on show:
#: JupyterLab may keep a hidden one while it restores a workspace.)
RENDERED = """(want) => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  const outer = nb?.querySelector('.jp-WindowedPanel-outer');
  const cells = outer ? nb.querySelectorAll('.jp-Cell') : [];
  if (cells.length < Math.max(want.cells, 1)) return false;  // JupyterLab adds them in batches
  const md = nb.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown').length;
  const diagrams = [...nb.querySelectorAll('.jp-RenderedMermaid')]
    .filter(d => d.classList.contains('jp-mod-warning') || d.querySelector('svg, img')).length;
  const plots = [...nb.querySelectorAll('.jp-RenderedImage img')].filter(i => i.complete).length;
  if (md < want.markdown_cells || diagrams < want.diagrams || plots < want.plots) return false;
  const last = cells[cells.length - 1].getBoundingClientRect().bottom;
  const content = last - outer.getBoundingClientRect().top + outer.scrollTop;
  const height = Math.ceil(content + window.innerHeight - outer.clientHeight + 40);
  return height > 0 ? height : false;
}"""

#: What a learner would see as broken, read from the rendered page.
PROBLEMS = """(mayRaise) => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  const problems = [];
  const short = t => t.replace(/\\s+/g, ' ').trim().slice(0, 300);
  nb.querySelectorAll('.jp-RenderedMermaid.jp-mod-warning').forEach(d =>
    problems.push('Mermaid error: ' + short(d.querySelector('details > pre')?.textContent
                                            ?? d.textContent)));
  nb.querySelectorAll('.jp-Cell').forEach((cell, i) => {
    cell.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').forEach(o => {
      if (!mayRaise.includes(i)) problems.push(`cell ${i}: error output: ` + short(o.innerText));
    });
    if (/No renderer could be found/.test(cell.innerText))
      problems.push(`cell ${i}: an output no renderer accepts`);
    cell.querySelectorAll('.jp-OutputArea mjx-container').forEach(m => problems.push(
      `cell ${i}: an output typeset as math: ` +
      short(m.closest('.jp-OutputArea-output').innerText)));
  });
  nb.querySelectorAll('img').forEach(i => {
    if (i.complete && i.naturalWidth === 0)
      problems.push('image that does not load: ' + i.src.slice(0, 80));
  });
  nb.querySelectorAll('mjx-merror, .MathJax_Error').forEach(e =>
    problems.push('LaTeX error: ' + short(e.textContent)));
  return problems;
}"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.2)


def _browser_or_reason() -> None:
    reason = missing_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the JupyterLab tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def lab_url():
    """JupyterLab on the repository root, as `python3 tasks.py lab` serves it."""
    _browser_or_reason()
    home = Path(tempfile.mkdtemp(prefix="lab-test-"))
    for name, values in SETTINGS.items():
        (home / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "settings" / name).write_text(json.dumps(values))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    port = _free_port()
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.root_dir={ROOT}", f"--port={port}", "--IdentityProvider.token=",
         "--ServerApp.port_retries=0", "--ServerApp.disable_check_xsrf=True",
         "--LabApp.expose_app_in_browser=True", "--allow-root"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    checkpoints_before = set(ROOT.glob("*/.ipynb_checkpoints"))
    try:
        _wait_until(lambda: _answers(f"{url}/api/status") or server.poll() is not None,
                    120, "JupyterLab to answer")
        assert server.poll() is None, (home / "server.log").read_text()[-2000:]
        yield url
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(home, ignore_errors=True)
        for made in set(ROOT.glob("*/.ipynb_checkpoints")) - checkpoints_before:
            shutil.rmtree(made, ignore_errors=True)  # JupyterLab's, from opening notebooks


def _sessions(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/sessions", timeout=10) as response:
        return json.loads(response.read())


def _inspect(page, path: str) -> list[str]:
    """Wait for the notebook to render, screenshot it, check it.

    With FULL_SCREENSHOTS the page first grows to the notebook's height. JupyterLab may render
    a notebook twice while it restores its workspace, so the page then counts as settled only
    when it is rendered at a height that no longer changes.
    """
    expected = Expected.of(ROOT / path)
    target = ARTIFACTS / (path.replace("/", "__").removesuffix(".ipynb") + ".png")
    try:
        height = 0
        for _ in range(5 if FULL_SCREENSHOTS else 1):  # usually twice: render, grow, same
            settled = page.wait_for_function(RENDERED, arg=expected.__dict__,
                                             timeout=RENDER_TIMEOUT_MS).json_value()
            if settled == height:
                break
            height = settled
            if FULL_SCREENSHOTS:
                page.set_viewport_size({**VIEWPORT, "height": min(height, 30_000)})
        problems = page.evaluate(PROBLEMS, expected.may_raise)
    except Exception as error:  # a timeout: say what never appeared
        problems = [f"never finished rendering {expected}: {error}".splitlines()[0]]
    page.screenshot(path=str(target))
    print(f"screenshot: {target}")
    return problems


def _error(name: str) -> dict:
    return {"output_type": "error", "ename": name, "evalue": "on purpose",
            "traceback": [f"{name}: on purpose"]}


def _write_probe(path: Path) -> None:
    """A diagram Mermaid rejects, an unexpected and an expected error, a plot that cannot load,
    a table title with two dollar signs typeset as math."""
    def code(outputs, tags=()):
        return {"cell_type": "code", "execution_count": 1, "metadata": {"tags": list(tags)},
                "source": ["pass"], "outputs": outputs}
    cells = [
        {"cell_type": "markdown", "metadata": {},
         "source": ["```mermaid\n---\ntitle: a: b\n---\nsequenceDiagram\n  A->>B: hi\n```"]},
        code([_error("UnexpectedError")]),
        code([_error("ExpectedError")], tags=["raises-exception"]),
        code([{"output_type": "display_data", "metadata": {},
               "data": {"image/png": "bm90IGEgcG5n", "text/plain": ["<Figure>"]}}]),
        code([{"output_type": "display_data", "metadata": {},  # "\$" is not enough
               "data": {"text/markdown": "**\\$connect and \\$default**", "text/plain": "x"}}]),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))


#: Nothing here runs code: notebooks open without a kernel (a kernel per notebook cost more
#: CPU than rendering it), as when JupyterLab has no kernel to offer.
NO_KERNELS = """() => {
  const factory = window.jupyterapp.docRegistry.getWidgetFactory('Notebook');
  Object.defineProperty(factory, 'preferKernel', {value: false});
  Object.defineProperty(factory, 'canStartKernel', {value: false});
}"""

#: Show one notebook in a loaded JupyterLab: close what is open (no save dialogs: nothing is
#: saved), then open `path` without waiting for it.
OPEN = """(path) => {
  const app = window.jupyterapp;
  for (const widget of [...app.shell.widgets('main')]) widget.dispose();
  void app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
}"""


@pytest.fixture(scope="module")
def reports(lab_url) -> dict[str, list[str]]:
    """Render every notebook once; problems found, by notebook.

    One page loads JupyterLab once and then opens notebook after notebook (loading JupyterLab
    costs more than rendering a notebook). One page, not several side by side: Chromium runs
    pages of one site in one renderer process, on one main thread, so a second page only
    made each wait for the other (three times slower in all).
    """
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    _write_probe(ROOT / PROBE)
    found: dict[str, list[str]] = {}
    with chromium(viewport=VIEWPORT) as context:
        page = context.new_page()
        page.goto(f"{lab_url}/doc/workspaces/test?reset")
        page.wait_for_function("() => window.jupyterapp", timeout=RENDER_TIMEOUT_MS)
        page.evaluate("async () => { await window.jupyterapp.restored; }")
        page.evaluate(NO_KERNELS)
        for path in [*NOTEBOOKS, PROBE]:
            if FULL_SCREENSHOTS:  # measured from the first screen, not the last notebook's
                page.set_viewport_size(VIEWPORT)
            page.evaluate(OPEN, path)
            found[path] = _inspect(page, path)
    assert _sessions(lab_url) == [], "opening a notebook started a kernel"
    print(f"JupyterLab screenshots of {len(found)} notebooks in {ARTIFACTS}")
    return found


@in_the_browser
@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_renders_in_jupyterlab_without_errors(reports, path):
    assert reports[path] == [], f"{path} in JupyterLab:\n  " + "\n  ".join(reports[path])


@in_the_browser
def test_the_checks_see_what_a_learner_would_see_as_broken(reports):
    problems = reports[PROBE]
    assert len(problems) == 4, problems
    assert problems[0].startswith("Mermaid error: ") and "YAMLException" in problems[0]
    assert problems[1].startswith("cell 1: error output: ") and "UnexpectedError" in problems[1]
    assert problems[2].startswith("cell 4: an output typeset as math: ")
    assert problems[3].startswith("image that does not load")


def test_expected_counts_read_diagrams_plots_and_tags(tmp_path):
    notebook = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["```mermaid\ngraph LR\nA-->B\n```"]},
        {"cell_type": "code", "metadata": {"tags": ["raises-exception"]}, "source": [],
         "outputs": [{"output_type": "display_data", "data": {"image/png": "",
                                                             "text/plain": ""}},
                     {"output_type": "display_data", "data": {"text/vnd.mermaid": "graph"}}]},
    ]}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(notebook))
    assert Expected.of(path) == Expected(cells=2, markdown_cells=1, diagrams=2, plots=1,
                                         may_raise=[1])
