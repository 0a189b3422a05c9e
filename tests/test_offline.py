"""After clean-up, AWS calls say "run the setup cells again" and never reach the network."""

from __future__ import annotations

import boto3
import pytest

from helpers.offline import OfflineError, allow_online, stay_offline


@pytest.fixture
def offline():
    stay_offline()
    stay_offline()  # idempotent
    yield
    allow_online()


def test_a_call_after_clean_up_names_the_fix_and_sends_nothing(offline):
    client = boto3.client("apigatewaymanagementapi", region_name="us-east-1",
                          endpoint_url="https://abc123.execute-api.us-east-1.amazonaws.com/dev",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    with pytest.raises(OfflineError, match="run the setup cells again"):
        client.post_to_connection(ConnectionId="x", Data=b"hi")


def test_moto_still_answers_after_the_setup_cells_run_again(offline, aws):
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    assert dynamodb.list_tables()["TableNames"] == []


def test_local_gateway_calls_are_not_refused(offline, serve):
    from helpers.client import Client

    gateway = serve({"$connect": lambda event, context: {"statusCode": 200}})
    bob = Client(gateway.url, name="bob")
    management = boto3.client("apigatewaymanagementapi", endpoint_url=gateway.callback_url,
                              region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing")
    management.post_to_connection(ConnectionId=gateway.connections[-1], Data=b"still here")
    assert bob.recv() == "still here"
    bob.close()
