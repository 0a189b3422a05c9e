"""Lesson 05's graded checks: the learner's `sendmessage` handler in a room of real clients.

`ExerciseRoom` deploys the handler with the lesson's `$connect` / `$disconnect` on a fresh API
and gateway, connects clients by nickname (`?name=ann`) after emptying the `connections`
table, and can plant stale ids. The check cells send messages and assert what arrives.

On a real account (lesson 09) the same checks grade: the clients are real, and whether the
handler failed comes from CloudWatch Logs (the runtime's `[ERROR]` or "Task timed out" line),
which shows a run some seconds after it ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import boto3

from helpers.aws import deploy_websocket_api
from helpers.checks import check
from helpers.client import Client
from helpers.gateway import LocalGateway, VirtualClock
from helpers.lessons.real_stage import LOG_DELAY, RealStage

#: How long the gateway's record takes to show a finished run, at most: locally it is there
#: as the run ends; CloudWatch Logs shows it seconds later.
LOCAL_WAIT = 10.0

_runs = itertools.count(1)


class ExerciseRoom:
    """A fresh API running `sendmessage_source`, with one client per name in `names`."""

    def __init__(self, sendmessage_source: str, connect: str, disconnect: str,
                 names: Sequence[str] = ("ann", "ben", "cat"),
                 stale: Sequence[str] = ()) -> None:
        if "raise NotImplementedError()" in sendmessage_source:
            raise NotImplementedError()  # the stub: `checking` says "not done yet"
        self.table = boto3.resource("dynamodb").Table("connections")
        for row in self.table.scan()["Items"]:  # start from an empty table
            self.table.delete_item(Key={"connectionId": row["connectionId"]})
        api = deploy_websocket_api(f"lesson05-check-{next(_runs)}", {
            "$connect": connect, "$disconnect": disconnect, "sendmessage": sendmessage_source})
        self.gateway = LocalGateway.from_api(api.api_id, api.stage, clock=VirtualClock()).start()
        self.clients = [Client(self.gateway.url + f"?name={n}", name=n) for n in names]
        for number, connection_id in enumerate(stale):
            self.table.put_item(Item={"connectionId": connection_id,
                                      "nickname": f"stale{number}"})
        self.sent = 0

    def __enter__(self) -> ExerciseRoom:
        return self

    def send(self, sender: Client, message: dict) -> str | None:
        """Send one sendmessage; the handler's error once it has run (None if it succeeded)."""
        sender.send_json({"action": "sendmessage", **message})
        self.sent += 1
        real = isinstance(self.gateway, RealStage)
        wait = max(LOCAL_WAIT, LOG_DELAY) if real else LOCAL_WAIT
        try:
            entries = self.gateway.log.wait_for_invocations("sendmessage", self.sent,
                                                            timeout=wait)
        except TimeoutError:
            what = ("CloudWatch Logs showed no end of your sendmessage handler's run" if real
                    else "your sendmessage handler was still running")
            check(False, f"{what} {wait:.0f} s after the message",
                  hint="is it waiting for something? each post_to_connection returns at once")
        entry = entries[self.sent - 1]
        if real:  # CloudWatch: the [ERROR] line, "function-timeout", or None
            return entry["error"]
        return str(entry["error"]).splitlines()[-1] if entry["outcome"] != "ok" else None

    def id_of(self, name: str) -> str:
        return next(r["connectionId"] for r in self.table.scan()["Items"]
                    if r["nickname"] == name)

    def nicknames(self) -> list[str]:
        return sorted(r["nickname"] for r in self.table.scan()["Items"])

    def __exit__(self, *exc: object) -> None:
        for client in self.clients:
            client.close()
        self.gateway.stop()
