"""Headless Chromium for the tests that look at what a person sees (JupyterLab, the chat page).

Debian's Chromium, driven by Playwright's Python package through `executable_path`
(Playwright's own browser download is not reachable here). Its `chromium-headless-shell`
package when installed: the same Blink and V8 as `chromium`, built without the windowed
browser around them, as Playwright itself runs headless pages; it used about a sixth less CPU
rendering every notebook. `.ci/run` installs both; on a machine without either,
`missing_reason` tells what to install. Under `CI=true` a missing browser is a failure, never
a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

CHROMIUM = (shutil.which("chromium-headless-shell") or shutil.which("chromium")
            or "/usr/bin/chromium")

#: Flags for a sandboxed root container with no network but loopback (see the env notes):
#: without the background-networking ones Chromium keeps dialling out and failing.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def missing_reason() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    if not os.path.exists(CHROMIUM):
        return "Debian's Chromium is not installed: apt-get install -y chromium-headless-shell"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed: pip install playwright"
    return None


@contextlib.contextmanager
def chromium(**context_options) -> Iterator:
    """A fresh headless Chromium browser context (own profile, deleted afterwards)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                **context_options,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
