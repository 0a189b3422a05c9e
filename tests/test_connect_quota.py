"""The connect-rate quota (docs/aws-behaviour.md §5): a one-second sliding window on a clock."""

from __future__ import annotations

import pytest

from helpers.gateway.quota import ConnectQuota


def test_admits_up_to_the_quota_within_one_second_then_refuses() -> None:
    quota = ConnectQuota(3)
    assert [quota.admit(100.0 + i / 10) for i in range(5)] == [True, True, True, False, False]


def test_a_second_after_an_admission_its_place_is_free_again() -> None:
    quota = ConnectQuota(2)
    assert quota.admit(10.0) and quota.admit(10.5)
    assert not quota.admit(10.99)
    assert quota.admit(11.0)          # the first admission is a second old
    assert not quota.admit(11.25)     # 10.5 and 11.0 are still within the window
    assert quota.admit(11.5)


def test_refused_handshakes_do_not_use_up_the_quota() -> None:
    quota = ConnectQuota(1)
    assert quota.admit(0.0)
    assert not any(quota.admit(0.1 * i) for i in range(1, 10))
    assert quota.admit(1.0)


def test_a_quota_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectQuota(0)
