"""Deterministic displays for the notebooks: tables and JSON with the random parts redacted.

nbval compares every stored output as text (nbval.readthedocs.io), so anything
shown must be identical on every run: connection, request and API ids, ports, trace ids and
timestamps are replaced here, at the source, by stable labels ("conn-1", "req-1", "api-1",
"PORT") and placeholders ("<requestTime>"). Each rich display has exactly one rich MIME type
(text/markdown) beside text/plain, and both are pure functions of the data.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Keys whose values are random ids, and the label prefix each gets (event and boto3 spellings).
ID_KINDS: dict[str, str] = {
    "connectionId": "conn", "ConnectionId": "conn",
    "requestId": "req", "extendedRequestId": "req", "RequestId": "req",
    "messageId": "msg",
    "apiId": "api", "ApiId": "api",
    "DeploymentId": "deployment", "IntegrationId": "integration", "RouteId": "route",
    "RouteResponseId": "route-response", "AuthorizerId": "authorizer",
}
# Keys whose values are times or per-request randomness: shown as "<key>".
PLACEHOLDER_KEYS = frozenset({
    "requestTime", "requestTimeEpoch", "connectedAt", "X-Amzn-Trace-Id", "Sec-WebSocket-Key",
    "ConnectedAt", "LastActiveAt", "CreatedDate", "LastUpdatedDate", "LastModified", "Date", "date",
})
_LOOPBACK_PORT = re.compile(r"\b(127\.0\.0\.1|localhost|\[::1\]):\d+")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_ID_KEYS = "|".join(map(re.escape, ID_KINDS))
_JSON_ID = re.compile(rf'"({_ID_KEYS})"\s*:\s*"([^"]+)"')


class Redactor:
    """Maps random values to stable labels, numbered per kind in order of first appearance.

    One Redactor per notebook (or per display) keeps labels consistent across cells: the
    connection shown as "conn-1" in one table is "conn-1" in the next event too.
    """

    def __init__(self) -> None:
        self._labels: dict[str, str] = {}
        self._counts: Counter[str] = Counter()

    def label(self, value: str, kind: str) -> str:
        """The stable label of `value`, e.g. "conn-2"; a value keeps its first label."""
        if value not in self._labels:
            self._counts[kind] += 1
            self._labels[value] = f"{kind}-{self._counts[kind]}"
        return self._labels[value]

    def name(self, value: str, label: str) -> str:
        """Show `value` as `label` from now on (e.g. a connection id as "alice")."""
        self._labels[value] = label
        return label

    def text(self, text: str) -> str:
        """Redact a string: ids seen so far or quoted as JSON ids, UUIDs, loopback ports."""
        for key, value in _JSON_ID.findall(text):
            self.label(value, ID_KINDS[key])
        for value in sorted(self._labels, key=len, reverse=True):  # longest first: no partials
            text = text.replace(value, self._labels[value])
        text = _UUID.sub(lambda m: self.label(m.group(0), "uuid"), text)
        return _LOOPBACK_PORT.sub(r"\1:PORT", text)

    def __call__(self, obj: Any) -> Any:
        """A redacted deep copy of JSON-like `obj` (dicts, lists, strings, numbers, datetimes)."""
        self._learn(obj)
        return self._redact(obj)

    def _learn(self, obj: Any) -> None:
        """Label every id-keyed value first, so an api id inside a Host header seen earlier
        than `apiId` is still replaced."""
        if isinstance(obj, Mapping):
            for key, value in obj.items():
                if key in ID_KINDS and isinstance(value, str):
                    self.label(value, ID_KINDS[key])
                self._learn(value)
        elif isinstance(obj, list | tuple):
            for item in obj:
                self._learn(item)
        elif isinstance(obj, str):
            for key, value in _JSON_ID.findall(obj):
                self.label(value, ID_KINDS[key])

    def _redact(self, obj: Any, key: str | None = None) -> Any:
        if key in PLACEHOLDER_KEYS:
            if isinstance(obj, list):
                return [f"<{key}>" for _ in obj]  # multiValueHeaders keep their shape
            return f"<{key}>"
        if isinstance(obj, Mapping):
            return {k: self._redact(v, k) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self._redact(item) for item in obj]
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dt.datetime | dt.date):
            return "<datetime>"
        return obj


def _redactor(redact: bool | Redactor | None) -> Redactor | None:
    if redact is True:
        return Redactor()
    return redact or None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


class Table:
    """Rows of dicts shown as a Markdown table in JupyterLab and as aligned text elsewhere."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                 title: str | None = None) -> None:
        self.columns = list(columns)
        self.rows = [[_cell(row.get(c)) for c in self.columns] for row in rows]
        self.title = title

    def __repr__(self) -> str:
        widths = [max([len(c), *(len(r[i]) for r in self.rows)])
                  for i, c in enumerate(self.columns)]
        lines = [self.title] if self.title else []
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in self.rows]
        if not self.rows:
            lines.append("(no rows)")
        return "\n".join(line.rstrip() for line in lines)

    def _repr_markdown_(self) -> str:
        def esc(text: str) -> str:
            text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            # Not "\$": the Markdown renderer drops the backslash and MathJax, run on the page
            # afterwards, still typesets "$route ... $route" as math. A tag around each "$"
            # ends MathJax's text run, so no two of them pair up.
            text = text.replace("$", "<span>&#36;</span>")
            text = text.replace("*", "\\*")  # else an ARN's "/*/*/" turns into italics
            return text.replace("|", "\\|").replace("\n", "<br>")

        lines = [f"**{esc(self.title)}**", ""] if self.title else []
        lines.append("| " + " | ".join(esc(c) for c in self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(esc(v) for v in r) + " |" for r in self.rows]
        if not self.rows:
            lines.append("| " + " | ".join(["*(no rows)*", *[""] * (len(self.columns) - 1)]) + " |")
        return "\n".join(lines)


def table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    title: str | None = None,
    *,
    redact: bool | Redactor | None = None,
) -> Table:
    """A deterministic table of `rows`; columns default to the keys in order of appearance.

    Pass `redact=` a notebook's Redactor (or True for a fresh one) to label ids in the cells.
    """
    redactor = _redactor(redact)
    rows = [dict(r) for r in rows]
    if redactor is not None:
        rows = redactor(rows)
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    return Table(rows, columns, title)


