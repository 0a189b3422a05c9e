"""Lesson 07's conveniences: read the backend's handlers, show transcripts, drive the load test,
and the reconnect check's own room.

The backend itself is `helpers/lessons/capstone/backend/chat.py` (deployed by
`helpers.lessons.capstone.deploy_chat`); this module only helps the notebook look at it.
"""

from __future__ import annotations

import ast
import itertools
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from helpers.client import Client
from helpers.display import CodeView, Redactor, Table, code_view, table
from helpers.gateway import LocalGateway, VirtualClock
from helpers.lessons.capstone import BACKEND, deploy_chat
from helpers.lessons.real_aws import on_real_account
from helpers.lessons.real_stage import OfflineOnly

#: What a transcript shows of each message (the server's `time` would differ on every run).
COLUMNS = ["id", "type", "from", "to", "text", "nick", "members", "error"]


def handler_source(*names: str) -> CodeView:
    """The source of functions in backend/chat.py, read from the file the functions run from."""
    text = (BACKEND / "chat.py").read_text()
    found = {node.name: ast.get_source_segment(text, node) for node in ast.parse(text).body
             if isinstance(node, ast.FunctionDef)}
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"backend/chat.py defines no {missing}; it has {sorted(found)}")
    return code_view("\n\n\n".join(found[n] for n in names))


def transcript(messages: Iterable[str | dict], title: str | None = None) -> Table:
    """Messages (JSON text or dicts) as a table, in order, without the server's timestamps."""
    rows = [json.loads(m) if isinstance(m, str) else m for m in messages]
    used = [c for c in COLUMNS if any(c in row for row in rows)]
    return table(rows, used, title=title)


def wait_until(condition: Callable[[], object], timeout: float = 10.0,
               step: Callable[[], object] | None = None, what: str = "condition") -> None:
    """Call `step` (e.g. a client's poll) until `condition()` is true, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        if step is not None:
            step()
        time.sleep(0.01)


@dataclass
class LoadReport:
    """What `run_load` measured: one latency (ms) per delivered message."""

    members: int
    messages: int
    latencies_ms: list[float]

    @property
    def expected(self) -> int:
        return self.members * self.messages

    def summary(self) -> str:
        return (f"{self.members} members, {self.messages} broadcasts: "
                f"{len(self.latencies_ms)} of {self.expected} deliveries arrived")


def run_load(url: str, members: int = 30, messages: int = 10,
             timeout: float = 60.0) -> tuple[LoadReport, list[Client]]:
    """`members` clients join; `messages` of them broadcast once; time every delivery.

    Latency is from just before `send` to the recipient's reader thread receiving it, on
    this machine's monotonic clock. Returns the report and the clients (still open).
    """
    clients = [Client(f"{url}?nick=load{i:02d}", name=f"load{i:02d}") for i in range(members)]
    # Member i hears the joins of everyone after it: wait for them, so they are not counted.
    wait_until(lambda: all(len(c.messages) >= members - 1 - i for i, c in enumerate(clients)),
               timeout, what="every join notice")
    before = [len(c.messages) for c in clients]
    sent_at = {}
    for n in range(messages):
        sender = clients[n * members // messages]
        text = f"load message {n}"
        sent_at[text] = time.perf_counter()
        sender.send_json({"action": "sendmessage", "text": text})
    wait_until(lambda: all(len(c.messages) >= b + messages for c, b in zip(clients, before,
                                                                            strict=True)),
               timeout, what="every delivery")
    latencies = []
    for client, start in zip(clients, before, strict=True):
        for text, arrived in zip(client.messages[start:], client.received_at[start:],
                                 strict=True):
            message = json.loads(text)
            if message.get("text") in sent_at:
                latencies.append((arrived - sent_at[message["text"]]) * 1000)
    return LoadReport(members, messages, latencies), clients


class ReconnectRoom:
    """The reconnect check's own chat room: a fresh chat API, gateway and virtual clock.

    The check cell imports it rather than using the notebook's gateway, clock and
    `wait_until`: an answer cell that redefines those (a `wait_until` that digs erin out of
    its condition and fills in what the check looks for, say) changes nothing here.
    """

    _runs = itertools.count(1)

    def __init__(self) -> None:
        if on_real_account():  # before deploying anything: the cut needs a virtual clock
            raise OfflineOnly(
                "the reconnect check moves a virtual clock 2 hours on; on AWS the cut comes "
                "after 2 real hours (docs/aws-behaviour.md §5)",
                note="erin's 2-hour cut runs on a virtual clock; on AWS it comes after 2 real "
                     "hours (docs/aws-behaviour.md §5): keep lesson 09's chat page open that "
                     "long to watch a reconnect")
        self.clock, self.redactor = VirtualClock(), Redactor()
        chat = deploy_chat(f"reconnect-check-{next(self._runs)}")
        self.gateway = LocalGateway.from_api(chat.api_id, chat.stage, redactor=self.redactor,
                                             clock=self.clock).start()
        self.clients: list[Client] = []
        self.start = self.clock.time()

    def __enter__(self) -> ReconnectRoom:
        return self

    def live_through_the_cut(self, chat_class: type) -> object:
        """erin (a `chat_class`) heartbeats until the 2-hour cut; frank posts twice while she
        is away and once after she is back. Returns erin, for the check to look at."""
        erin = chat_class(self.gateway.url, "erin", sleep=lambda s: None,
                          rng=random.Random(42)).start()
        self.clients.append(erin.conn)
        first = self.gateway.connections[-1]
        while first in self.gateway.connections:          # heartbeats every 5 virtual minutes
            self.clock.advance(minutes=5)
            if first in self.gateway.connections:
                answers = len(erin.conn.messages)
                erin.heartbeat()
                wait_until(lambda answers=answers: len(erin.conn.messages) > answers,
                           what="the heartbeat's answer")
                erin.poll()
        erin.conn.wait_closed(timeout=5)
        frank = Client(self.gateway.url + "?nick=frank", name="frank")
        self.clients.append(frank)
        for n, text in enumerate(("erin, while you were away", "one more"), start=1):
            frank.send_json({"action": "sendmessage", "text": text})
            frank.wait_for(n)   # his echo: stored, so the two keep this order
        wait_until(lambda: erin.reconnects
                   and sum(m.get("from") == "frank" for m in erin.messages) == 2,
                   step=erin.poll, what="erin back with frank's two messages")
        self.clients.append(erin.conn)
        frank.send_json({"action": "sendmessage", "text": "welcome back"})
        wait_until(lambda: any(m.get("text") == "welcome back" for m in erin.messages),
                   step=erin.poll, what="the live message after the reconnect")
        return erin

    def connections(self, nick: str) -> Table:
        """`nick`'s connections as the gateway saw them: opened, closed, close code."""
        rows = []
        for entry in self.gateway.log.entries("connect"):
            if entry["query"].get("nick") != nick:
                continue
            cid = entry.connection_id
            closed = self.gateway.log.entries("close", connection_id=cid)
            rows.append({
                "connection": self.redactor.label(cid, "conn"),
                "opened": f"T+{(entry.time - self.start) / 3600:.2f} h",
                "closed": f"T+{(closed[0].time - self.start) / 3600:.2f} h" if closed else "(open)",
                "code": f"{closed[0]['code']} {closed[0]['reason']}" if closed else ""})
        return table(rows, title=f"{nick}'s connections, as the gateway saw them")

    def __exit__(self, *exc: object) -> None:
        for client in self.clients:
            client.close()
        self.gateway.stop()
