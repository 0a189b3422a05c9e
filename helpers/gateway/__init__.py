"""A local Amazon API Gateway WebSocket API: the data plane that moto does not provide.

    from helpers.gateway import LocalGateway, VirtualClock

    gateway = LocalGateway.from_api(api_id, "dev").start()   # an API made with boto3 in mock_aws
    gateway.url                                              # ws://127.0.0.1:<port>/dev

Importing this package arranges for moto's gaps to be filled (`moto_gaps`: create_deployment,
...) and for boto3 `apigatewaymanagementapi` clients built the AWS way to reach a running
gateway (`interception`), as soon as moto is imported: `patches` lists every such change and
can undo them. Importing a pure module (`routing`, `events`, `protocol_rules`, `ids`, ...)
imports neither moto nor the server. AWS's behaviour, as emulated: docs/aws-behaviour.md.
"""

from __future__ import annotations

from typing import Any

from helpers.gateway import patches

patches.install_when_moto_is_imported()

_LAZY = {
    "LocalGateway": "helpers.gateway.server",
    "RealClock": "helpers.gateway.clock",
    "VirtualClock": "helpers.gateway.clock",
}


def __getattr__(name: str) -> Any:
    """``from helpers.gateway import LocalGateway`` loads the server (and every patch) then."""
    if name not in _LAZY:
        raise AttributeError(f"module 'helpers.gateway' has no attribute {name!r}")
    import importlib

    if name == "LocalGateway":
        patches.install()
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = ["LocalGateway", "RealClock", "VirtualClock"]
