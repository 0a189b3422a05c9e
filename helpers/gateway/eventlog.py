"""What happened on a gateway, kept for an explicit display call.

Background threads never print (their output lands in random notebook cells and breaks
nbval), so the gateway records connections, invocations with their logs, frames in and out,
and closes here; a cell shows them with `gateway.log.show()` or turns them into a Mermaid
sequence diagram. Bounded, so a benchmark's million messages cannot exhaust memory.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any


class Entry:
    """One recorded event; `entry["route"]` reads its details. (A slotted class: the gateway
    records several per message, so construction must be cheap.)"""

    __slots__ = ("connection_id", "detail", "kind", "seq", "time")

    def __init__(self, seq: int, time: float, kind: str, connection_id: str,
                 detail: dict[str, Any]):
        self.seq, self.time, self.kind = seq, time, kind  # time: the gateway clock's
        self.connection_id, self.detail = connection_id, detail

    def __getitem__(self, key: str) -> Any:
        return self.detail[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.detail.get(key, default)

    def __repr__(self) -> str:
        return f"Entry({self.seq}, {self.kind!r}, {self.connection_id!r}, {self.detail!r})"


class EventLog:
    """A thread-safe, bounded record of a gateway's events."""

    def __init__(self, maxlen: int = 20_000):
        self._entries: deque[Entry] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiting = 0  # threads in wait_for: only then is a notify worth its cost

    def record(self, time: float, kind: str, connection_id: str, **detail: Any) -> None:
        self.add(time, kind, connection_id, detail)

    def add(self, time: float, kind: str, connection_id: str, detail: dict[str, Any]) -> None:
        """`record` with the details as a dict, which the log keeps (no copy)."""
        # next() on a count and deque.append are atomic: no lock unless someone waits.
        self._entries.append(Entry(next(self._seq), time, kind, connection_id, detail))
        if self._waiting:
            with self._lock:
                self._changed.notify_all()

    def __iter__(self) -> Iterator[Entry]:
        with self._lock:
            return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def entries(self, *kinds: str, connection_id: str | None = None) -> list[Entry]:
        return [
            e for e in self
            if (not kinds or e.kind in kinds)
            and (connection_id is None or e.connection_id == connection_id)
        ]

    def invocations(self, route: str | None = None) -> list[Entry]:
        return [e for e in self.entries("invoke") if route is None or e["route"] == route]

    def wait_for(self, predicate, timeout: float = 5.0) -> list[Entry]:
        """Block until `predicate(entries)` is true; returns the entries. For cells and tests.

        Raises TimeoutError naming what was awaited, so a cell never hangs silently.
        """
        with self._changed:
            self._waiting += 1
            try:
                ok = self._changed.wait_for(lambda: predicate(list(self._entries)), timeout)
            finally:
                self._waiting -= 1
            if not ok:
                raise TimeoutError(
                    f"The gateway's event log did not reach the expected state within "
                    f"{timeout} s ({len(self._entries)} entries so far)."
                )
            return list(self._entries)

    def wait_for_invocations(self, route: str, count: int = 1, timeout: float = 5.0) -> list[Entry]:
        """Block until `route` has been invoked (and finished) `count` times."""
        self.wait_for(
            lambda es: sum(1 for e in es if e.kind == "invoke" and e["route"] == route) >= count,
            timeout,
        )
        return self.invocations(route)
