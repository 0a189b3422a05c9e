"""Ids and timestamps in the formats API Gateway puts into events and @connections answers.

Pure functions of their arguments (plus the OS random source for ids): the gateway passes in
its clock's time, so a `VirtualClock` yields events stamped with virtual time.
"""

from __future__ import annotations

import base64
import os
import secrets
import string
import threading
import time

_API_ID_ALPHABET = string.ascii_lowercase + string.digits
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def new_id() -> str:
    """A fresh connection/request/message id, e.g. ``"BFHPhFe3IAMF95g="``.

    AWS ids are 16 characters of URL-safe base64 ending in ``=`` (docs/aws-behaviour.md §3),
    which is exactly what 11 random bytes encode to. Connection ids are capabilities in the
    security lesson (§7), so they come from the OS random source, not `random`, read in
    batches.
    """
    return base64.urlsafe_b64encode(random_bytes(11)).decode("ascii")


def new_uuid() -> str:
    """A random (version 4) UUID string, like Lambda's request ids; cheaper than uuid4()."""
    h = random_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def random_bytes(count: int) -> bytes:
    """`count` bytes from the OS random source, read in batches: one system call per ~5 KB,
    since each call hands the GIL away (a thread switch on the per-message path)."""
    with _random_lock:
        if len(_random) < count:
            _random.extend(os.urandom(max(count, 11 * 512)))
        raw = bytes(_random[:count])
        del _random[:count]
    return raw


_random = bytearray()  # bytes from the OS random source, not yet used
_random_lock = threading.Lock()


def new_api_id() -> str:
    """An API id like AWS's: 10 lowercase alphanumerics, e.g. ``"fjnq7njcv2"``
    (docs/aws-behaviour.md §1.1)."""
    return "".join(secrets.choice(_API_ID_ALPHABET) for _ in range(10))


def new_trace_id(epoch_seconds: float) -> str:
    """An ``X-Amzn-Trace-Id`` value, ``Root=1-<8 hex epoch seconds>-<24 hex>``
    (docs/aws-behaviour.md §3.1)."""
    return f"Root=1-{int(epoch_seconds):08x}-{os.urandom(12).hex()}"


def epoch_ms(epoch_seconds: float) -> int:
    """``requestTimeEpoch`` / ``connectedAt``: integer epoch ms (docs/aws-behaviour.md §3).

    Rounded rather than truncated so that ``1731324924.553`` gives ``1731324924553`` despite
    binary floating point; `request_time` and `iso8601` derive from this value so all three
    formats of one instant agree.
    """
    return round(epoch_seconds * 1000)


def request_time(epoch_seconds: float) -> str:
    """``requestTime`` in CLF format ``dd/MMM/yyyy:HH:mm:ss +0000`` (docs/aws-behaviour.md §3).

    Month names are always English: `time.strftime("%b")` would follow the locale. The text
    of the current second is kept, since every message of that second asks for it again.
    """
    second = epoch_ms(epoch_seconds) // 1000
    cached = _last_request_time
    if cached[0] == second:
        return cached[1]
    t = time.gmtime(second)
    text = (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    globals()["_last_request_time"] = (second, text)  # one tuple: safe across threads
    return text


_last_request_time: tuple[int, str] = (-1, "")


def iso8601(epoch_seconds: float) -> str:
    """A GetConnection timestamp, e.g. ``"2020-04-30T20:10:33.236Z"``
    (docs/aws-behaviour.md §6)."""
    seconds, millis = divmod(epoch_ms(epoch_seconds), 1000)
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"
    )


def stable_api_id(seed: str) -> str:
    """A 10-character API id derived from `seed`: the same handlers get the same id."""
    import hashlib

    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_API_ID_ALPHABET[b % len(_API_ID_ALPHABET)] for b in digest[:10])
