"""Serve the lessons' static pages (helpers/lessons/static/) on 127.0.0.1 from a notebook.

A plain `http.server` in a daemon thread: the kernel's own loop stays free, nothing is logged
into cells, and running the cell again stops the previous server first (one per name).
"""

from __future__ import annotations

import atexit
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

STATIC = Path(__file__).resolve().parent / "static"

_running: dict[str, PageServer] = {}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests go nowhere: a server thread must never print into a notebook cell."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # an edited page shows on reload
        super().end_headers()


class PageServer:
    """Static files of `directory` at http://127.0.0.1:<port>/; `stop()` frees the port."""

    def __init__(self, directory: Path = STATIC, host: str = "127.0.0.1", port: int = 0):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name=f"page-server-{self.port}", daemon=True)

    def url(self, path: str = "", **query: str) -> str:
        """The address of `path`, with `query` as its query string (`:` and `/` kept as is,
        so a ws:// URL in it stays readable)."""
        tail = f"?{urlencode(query, safe=':/')}" if query else ""
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}{tail}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> PageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def __repr__(self) -> str:
        return f"<PageServer {self.url()}>"


def serve_pages(name: str = "pages", directory: Path = STATIC) -> PageServer:
    """Start serving `directory`, stopping the server an earlier run started under `name`."""
    old = _running.pop(name, None)
    if old is not None:
        old.stop()
    server = _running[name] = PageServer(directory).start()
    return server


@atexit.register
def stop_all() -> None:
    while _running:
        _running.popitem()[1].stop()
