"""moto's DynamoDB memory, kept bounded for a long-running gateway (filled in below)."""

from __future__ import annotations


def install() -> None:
    """Nothing yet."""
