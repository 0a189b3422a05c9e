"""The benchmark's table of open connections, shared by every execution environment.

Concurrent invocations run in separate execution environments with their own module
globals (docs/aws-behaviour.md §4.3a), so a module-level set in the handler would only see
the connections its own environment handled. On AWS this would be a DynamoDB table; here it
is an in-memory set, so the fan-out measures the gateway, not moto's scan (which the
benchmark reports on its own line).
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_connected: set[str] = set()


def add(connection_id: str) -> None:
    with _lock:
        _connected.add(connection_id)


def discard(connection_id: str) -> None:
    with _lock:
        _connected.discard(connection_id)


def snapshot() -> list[str]:
    with _lock:
        return list(_connected)
