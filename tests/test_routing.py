"""Route selection (reference §2) and the id/time formats of `helpers.gateway.ids`."""

from __future__ import annotations

import base64
import json
import re

import pytest

from helpers.gateway import ids
from helpers.gateway.routing import compile_expression, evaluate, select_route, stringify

CHAT = {"service": "chat", "action": "join"}


# --- §2.2 expression language -----------------------------------------------------------


def test_body_path_selects_top_level_key():
    assert evaluate("$request.body.action", CHAT) == "join"


def test_nested_body_path_selects_nested_key():
    assert evaluate("$request.body.service.do", {"service": {"do": "x"}}) == "x"
    assert evaluate("$request.body.a.b", {"a": {"b": "deep"}}) == "deep"


def test_braced_variables_mix_with_literal_text():
    expr = "${request.body.service}/${request.body.action}"
    assert evaluate(expr, CHAT) == "chat/join"


def test_braces_mark_where_a_variable_ends():
    assert evaluate("${request.body.version}-beta", {"version": "v2"}) == "v2-beta"


def test_missing_path_resolves_to_empty_string():
    expr = "${request.body.action}-${request.body.invalidPath}"
    assert evaluate(expr, CHAT) == "join-"
    assert evaluate("$request.body.nope", CHAT) == ""
    assert evaluate("$request.body.action.deeper", CHAT) == ""


def test_static_expression_is_its_own_text():
    assert evaluate("action", CHAT) == "action"


def test_escaped_dollar_default_is_literal_default():
    assert evaluate("\\$default", CHAT) == "$default"
    assert select_route("\\$default", json.dumps(CHAT), {"join", "$default"}) == "$default"


def test_evaluation_happens_once_not_recursively():
    assert evaluate("$request.body.a", {"a": "${request.body.b}", "b": "x"}) == "${request.body.b}"


def test_bracket_forms_select_keys_and_indexes():
    body = {"a": {"b-c": ["x", "y"]}}
    assert evaluate("$request.body['a']['b-c'][1]", body) == "y"
    assert evaluate('$request.body["a"]["b-c"][0]', body) == "x"
    assert evaluate("${request.body.a['b-c'][-1]}", body) == "y"
    assert evaluate("$request.body.a['b-c'][5]", body) == ""


def test_unbraced_variable_stops_at_non_name_character():
    assert evaluate("$request.body.version-beta", {"version": "v2"}) == "v2-beta"


def test_array_is_stringified_like_the_docs_example():
    assert evaluate("$request.body.items", {"items": ["item1", "item2"]}) == "[item1, item2]"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (-7, "-7"),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (True, "true"),
        (False, "false"),
        (None, ""),
        ({"a": 1, "b": "x"}, "{a=1, b=x}"),
        ([1, [True, None]], "[1, [true, ]]"),
    ],
)
def test_non_string_values_are_stringified(value, text):
    assert stringify(value) == text
    assert evaluate("$request.body.v", {"v": value}) == text


def test_compiled_expressions_are_cached():
    assert compile_expression("$request.body.action") is compile_expression("$request.body.action")


@pytest.mark.parametrize(
    "expression",
    ["${request.body.action", "$context.routeKey", "${request.header.x}", "$default", "${x}"],
)
def test_unsupported_expression_raises_value_error(expression):
    with pytest.raises(ValueError):
        compile_expression(expression)


# --- §2.3 decision procedure ---------------------------------------------------------------

ROUTES = {"$connect", "$disconnect", "$default", "sendmessage", "join"}


def test_exact_match_selects_route():
    text = '{"action": "sendmessage", "data": "hi"}'
    assert select_route("$request.body.action", text, ROUTES) == "sendmessage"


def test_match_is_case_sensitive():
    text = '{"action": "SendMessage"}'
    assert select_route("$request.body.action", text, ROUTES) == "$default"
    assert select_route("$request.body.action", text, {"sendmessage"}) is None


def test_json_keys_are_case_sensitive():
    assert select_route("$request.body.action", '{"Action": "join"}', ROUTES) == "$default"


def test_non_json_goes_to_default():
    assert select_route("$request.body.action", "hello there", ROUTES) == "$default"


@pytest.mark.parametrize("text", ['["join"]', '"join"', "3", "null", '{"action": NaN}'])
def test_json_that_is_not_an_object_goes_to_default(text):
    assert select_route("$request.body.action", text, ROUTES) == "$default"


def test_no_match_and_no_default_means_forbidden():
    assert select_route("$request.body.action", '{"action": "nope"}', {"join"}) is None
    assert select_route("$request.body.action", "not json", {"join"}) is None


def test_missing_key_without_empty_route_goes_to_default():
    assert select_route("$request.body.action", '{"data": 1}', ROUTES) == "$default"


def test_number_selects_route_named_by_its_decimal_text():
    assert select_route("$request.body.action", '{"action": 1}', {"1"}) == "1"


def test_template_expression_selects_route():
    expr = "${request.body.service}/${request.body.action}"
    assert select_route(expr, json.dumps(CHAT), {"chat/join"}) == "chat/join"


def test_unevaluable_expression_falls_back_to_default():
    assert select_route("$request.header.x", '{"a": 1}', ROUTES) == "$default"
    assert select_route("${oops", '{"a": 1}', {"join"}) is None


def test_deeply_nested_json_goes_to_default():
    assert select_route("$request.body.a", "[" * 100_000, ROUTES) == "$default"


# --- ids and timestamps (reference §3, §6) -------------------------------------------------


def test_new_id_looks_like_aws_ids():
    made = {ids.new_id() for _ in range(1200)}  # ids are made in batches: cross two of them
    assert len(made) == 1200
    for value in made:
        assert re.fullmatch(r"[A-Za-z0-9_-]{15}=", value)
        assert len(base64.urlsafe_b64decode(value)) == 11  # 11 random bytes, as AWS's


def test_new_api_id_is_ten_lowercase_alphanumerics():
    assert re.fullmatch(r"[a-z0-9]{10}", ids.new_api_id())
    assert ids.new_api_id() != ids.new_api_id()


def test_request_time_is_clf_with_english_months():
    # 1731324924.561 is requestTimeEpoch of the PT-ev Connect sample.
    assert ids.request_time(1731324924.561) == "11/Nov/2024:11:35:24 +0000"
    assert ids.request_time(1708327306.706) == "19/Feb/2024:07:21:46 +0000"
    assert ids.request_time(0) == "01/Jan/1970:00:00:00 +0000"


def test_epoch_ms_is_integer_milliseconds():
    assert ids.epoch_ms(1731324924.553) == 1731324924553
    assert isinstance(ids.epoch_ms(1.0), int)


def test_iso8601_matches_get_connection_format():
    assert ids.iso8601(1588277433.236) == "2020-04-30T20:10:33.236Z"
    assert ids.iso8601(1588277442.997) == "2020-04-30T20:10:42.997Z"


def test_trace_id_has_root_time_and_random_parts():
    assert re.fullmatch(r"Root=1-6731ebfc-[0-9a-f]{24}", ids.new_trace_id(1731324924.5))
