"""Lesson check helpers judge one part at a time and blame the right thing: a hung handler is
called hung (not "must return a body"), and a broken `$connect` costs only its own part."""

from __future__ import annotations

import pytest

from helpers.checks import CheckFailed, checking
from helpers.lessons.lesson03 import SORRY, STAND_IN, check_lifecycle_handlers

SLOW_DEFAULT = """
import time

def lambda_handler(event, context):
    time.sleep(4)
    return {"statusCode": 200, "body": "late"}
"""
BROKEN_CONNECT = "def lambda_handler(event, context):\n    return {'statusCode': 200}\n"
RIGHT_DEFAULT = f"def lambda_handler(event, context):\n    return {{'body': {SORRY!r}}}\n"


def test_a_hung_default_handler_is_called_hung(aws) -> None:
    with pytest.raises(CheckFailed, match="was still running 3 s after the message"):
        check_lifecycle_handlers(STAND_IN["$connect"], STAND_IN["$disconnect"], SLOW_DEFAULT,
                                 "default")


def test_a_broken_connect_costs_only_the_connect_part(aws) -> None:
    with pytest.raises(CheckFailed, match="the table is empty"):
        check_lifecycle_handlers(BROKEN_CONNECT, STAND_IN["$disconnect"], RIGHT_DEFAULT,
                                 "connect")
    check_lifecycle_handlers(BROKEN_CONNECT, STAND_IN["$disconnect"], RIGHT_DEFAULT, "default")


def test_the_stub_of_the_part_under_test_is_not_done_yet(aws) -> None:
    stub = "def lambda_handler(event, context):\n    raise NotImplementedError()\n"
    with pytest.raises(CheckFailed, match="exercise not done yet"), checking("$default", "ok"):
        check_lifecycle_handlers(BROKEN_CONNECT, STAND_IN["$disconnect"], stub, "default")
