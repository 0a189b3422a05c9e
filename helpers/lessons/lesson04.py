"""Lesson 04's checks: which route took a message, read from what the client got back.

The checks could ask the local gateway's event log, but a real account has none: these read
the answer itself, so they grade the same offline and on AWS (lesson 09). The lesson's ECHO
handler answers "handled by {routeKey}" on two-way routes; a message that no route takes gets
API Gateway's Forbidden frame (docs/aws-behaviour.md §2.3).
"""

from __future__ import annotations

import json

from helpers.client import Client

#: How the lesson's ECHO handler begins its answer: "handled by $default".
HANDLED_BY = "handled by "
#: Long enough for a cold start on AWS; a right or wrong answer arrives well before it.
ANSWER_TIMEOUT = 15.0


def is_forbidden(reply: str) -> bool:
    """Whether `reply` is API Gateway's frame for a message no route took (§2.3)."""
    try:
        frame = json.loads(reply)
    except ValueError:
        return False
    return (isinstance(frame, dict) and frame.get("message") == "Forbidden"
            and "connectionId" in frame)


def send_for_reply(client: Client, text: str, timeout: float = ANSWER_TIMEOUT) -> str | None:
    """Send `text` (two-way routes only): the answer, or None if no route took it."""
    client.send(text)
    reply = client.recv(timeout)
    return None if is_forbidden(reply) else reply


def send_for_route(client: Client, text: str, timeout: float = ANSWER_TIMEOUT) -> str | None:
    """The route key that took `text`, from ECHO's answer, or None if no route took it."""
    reply = send_for_reply(client, text, timeout)
    if reply is None:
        return None
    if not reply.startswith(HANDLED_BY):
        raise ValueError(f"{reply!r} is not an answer of the lesson's ECHO handler; run the "
                         "cell that defines the quiz's gateway again")
    return reply.removeprefix(HANDLED_BY)


__all__ = ["ANSWER_TIMEOUT", "HANDLED_BY", "is_forbidden", "send_for_reply", "send_for_route"]
