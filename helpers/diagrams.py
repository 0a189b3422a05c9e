"""Diagrams that render everywhere: Mermaid for JupyterLab, the same picture as plain SVG.

JupyterLab (>= 4.1) draws Mermaid itself, but an HTML export loads Mermaid from a CDN and shows
nothing offline, and a Markdown fence is all other viewers see. So a diagram here is a small
model (participants and messages, or boxes and arrows) written out twice by pure functions:
Mermaid source, and an SVG drawn in Python. Its display bundle holds both: JupyterLab prefers
`text/vnd.mermaid` (its Mermaid renderer ranks before SVG), nbconvert's HTML and other viewers
prefer `image/svg+xml`, and `text/plain` keeps the source for nbval and terminals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from itertools import pairwise

FONT = "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"13\""
CHAR_WIDTH = 7.2  # an upper estimate of the average glyph width at 13 px: labels never overflow
STYLES = {"call": ("solid", "arrow"), "reply": ("dashed", "arrow"), "fail": ("dashed", "cross")}
MERMAID_ARROWS = {"call": "->>", "reply": "-->>", "fail": "--x"}


def text_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def mermaid_text(text: str) -> str:
    """A message label Mermaid accepts: no statement separators or entity markers, one line."""
    return " ".join(text.replace(";", ",").replace("#", "").split())


class Diagram:
    """A display object: Mermaid in JupyterLab, SVG in exports, the source as plain text."""

    def mermaid(self) -> str:
        raise NotImplementedError

    def svg(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.mermaid()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        source = self.mermaid()
        return {"text/vnd.mermaid": source, "image/svg+xml": self.svg(), "text/plain": source}


# Sequence diagrams ----------------------------------------------------------------------


@dataclass
class Step:
    """One arrow (`kind` call, reply or fail) from `source` to `target`, or a note over
    `source` (kind "note")."""

    kind: str
    source: str
    target: str
    text: str


@dataclass(repr=False)
class SequenceDiagram(Diagram):
    """Participants left to right (id -> label) and the steps between them, top to bottom."""

    participants: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    title: str | None = None

    def participant(self, ident: str, label: str) -> str:
        self.participants.setdefault(ident, label)
        return ident

    def arrow(self, kind: str, source: str, target: str, text: str) -> None:
        self.steps.append(Step(kind, source, target, text))

    def note(self, over: str, text: str) -> None:
        self.steps.append(Step("note", over, over, text))

    def mermaid(self) -> str:
        lines = ["sequenceDiagram"]
        if self.title:  # a statement, not YAML front matter: a colon in it is fine
            lines.append(f"    title {mermaid_text(self.title)}")
        lines += [f"    participant {i} as {mermaid_text(label)}"
                  for i, label in self.participants.items()]
        for s in self.steps:
            if s.kind == "note":
                lines.append(f"    Note over {s.source}: {mermaid_text(s.text)}")
            else:
                lines.append(f"    {s.source}{MERMAID_ARROWS[s.kind]}{s.target}: "
                             f"{mermaid_text(s.text)}")
        return "\n".join(lines)

    def svg(self) -> str:
        ids = list(self.participants)
        box = {i: max(110.0, text_width(self.participants[i]) + 24) for i in ids}
        # Space between neighbouring lifelines: enough for the widest label that spans it.
        gaps = [max((box[a] + box[b]) / 2 + 20, 60.0) for a, b in pairwise(ids)]
        for s in self.steps:
            if s.kind == "note" or s.source == s.target:
                continue
            lo, hi = sorted((ids.index(s.source), ids.index(s.target)))
            missing = text_width(s.text) + 30 - sum(gaps[lo:hi])
            if missing > 0:
                gaps[hi - 1] += missing
        xs = [box[ids[0]] / 2 + 10]
        for gap in gaps:
            xs.append(xs[-1] + gap)
        x = dict(zip(ids, xs, strict=True))
        width = xs[-1] + box[ids[-1]] / 2 + 10
        for s in self.steps:  # notes may be wider than their participant's column
            if s.kind == "note":
                width = max(width, x[s.source] + text_width(s.text) / 2 + 20)
        top = 34 if self.title else 8
        row, head = 34, 32
        height = top + head + 20 + row * len(self.steps) + 10
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
               f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" {FONT}>',
               '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" '
               'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
               '<path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>',
               f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>']
        if self.title:
            out.append(f'<text x="{width / 2:.0f}" y="22" text-anchor="middle" '
                       f'font-weight="bold">{escape(self.title)}</text>')
        bottom = height - 6
        for i in ids:
            out.append(f'<line x1="{x[i]:.0f}" y1="{top + head}" x2="{x[i]:.0f}" y2="{bottom}" '
                       'stroke="#999" stroke-dasharray="3,3"/>')
            out.append(f'<rect x="{x[i] - box[i] / 2:.0f}" y="{top}" width="{box[i]:.0f}" '
                       f'height="{head}" rx="4" fill="#eaeaff" stroke="#9370db"/>')
            out.append(f'<text x="{x[i]:.0f}" y="{top + 21}" text-anchor="middle">'
                       f'{escape(self.participants[i])}</text>')
        y = top + head + 20
        for s in self.steps:
            y += row
            if s.kind == "note":
                w = text_width(s.text) + 16
                out.append(f'<rect x="{x[s.source] - w / 2:.0f}" y="{y - 22}" width="{w:.0f}" '
                           'height="24" fill="#fff5ad" stroke="#aaaa33"/>')
                out.append(f'<text x="{x[s.source]:.0f}" y="{y - 6}" text-anchor="middle">'
                           f'{escape(s.text)}</text>')
                continue
            line, end = STYLES[s.kind]
            x1, x2 = x[s.source], x[s.target]
            dash = ' stroke-dasharray="6,4"' if line == "dashed" else ""
            head_ = ' marker-end="url(#head)"' if end == "arrow" else ""
            out.append(f'<line x1="{x1:.0f}" y1="{y}" x2="{x2:.0f}" y2="{y}" stroke="#333"'
                       f'{dash}{head_}/>')
            if end == "cross":
                out.append(f'<path d="M{x2 - 5:.0f},{y - 5} l10,10 m0,-10 l-10,10" '
                           'stroke="#333" stroke-width="2"/>')
            out.append(f'<text x="{(x1 + x2) / 2:.0f}" y="{y - 6}" text-anchor="middle">'
                       f'{escape(s.text)}</text>')
        out.append("</svg>")
        return "\n".join(out)


# Flowcharts: rows of boxes joined by labelled arrows -----------------------------------------


@dataclass(repr=False)
class Flowchart(Diagram):
    """Boxes in rows, left to right (a row: box labels), and labelled arrows between boxes.

    Enough for an architecture picture or an API's parts; each box is named by its label.
    """

    rows: list[list[str]]
    edges: list[tuple[str, str, str]]  # (from label, to label, arrow text)
    title: str | None = None

    def _ids(self) -> dict[str, str]:
        return {label: f"n{i}" for i, label in enumerate(b for row in self.rows for b in row)}

    def mermaid(self) -> str:
        ids = self._ids()
        lines = ["flowchart LR"]
        if self.title:
            lines.insert(0, f"---\ntitle: \"{self.title}\"\n---")
        lines += [f'    {ids[b]}["{b}"]' for row in self.rows for b in row]
        lines += [f"    {ids[a]} -->|{mermaid_text(t)}| {ids[b]}" if t else
                  f"    {ids[a]} --> {ids[b]}" for a, b, t in self.edges]
        return "\n".join(lines)

    def svg(self) -> str:
        box_w = max(text_width(b) for row in self.rows for b in row) + 28
        gap = max([text_width(t) + 30 for _, _, t in self.edges] + [70])
        box_h, row_gap = 40, 50
        top = 34 if self.title else 10
        where: dict[str, tuple[float, float]] = {}
        for r, row in enumerate(self.rows):
            for c, label in enumerate(row):
                where[label] = (10 + c * (box_w + gap), top + r * (box_h + row_gap))
        width = 20 + max(len(row) for row in self.rows) * (box_w + gap) - gap
        height = top + len(self.rows) * (box_h + row_gap) - row_gap + 10
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
               f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" {FONT}>',
               '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" '
               'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
               '<path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>',
               f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>']
        if self.title:
            out.append(f'<text x="{width / 2:.0f}" y="22" text-anchor="middle" '
                       f'font-weight="bold">{escape(self.title)}</text>')
        for label, (bx, by) in where.items():
            out.append(f'<rect x="{bx:.0f}" y="{by:.0f}" width="{box_w:.0f}" height="{box_h}" '
                       'rx="4" fill="#eaeaff" stroke="#9370db"/>')
            out.append(f'<text x="{bx + box_w / 2:.0f}" y="{by + 25:.0f}" '
                       f'text-anchor="middle">{escape(label)}</text>')
        for a, b, text in self.edges:
            (ax, ay), (bx, by) = where[a], where[b]
            if ay == by:  # same row: side to side
                x1, x2 = (ax + box_w, bx) if ax < bx else (ax, bx + box_w)
                y1 = y2 = ay + box_h / 2
            else:  # between rows: bottom to top
                x1, x2 = ax + box_w / 2, bx + box_w / 2
                y1, y2 = (ay + box_h, by) if ay < by else (ay, by + box_h)
            out.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
                       'stroke="#333" marker-end="url(#head)"/>')
            if text:
                out.append(f'<text x="{(x1 + x2) / 2 + (6 if x1 == x2 else 0):.0f}" '
                           f'y="{(y1 + y2) / 2 - 6:.0f}" '
                           f'text-anchor="{"start" if x1 == x2 else "middle"}">'
                           f'{escape(text)}</text>')
        out.append("</svg>")
        return "\n".join(out)
