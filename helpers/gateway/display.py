"""Deterministic views of a gateway's event log: a table and a Mermaid sequence diagram.

Ids become stable labels (conn-1, req-1) through one `Redactor` per gateway, so a connection
keeps its label from cell to cell; times appear only on a virtual clock, where they are
exact (`T+10:00`), never on the real one, where they would differ on every run.
"""

from __future__ import annotations

from collections.abc import Iterable

from helpers.display import Redactor, Table, table
from helpers.gateway.eventlog import Entry


def _short(text: str, limit: int = 80) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail(entry: Entry, redactor: Redactor, logs: bool) -> str:
    d, text = entry.detail, redactor.text
    if entry.kind == "connect":
        return "connected (101 Switching Protocols)"
    if entry.kind == "reject":
        return f"handshake refused: HTTP {d['status']}"
    if entry.kind == "message":
        route = d["route"] if d["route"] is not None else "no route (no $default)"
        return f"in {_short(text(d['body']), 60)!r} -> {route}"
    if entry.kind == "invoke":
        line = f"{d['function']} for {d['route']}: {d['outcome']}"
        if d.get("error") and d["outcome"] == "error":
            line += f" ({_short(d['error'], 60)})"
        if logs:
            lines = [ln for ln in d.get("logs") or () if not ln.startswith(("START", "END",
                                                                             "REPORT"))]
            line += "".join(f"\n    {_short(text(ln), 100)}" for ln in lines)
        return line
    if entry.kind == "send":
        return f"out ({d['via']}) {_short(text(d['body']), 70)!r}"
    if entry.kind == "close":
        reason = f" {d['reason']!r}" if d["reason"] else ""
        return f"closed by {d['by']}: {d['code']}{reason}"
    if entry.kind == "manage":
        return f"@connections {d['op'].upper()} -> {d['status']}"
    if entry.kind == "drop":
        return f"dropped ({d['via']}) {_short(text(d['body']), 60)!r}: the client had left"
    return str(d)


def _clock_label(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"T+{hours}:{minutes:02d}:{secs:02d}" if hours else f"T+{minutes:02d}:{secs:02d}"


def event_table(
    entries: Iterable[Entry],
    *,
    redactor: Redactor,
    origin: float | None = None,
    logs: bool = False,
    title: str | None = None,
) -> Table:
    """One row per event; `origin` (virtual clocks only) adds exact `T+mm:ss` times."""
    rows = []
    for entry in entries:
        row = {}
        if origin is not None:
            row["time"] = _clock_label(entry.time - origin)
        row["connection"] = redactor.label(entry.connection_id, "conn") if entry.connection_id \
            else "(handshake)"
        row["event"] = entry.kind
        row["detail"] = _detail(entry, redactor, logs)
        rows.append(row)
    columns = (["time"] if origin is not None else []) + ["connection", "event", "detail"]
    return table(rows, columns, title)


class Mermaid:
    """A Mermaid diagram: rendered by JupyterLab >= 4.1 from a ```mermaid fence."""

    def __init__(self, source: str):
        self.source = source

    def __repr__(self) -> str:
        return self.source

    def _repr_markdown_(self) -> str:
        return f"```mermaid\n{self.source}\n```"


def sequence_diagram(
    entries: Iterable[Entry], *, redactor: Redactor, title: str | None = None
) -> Mermaid:
    """Clients, the gateway and the Lambda functions, as the event log saw them talk."""
    lines = ["sequenceDiagram"]
    if title:
        lines.insert(0, f"---\ntitle: {title}\n---")
    participants: list[str] = []
    body: list[str] = []

    def who(entry: Entry) -> str:
        label = redactor.label(entry.connection_id, "conn")
        name = "client " + label.split("-")[-1]
        if name not in participants:
            participants.append(name)
        return name.replace(" ", "_")

    def fn(name: str) -> str:
        if f"λ {name}" not in participants:
            participants.append(f"λ {name}")
        return "fn_" + name.replace("-", "_").replace(".", "_")

    def quote(text: str) -> str:
        return _short(redactor.text(text), 50).replace(";", ",").replace("#", "")

    for e in entries:
        d = e.detail
        if e.kind == "connect":
            body.append(f"    {who(e)}->>gateway: connect (101)")
        elif e.kind == "message":
            body.append(f"    {who(e)}->>gateway: {quote(d['body'])}")
            if d.get("function"):  # the message's call starts now: pushes it makes follow
                body.append(f"    gateway->>{fn(d['function'])}: {d['route']} event")
        elif e.kind == "call":  # when the Lambda starts: pushes it makes then follow in order
            who(e)
            body.append(f"    gateway->>{fn(d['function'])}: {d['route']} event")
        elif e.kind == "invoke" and d["outcome"] != "ok":
            body.append(f"    {fn(d['function'])}--x gateway: {d['outcome']}")
        elif e.kind == "send" and d["via"] == "push":
            body.append(f"    gateway-->>{who(e)}: {quote(d['body'])} (pushed)")
        elif e.kind == "send":
            body.append(f"    gateway-->>{who(e)}: {quote(d['body'])}")
        elif e.kind == "manage":
            body.append(f"    Note over gateway: @connections {d['op'].upper()} {d['status']}")
        elif e.kind == "close":
            body.append(f"    gateway--x{who(e)}: close {d['code']} ({d['by']})")
    lines.append("    participant gateway as API Gateway")
    for name in participants:
        ident = name.replace(" ", "_") if name.startswith("client") else (
            "fn_" + name[2:].replace("-", "_").replace(".", "_"))
        lines.append(f"    participant {ident} as {name}")
    return Mermaid("\n".join(lines + body))
