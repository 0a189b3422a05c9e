"""Displays are deterministic: random ids become ordered labels, times become placeholders."""

from __future__ import annotations

import datetime as dt

from helpers.display import Redactor, json_view, table

CONNECT_EVENT = {
    "headers": {
        "Host": "abc123defg.execute-api.us-east-1.amazonaws.com",
        "X-Amzn-Trace-Id": "Root=1-6731ebfc-08e1e656421db73c5d2eef31",
    },
    "multiValueHeaders": {"X-Amzn-Trace-Id": ["Root=1-6731ebfc-08e1e656421db73c5d2eef31"]},
    "requestContext": {
        "routeKey": "$connect",
        "requestTime": "11/Nov/2024:11:35:24 +0000",
        "connectedAt": 1731324924553,
        "requestTimeEpoch": 1731324924561,
        "requestId": "BFHPhFe3IAMF95g=",
        "extendedRequestId": "BFHPhFe3IAMF95g=",
        "connectionId": "BFHPhfCWIAMCKlQ=",
        "apiId": "abc123defg",
    },
    "isBase64Encoded": False,
}


def test_labels_follow_first_appearance_per_kind() -> None:
    r = Redactor()
    assert [r.label(v, k) for v, k in [("A=", "conn"), ("B=", "conn"), ("A=", "conn"),
                                        ("X", "req")]] == ["conn-1", "conn-2", "conn-1", "req-1"]


def test_event_anatomy_is_redacted_and_shape_kept() -> None:
    redacted = Redactor()(CONNECT_EVENT)
    assert redacted["headers"] == {
        "Host": "api-1.execute-api.us-east-1.amazonaws.com",  # apiId seen later, still replaced
        "X-Amzn-Trace-Id": "<X-Amzn-Trace-Id>",
    }
    assert redacted["multiValueHeaders"] == {"X-Amzn-Trace-Id": ["<X-Amzn-Trace-Id>"]}
    assert redacted["requestContext"] == {
        "routeKey": "$connect", "requestTime": "<requestTime>", "connectedAt": "<connectedAt>",
        "requestTimeEpoch": "<requestTimeEpoch>", "requestId": "req-1",
        "extendedRequestId": "req-1", "connectionId": "conn-1", "apiId": "api-1",
    }
    assert redacted["isBase64Encoded"] is False
    assert CONNECT_EVENT["requestContext"]["connectionId"] == "BFHPhfCWIAMCKlQ="  # not mutated


def test_one_redactor_keeps_labels_across_displays() -> None:
    r = Redactor()
    r(CONNECT_EVENT)
    frame = '{"message": "Forbidden", "connectionId":"BFHPhfCWIAMCKlQ=", "requestId":"QQQQ="}'
    assert r.text(frame) == '{"message": "Forbidden", "connectionId":"conn-1", "requestId":"req-2"}'


def test_text_redacts_ports_and_uuids() -> None:
    r = Redactor()
    text = "ws://127.0.0.1:50123/prod http://localhost:8080 id 0f8fad5b-d9cb-469f-a165-70867728950e"
    assert r.text(text) == "ws://127.0.0.1:PORT/prod http://localhost:PORT id uuid-1"


def test_json_view_drops_response_metadata_and_dates() -> None:
    response = {"ApiId": "zz9", "CreatedDate": dt.datetime(2024, 1, 1),
                "ResponseMetadata": {"RequestId": "x"}}
    view = json_view(response)
    assert repr(view) == '{\n  "ApiId": "api-1",\n  "CreatedDate": "<CreatedDate>"\n}'
    assert view._repr_markdown_() == f"```json\n{view!r}\n```"


def test_json_view_without_redaction_shows_raw_values() -> None:
    assert repr(json_view({"connectionId": "A="}, redact=False)) == '{\n  "connectionId": "A="\n}'


def test_table_text_and_markdown_are_deterministic() -> None:
    rows = [{"route": "$connect", "target": "lambda"}, {"route": "a|b", "extra": "<x>"}]
    t = table(rows, title="Routes")
    assert repr(t) == (
        "Routes\n"
        "route     target  extra\n"
        "--------  ------  -----\n"
        "$connect  lambda\n"
        "a|b               <x>"
    )
    assert t._repr_markdown_() == (
        "**Routes**\n\n"
        "| route | target | extra |\n"
        "|---|---|---|\n"
        "| <span>&#36;</span>connect | lambda |  |\n"
        "| a\\|b |  | &lt;x&gt; |"
    )


def test_table_redacts_with_a_shared_redactor_and_picks_columns() -> None:
    r = Redactor()
    rows = [{"connectionId": "B=", "n": 1}, {"connectionId": "A=", "n": 2}]
    t = table(rows, columns=["connectionId"], redact=r)
    assert repr(t) == "connectionId\n------------\nconn-1\nconn-2"
    assert r.label("A=", "conn") == "conn-2"


def test_empty_table_says_so() -> None:
    assert repr(table([], columns=["a"])) == "a\n-\n(no rows)"


def test_table_markdown_keeps_an_arns_asterisks_literal() -> None:
    t = table([{"resource": "arn:aws:execute-api:us-east-1:1:api/*/*/@connections/*"}])
    assert t._repr_markdown_().splitlines()[-1] == (
        "| arn:aws:execute-api:us-east-1:1:api/\\*/\\*/@connections/\\* |")
