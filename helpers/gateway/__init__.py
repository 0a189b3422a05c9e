"""A local Amazon API Gateway WebSocket API: the data plane that moto does not provide.

    from helpers.gateway import LocalGateway, VirtualClock

    gateway = LocalGateway.from_api(api_id, "dev").start()   # an API made with boto3 in mock_aws
    gateway.url                                              # ws://127.0.0.1:<port>/dev

Importing this package also fills moto's gaps (`moto_gaps`: create_deployment, ...) and lets
boto3 `apigatewaymanagementapi` clients built the AWS way reach a running gateway
(`interception`). The specification is reference/aws-websocket-api.md.
"""

from helpers.gateway import interception, moto_gaps
from helpers.gateway.clock import RealClock, VirtualClock
from helpers.gateway.server import LocalGateway

moto_gaps.apply()
interception.apply()

__all__ = ["LocalGateway", "RealClock", "VirtualClock"]
