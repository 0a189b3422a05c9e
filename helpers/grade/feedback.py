"""What a learner reads about one graded notebook: Markdown and HTML, one section per part.

Each failure shows the check's message with its hint on a line of its own, and a reason for
every lost point; no traceback frames (the message is the part a learner can act on).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from helpers.grade.steps import PASSED, Part

EXPLAIN = {  # by status prefix
    "not done": "the exercise still holds its stub, or a name it should define is missing",
    "check cell deleted": "restore the check cell from a fresh copy of the notebook",
    "wrote to stderr": "the check cell wrote to stderr, which a grader counts as a failure",
    "kernel died": "the kernel process ended (os._exit, a crash, or running out of memory)",
    "timed out": "the cell ran longer than its time limit: an endless loop, or waiting for "
                 "something that never came",
    "not run": "an earlier cell stopped the notebook, so this check could not run",
    "not a notebook": "the file could not be read as a Jupyter notebook: submit the .ipynb",
    "kernel did not start": "the grader could not start a kernel for this notebook (twice); "
                            "nothing in it ran: ask your instructor to grade it again",
}


def explain(status: str) -> str | None:
    """Why a status cost points, in a learner's words (None: the message says it)."""
    return next((why for prefix, why in EXPLAIN.items() if status.startswith(prefix)), None)


def _total(parts: Sequence[Part]) -> tuple[float, float]:
    return sum(p.points for p in parts), sum(p.max_points for p in parts)


def _points(value: float) -> str:
    return f"{value:g}"


def markdown(learner: str, notebook: str, parts: Sequence[Part]) -> str:
    got, best = _total(parts)
    lines = [f"# {notebook}: {_points(got)} / {_points(best)} points", "",
             f"Learner: {learner}", ""]
    for part in parts:
        mark = "✅" if part.status == PASSED else "❌"
        lines.append(f"## {mark} {part.grade_id}: {_points(part.points)} / "
                     f"{_points(part.max_points)} ({part.status})")
        if part.status != PASSED:
            lines.append("")
            why = explain(part.status)
            if why:
                lines.append(f"Why: {why}.")
                lines.append("")
            if part.message:
                lines += ["```text", part.message.rstrip(), "```"]
        lines.append("")
    return "\n".join(lines)


def page(learner: str, notebook: str, parts: Sequence[Part]) -> str:
    got, best = _total(parts)
    title = html.escape(f"{notebook}: {_points(got)} / {_points(best)} points")
    rows = []
    for part in parts:
        ok = part.status == PASSED
        why = explain(part.status)
        detail = "" if ok else "".join(
            [f"<p>Why: {html.escape(why)}.</p>" if why else "",
             f"<pre>{html.escape(part.message.rstrip())}</pre>" if part.message else ""])
        rows.append(
            f'<section class="{"pass" if ok else "fail"}"><h2>{"✅" if ok else "❌"} '
            f"{html.escape(part.grade_id)}: {_points(part.points)} / "
            f"{_points(part.max_points)} ({html.escape(part.status)})</h2>{detail}</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title><style>body{{font-family:sans-serif;max-width:50em;margin:2em"
        " auto}pre{white-space:pre-wrap;background:#f6f6f6;padding:.6em}.fail h2{color:#a00}"
        ".pass h2{color:#070}</style></head>\n"
        f"<body><h1>{title}</h1><p>Learner: {html.escape(learner)}</p>\n"
        + "\n".join(rows) + "\n</body></html>\n"
    )
