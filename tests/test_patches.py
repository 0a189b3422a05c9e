"""helpers.gateway.patches: every patch in one place, undoable; pure modules patch nothing.

Each check runs in a fresh interpreter, since what is imported and patched is process-wide.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PURE_MODULES = ["routing", "events", "protocol_rules", "ids", "iam_policy", "connections_api",
                "config", "clock", "eventlog", "registry", "patches"]


def run(code: str) -> dict:
    """Run `code` in a fresh Python; it prints one JSON line, returned parsed."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", PURE_MODULES)
def test_importing_a_pure_module_imports_no_moto_and_patches_nothing(module):
    seen = run(f"""
        import json, os, sys
        import helpers.gateway.{module}
        print(json.dumps({{
            "loaded": sorted(n for n in sys.modules
                             if n.split(".")[0] in ("moto", "boto3", "botocore")
                             or n in ("helpers.gateway.server", "helpers.gateway.lambda_runtime")),
            "environ": type(os.environ).__name__, "stdout": type(sys.stdout).__name__,
        }}))
    """)
    assert seen == {"loaded": [], "environ": "_Environ", "stdout": "TextIOWrapper"}


GAPS_FILLED = """
    import json, boto3
    from moto import mock_aws
    with mock_aws():
        v2 = boto3.client("apigatewayv2")
        api = v2.create_api(Name="x", ProtocolType="WEBSOCKET",
                            RouteSelectionExpression="$request.body.action")
        try:
            deployed = v2.create_deployment(ApiId=api["ApiId"])["DeploymentStatus"]
        except Exception as error:
            deployed = type(error).__name__
    result = {"endpoint": api["ApiEndpoint"].split(":")[0], "deployment": deployed}
"""


def test_importing_helpers_gateway_before_moto_fills_the_gaps_of_a_plain_mock_aws():
    seen = run("import helpers.gateway\n" + textwrap.dedent(GAPS_FILLED)
               + "print(json.dumps(result))")
    assert seen == {"endpoint": "wss", "deployment": "DEPLOYED"}


def test_importing_helpers_gateway_after_moto_fills_the_gaps_too():
    seen = run("import moto\nimport helpers.gateway\n" + textwrap.dedent(GAPS_FILLED)
               + "print(json.dumps(result))")
    assert seen == {"endpoint": "wss", "deployment": "DEPLOYED"}


def test_uninstall_puts_moto_back_and_install_is_idempotent():
    seen = run("""
        import json
        from helpers.gateway import patches
        patches.install(); patches.install()
        installed = patches.installed()
        from helpers.gateway.moto_gaps import MISSING_IN_MOTO
        from moto.apigatewayv2.responses import ApiGatewayV2Response
        import botocore.endpoint
        patches.uninstall()
        after = patches.installed()
        moto_back = all(name not in ApiGatewayV2Response.__dict__ for name in MISSING_IN_MOTO)
        send_back = not hasattr(botocore.endpoint.Endpoint._send, "__wrapped__")
        patches.install()
        print(json.dumps({"installed": len(installed), "unique": len(set(installed)),
                          "after": after, "moto_back": moto_back, "send_back": send_back,
                          "again": len(patches.installed())}))
    """)
    assert seen["installed"] == seen["unique"] == seen["again"] > 10
    # what stays is the lambda runtime's own (it has no uninstall of its own yet)
    assert set(seen["after"]) <= {"os.environ", "sys.stdout", "sys.stderr",
                                  "logging.root.handlers", "sys.meta_path"}
    assert seen["moto_back"] and seen["send_back"]


def test_every_patch_is_listed_in_the_patches_module_docstring():
    seen = run("""
        import json
        from helpers.gateway import patches
        patches.install()
        print(json.dumps(sorted({name.split(".")[0] for name in patches.installed()})))
    """)
    from helpers.gateway import patches

    assert {"moto", "botocore", "os", "sys", "logging"} <= set(seen)
    for library in seen:  # each patched library is named in the table
        assert library in patches.__doc__ or library in ("moto", "botocore")


@pytest.mark.parametrize("module", ["moto_gaps", "moto_gaps.iam", "interception", "moto_source"])
def test_importing_a_moto_part_first_thing_installs_it_once_imported(module):
    seen = run(f"import helpers.gateway.{module}\n" + textwrap.dedent(GAPS_FILLED)
               + "print(json.dumps(result))")
    assert seen == {"endpoint": "wss", "deployment": "DEPLOYED"}
