"""`python -m benchmarks.gateway_bench --quick` runs end to end and reports every metric.

Speed is not asserted (machines differ); only that each measurement ran and was printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

METRIC_LINES = (
    "boto3 floor",
    "memory per idle conn",
    "echo round trip",
    "throughput",
    "push latency",
    "connect time",
    "connect rate",
    "chat load",
    "fan-out",
    "dynamodb scan (moto)",
)


@pytest.mark.timeout(120)
def test_quick_benchmark_prints_every_metric() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.gateway_bench", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for label in METRIC_LINES:
        assert any(line.startswith(label) for line in lines), f"no {label!r} line:\n{result.stdout}"
    assert "Traceback" not in result.stderr
    assert "internal errors" not in result.stdout
    table = result.stdout.split("metric ", 1)[-1]
    assert table.count("PASS") + table.count("MISS") >= 5  # one verdict per target
