"""The capstone's SAM template: cfn-lint passes, and it declares the backend deploy_chat builds."""

from __future__ import annotations

import ast

from helpers.lessons.capstone import (
    BACKEND,
    ROUTES,
    TEMPLATE,
    TWO_WAY,
    load_template,
    role_policy,
)


def resources(kind: str) -> dict[str, dict]:
    return {name: r["Properties"] for name, r in load_template()["Resources"].items()
            if r["Type"] == kind}


def test_cfn_lint_passes_on_the_template():
    from cfnlint.api import lint_file

    problems = lint_file(TEMPLATE)
    assert problems == [], "\n".join(str(p) for p in problems)


def test_template_routes_and_handlers_are_the_ones_deploy_chat_creates():
    routes = resources("AWS::ApiGatewayV2::Route")
    functions = resources("AWS::Serverless::Function")
    integrations = resources("AWS::ApiGatewayV2::Integration")
    declared = {}
    for route in routes.values():
        integration = route["Target"]["Sub"].removeprefix("integrations/${").rstrip("}")
        function = integrations[integration]["IntegrationUri"]["Sub"].split("${")[-1]
        declared[route["RouteKey"]] = functions[function.removesuffix(".Arn}/invocations")
                                                .removesuffix(".Arn")]["Handler"]
    assert declared == ROUTES
    two_way = {r["RouteKey"] for r in routes.values() if "RouteResponseSelectionExpression" in r}
    assert two_way == TWO_WAY


def test_every_handler_the_template_names_exists_in_the_backend_code():
    defined = {node.name for node in ast.parse((BACKEND / "chat.py").read_text()).body
               if isinstance(node, ast.FunctionDef)}
    for handler in ROUTES.values():
        module, function = handler.split(".")
        assert (BACKEND / f"{module}.py").exists()
        assert function in defined, f"{handler} is not defined in backend/{module}.py"


def test_both_tables_expire_rows_through_ttl_on_expiresAt():
    tables = resources("AWS::DynamoDB::Table")
    assert set(tables) == {"ConnectionsTable", "MessagesTable"}
    for table in tables.values():
        assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt",
                                                    "Enabled": True}


def test_role_policy_allows_what_deploy_chat_allows_and_nothing_broader():
    policy = resources("AWS::IAM::Role")["HandlerRole"]["Policies"][0]["PolicyDocument"]
    local = role_policy("us-east-1", "123456789012", "abcdefghij", "dev", ["t1", "t2"], "chat")
    assert [s["Action"] for s in policy["Statement"]] == [s["Action"] for s in local["Statement"]]
    manage = policy["Statement"][1]["Resource"]["Sub"]
    assert manage.endswith("${ChatApi}/${StageName}/*/@connections/*")  # this API and stage only
    assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in policy["Statement"])
