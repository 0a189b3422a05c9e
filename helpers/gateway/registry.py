"""Which local gateway serves which API stage, for the `@connections` interception.

Handler code written for AWS builds its management client from `requestContext.domainName`
and `stage`. `interception` looks the (api id, stage) pair up here to answer such calls from
the running `LocalGateway` instead of the network. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol


class ManagementTarget(Protocol):
    """A running gateway, as `interception` uses it."""

    def handle_management(
        self, method: str, connection_id: str, body: bytes, *, url: str = "",
        headers: Mapping[str, Any] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one @connections call (POST/GET/DELETE): status, headers, body. `url` and
        `headers` (botocore's, values str or bytes) are the request's: its signature says
        who is calling.

        Thread-safe; must not be called from the gateway's own event loop thread.
        """
        ...


_lock = threading.Lock()
_targets: dict[tuple[str, str], ManagementTarget] = {}
_domains: dict[str, ManagementTarget] = {}  # custom domain names of running gateways


def register(api_id: str, stage: str, target: ManagementTarget) -> None:
    with _lock:
        _targets[(api_id, stage)] = target


def unregister(api_id: str, stage: str, target: ManagementTarget) -> None:
    with _lock:
        if _targets.get((api_id, stage)) is target:
            del _targets[(api_id, stage)]


def register_domain(domain: str, target: ManagementTarget) -> None:
    with _lock:
        _domains[domain.lower()] = target


def unregister_domain(domain: str, target: ManagementTarget) -> None:
    with _lock:
        if _domains.get(domain.lower()) is target:
            del _domains[domain.lower()]


def serves_domain(domain: str) -> bool:
    """Whether a running gateway stands behind the custom domain name `domain`."""
    return domain.lower() in _domains


def lookup(api_id: str, stage: str) -> ManagementTarget | None:
    return _targets.get((api_id, stage))


def serves_api(api_id: str) -> bool:
    """Whether a running gateway serves some stage of `api_id`."""
    return any(key[0] == api_id for key in list(_targets))


def any_running() -> bool:
    return bool(_targets)
