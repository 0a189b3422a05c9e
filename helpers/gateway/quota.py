"""The connect-rate quota: how many new connections one second may open.

AWS admits 500 new connections per second per account and Region (docs/aws-behaviour.md §5)
and refuses the rest of the handshakes with 429 (§4.1). The quota reads the gateway's own
clock, so on a `VirtualClock` a lesson decides exactly which connections share a second.
"""

from __future__ import annotations

from collections import deque


class ConnectQuota:
    """At most `per_second` admitted handshakes in any one-second window (a sliding window).

    Only admitted connections count: a refused handshake opens nothing (the emulator's
    choice, docs/aws-behaviour.md §8).
    """

    def __init__(self, per_second: int) -> None:
        if per_second < 1:
            raise ValueError("per_second must be at least 1")
        self.per_second = per_second
        self._admitted: deque[float] = deque()  # times of the admissions in the last second

    def admit(self, now: float) -> bool:
        """Count a new connection at `now` (seconds) if the last second has room for it."""
        while self._admitted and now - self._admitted[0] >= 1.0:
            self._admitted.popleft()
        if len(self._admitted) >= self.per_second:
            return False
        self._admitted.append(now)
        return True

    def __repr__(self) -> str:
        return f"ConnectQuota({self.per_second} per second)"
