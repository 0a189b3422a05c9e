"""Deterministic views of a gateway's event log: a table and a sequence diagram.

Ids become stable labels (conn-1, req-1) through one `Redactor` per gateway, so a connection
keeps its label from cell to cell; times appear only on a virtual clock, where they are
exact (`T+10:00`), never on the real one, where they would differ on every run.
"""

from __future__ import annotations

from collections.abc import Iterable

from helpers.diagrams import SequenceDiagram
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
            # One row per printed line: a traceback keeps its "File ..., line N" lines.
            lines = [part for ln in d.get("logs") or ()
                     if not ln.startswith(("START", "END", "REPORT"))
                     for part in ln.splitlines()]
            line += "".join(f"\n    {_short(text(ln), 200)}" for ln in lines)
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


def sequence_diagram(
    entries: Iterable[Entry], *, redactor: Redactor, title: str | None = None
) -> SequenceDiagram:
    """Clients, API Gateway and the Lambda functions, as the event log saw them talk.

    Clients appear under their redactor labels (`conn-1`, or a name a lesson gave with
    `Redactor.name`), left of API Gateway; functions to its right. A push is drawn as what it
    is: a `post_to_connection` call to API Gateway, then the frame it sends. The caller is the
    function whose invocation is in flight (the latest one started), else the notebook's own
    code. Steps keep the log's order: a function's reply comes after the pushes it made.
    """
    entries = list(entries)
    diagram = SequenceDiagram(title=title)
    clients: dict[str, str] = {}
    functions: dict[str, str] = {}
    gateway = "gw"
    in_flight: list[str] = []  # functions started and not finished, oldest first
    starts_logged = any(e.kind == "call" for e in entries)

    def client(entry: Entry) -> str:
        if entry.connection_id not in clients:
            clients[entry.connection_id] = f"c{len(clients) + 1}"
            if entry.connection_id:  # labelled in order of appearance
                redactor.label(entry.connection_id, "conn")
        return clients[entry.connection_id]

    def function(name: str) -> str:
        if name not in functions:
            functions[name] = f"fn{len(functions) + 1}"
        return functions[name]

    def caller() -> str:
        return function(in_flight[-1]) if in_flight else "you"

    def quote(text: str) -> str:
        return _short(redactor.text(text), 50)

    def start(name: str, route: str) -> None:
        in_flight.append(name)
        diagram.arrow("call", gateway, function(name), f"{route} event")

    for e in entries:
        d = e.detail
        if e.kind == "connect":
            diagram.arrow("call", client(e), gateway, "connect (101 Switching Protocols)")
        elif e.kind == "reject":
            diagram.note(gateway, f"handshake refused: HTTP {d['status']}")
        elif e.kind == "message":
            diagram.arrow("call", client(e), gateway, quote(d["body"]))
            if d.get("function") and not starts_logged:
                start(d["function"], d["route"])
        elif e.kind == "call":
            client(e)
            start(d["function"], d["route"])
        elif e.kind == "invoke":
            if d["function"] in in_flight:
                in_flight.remove(d["function"])
            result = d.get("result")
            if d["outcome"] != "ok":
                diagram.arrow("fail", function(d["function"]), gateway, d["outcome"])
            elif isinstance(result, dict) and "statusCode" in result:
                diagram.arrow("reply", function(d["function"]), gateway,
                              f"returns statusCode {result['statusCode']}")
            else:
                diagram.arrow("reply", function(d["function"]), gateway, "returns")
        elif e.kind == "send":
            target = client(e)
            if d["via"] == "push":
                diagram.arrow("call", caller(), gateway,
                              f"post_to_connection({redactor.label(e.connection_id, 'conn')})")
                diagram.arrow("reply", gateway, target, f"{quote(d['body'])} (pushed)")
            else:
                diagram.arrow("reply", gateway, target, quote(d["body"]))
        elif e.kind == "manage":
            op = {"post": "post_to_connection", "get": "get_connection",
                  "delete": "delete_connection"}[d["op"]]
            who = caller()
            diagram.arrow("call", who, gateway,
                          f"{op}({redactor.label(e.connection_id, 'conn')})")
            diagram.arrow("fail" if d["status"] >= 400 else "reply", gateway, who,
                          {410: "410 GoneException"}.get(d["status"], str(d["status"])))
        elif e.kind == "close":
            diagram.arrow("fail", gateway, client(e), f"close {d['code']} ({d['by']})")
    # Left to right: clients, API Gateway, functions, then the notebook if it called.
    for connection_id, ident in clients.items():
        diagram.participant(ident, redactor.label(connection_id, "conn") if connection_id
                            else "a client")
    diagram.participant(gateway, "API Gateway")
    for name, ident in functions.items():
        diagram.participant(ident, f"λ {name}")
    if any("you" in (s.source, s.target) for s in diagram.steps):
        diagram.participant("you", "your code")
    return diagram
