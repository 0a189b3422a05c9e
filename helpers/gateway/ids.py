"""Ids and timestamps in the formats API Gateway puts into events and @connections answers.

Pure functions of their arguments (plus the OS random source for ids): the gateway passes in
its clock's time, so a `VirtualClock` yields events stamped with virtual time.
"""

from __future__ import annotations

import binascii
import os
import secrets
import string
import time
from collections.abc import Callable

_API_ID_ALPHABET = string.ascii_lowercase + string.digits
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def new_id() -> str:
    """A fresh connection/request/message id, e.g. ``"BFHPhFe3IAMF95g="``.

    AWS ids are 16 characters of URL-safe base64 ending in ``=`` (docs/aws-behaviour.md §3),
    which is exactly what 11 random bytes encode to. Connection ids are capabilities in the
    security lesson (§7), so they come from the OS random source, not `random`.
    """
    return _take(_ids, _make_ids)


def new_uuid() -> str:
    """A random (version 4) UUID string, like Lambda's request ids; cheaper than uuid4()."""
    return _take(_uuids, _make_uuids)


#: Ids are made 512 at a time from one read of the OS random source: each read is a system
#: call that hands the GIL away, and the gateway needs three ids per message.
_BATCH = 512


def _make_ids() -> list[str]:
    raw, encode = os.urandom(11 * _BATCH), binascii.b2a_base64
    encoded = b"".join(encode(raw[i:i + 11], newline=False) for i in range(0, len(raw), 11))
    text = encoded.translate(_URL_SAFE).decode("ascii")  # 16 characters per id
    return [text[i:i + 16] for i in range(0, len(text), 16)]


_URL_SAFE = bytes.maketrans(b"+/", b"-_")  # what urlsafe_b64encode does to b64encode's output


def _make_uuids() -> list[str]:
    text = os.urandom(16 * _BATCH).hex()
    return [f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
            for h in (text[i:i + 32] for i in range(0, len(text), 32))]


def _take(batch: list[str], make: Callable[[], list[str]]) -> str:
    """One id from `batch`, refilled when empty. No lock: `list.pop` and `list.extend` are
    atomic, so each id goes to one caller; two threads refilling at once only make more."""
    while True:
        try:
            return batch.pop()
        except IndexError:
            batch.extend(make())


_ids: list[str] = []  # made, not yet handed out
_uuids: list[str] = []


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