class JsonView:
    """Pretty JSON: a ```json fence in JupyterLab (highlighted), the bare JSON as plain text."""

    def __init__(self, obj: Any) -> None:
        self.text = json.dumps(obj, indent=2, ensure_ascii=False, default=str)

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return f"```json\n{self.text}\n```"


def json_view(
    obj: Any, redact: bool | Redactor | None = True, drop: Sequence[str] = ("ResponseMetadata",)
) -> JsonView:
    """JSON of `obj` with ids labelled, times as placeholders and top-level `drop` keys removed.

    boto3's ResponseMetadata is dropped by default: it is transport noise with dates and ids.
    """
    if isinstance(obj, Mapping):
        obj = {k: v for k, v in obj.items() if k not in drop}
    redactor = _redactor(redact)
    return JsonView(redactor(obj) if redactor is not None else obj)


def show_json(
    obj: Any, redact: bool | Redactor | None = True, drop: Sequence[str] = ("ResponseMetadata",)
) -> None:
    """Display `json_view(obj, redact, drop)`, e.g. a Lambda proxy event's anatomy."""
    from IPython.display import display

    display(json_view(obj, redact, drop))


class CodeView:
    """Source code: a fenced, highlighted block in JupyterLab, the bare code as plain text."""

    def __init__(self, text: str, language: str = "python") -> None:
        self.text, self.language = text.strip("\n"), language

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return f"```{self.language}\n{self.text}\n```"


def code_view(text: str, language: str = "python") -> CodeView:
    """Show source code (e.g. a handler read from its file) the way a notebook cell shows code."""
    return CodeView(text, language)
