"""The `@connections` management API's wire format (docs/aws-behaviour.md §6), without I/O.

Both doors into it use these answers: HTTP on the gateway's port
(`/{stage}/@connections/{id}`) and boto3 clients built the AWS way, which `interception`
answers in-process. Errors carry `x-amzn-ErrorType`, which is how botocore types them
(without it, `client.exceptions.GoneException` does not match).
"""

from __future__ import annotations

import json
from urllib.parse import unquote

from . import iam_policy

Answer = tuple[int, dict[str, str], bytes]

JSON = "application/json"


def parse_path(path: str, stage: str) -> str | None:
    """The connection id in `/{stage}/@connections/{id}` (URL-encoded or not), else None."""
    path = unquote(path.split("?", 1)[0])
    prefix = f"/{stage}/@connections/"
    if not path.startswith(prefix):
        return None
    connection_id = path[len(prefix) :]
    return connection_id if connection_id and "/" not in connection_id else None


def ok(status: int = 200, payload: dict | None = None) -> Answer:
    if payload is None:
        return status, {}, b""
    return status, {"Content-Type": JSON}, json.dumps(payload).encode()


def error(status: int, error_type: str, message: str) -> Answer:
    headers = {"Content-Type": JSON, "x-amzn-ErrorType": error_type}
    return status, headers, json.dumps({"message": message}).encode()


def gone(connection_id: str) -> Answer:
    return error(
        410,
        "GoneException",
        f"Connection {connection_id} is gone: it closed, never existed, or its $connect has "
        "not returned 2xx yet. Delete the stored id and carry on.",
    )


def payload_too_large(size: int, limit: int) -> Answer:
    return error(
        413,
        "PayloadTooLargeException",
        f"Data is {size} bytes; post_to_connection accepts at most {limit} bytes. "
        "Send a smaller message, or split it and reassemble on the client.",
    )


def method_not_allowed(method: str) -> Answer:
    return error(
        403,
        "ForbiddenException",
        f"{method} is not an @connections operation: use POST (post_to_connection), "
        "GET (get_connection) or DELETE (delete_connection).",
    )


def not_found(path: str, stage: str) -> Answer:
    return error(
        403,
        "ForbiddenException",
        f"Forbidden: no route for {path}; the @connections API lives at "
        f"/{stage}/@connections/{{connectionId}} (is the stage in your endpoint_url?)",
    )


#: The IAM action that guards every @connections call (docs/aws-behaviour.md §6.3).
MANAGE_CONNECTIONS = "execute-api:ManageConnections"


def resource_arn(region: str, account_id: str, api_id: str, stage: str, method: str,
                 connection_id: str) -> str:
    """The resource an @connections call acts on, as IAM policies name it (§6.3)."""
    return (f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{method}"
            f"/@connections/{connection_id}")


def assumed_role_arn(role_arn: str, session_name: str) -> str:
    """Who a Lambda function is to IAM: its execution role, assumed for a session named
    after the function (``arn:aws:sts::{account}:assumed-role/{role name}/{function}``)."""
    parts = role_arn.split(":")
    role_name = parts[5].rsplit("/", 1)[-1] if len(parts) > 5 else role_arn
    account = parts[4] if len(parts) > 4 else ""
    return f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"


def why_refused(decision: iam_policy.Decision, role_arn: str, resource: str) -> str:
    """The emulator's explanation of an IAM refusal, with the fix (docs/aws-behaviour.md §7.4)."""
    role_name = role_arn.rsplit("/", 1)[-1]
    if decision.effect is iam_policy.Effect.EXPLICIT_DENY:
        return f"an explicit Deny in role {role_name}'s policies matches, and a Deny always wins"
    stage_arn = resource.split("/@connections/", 1)[0].rsplit("/", 1)[0]  # drop the method
    all_connections = f"{stage_arn}/*/@connections/*"
    why = (f"no policy of role {role_name} allows it: attach one that allows "
           f"{MANAGE_CONNECTIONS} on {all_connections}")
    if decision.unmet:
        why += (f"; {decision.unmet} statement(s) matched but their Condition did not hold "
                "for this request")
    return why


def access_denied(principal_arn: str, resource: str, hint: str = "") -> Answer:
    """403 ``AccessDeniedException``: the caller's policies do not allow ManageConnections.

    Body and type as execute-api answers an IAM refusal (observed: §6.3); boto3 raises
    ``ClientError`` with code ``AccessDeniedException``. ``hint`` is the emulator's own
    advice, appended after AWS's sentence.
    """
    message = (f"User: {principal_arn} is not authorized to perform: {MANAGE_CONNECTIONS} "
               f"on resource: {resource}")
    if hint:
        message += f" ({hint})"
    headers = {"Content-Type": JSON, "x-amzn-ErrorType": "AccessDeniedException"}
    return 403, headers, json.dumps({"Message": message}).encode()


# Signatures (docs/aws-behaviour.md §6.3): API Gateway's answers to requests it cannot
# attribute to anyone. The messages are AWS's; the types are those execute-api sends.

def _forbidden(error_type: str, message: str) -> Answer:
    return error(403, error_type, message)


def missing_token() -> Answer:
    """An unsigned request."""
    return _forbidden("MissingAuthenticationTokenException", "Missing Authentication Token")


def invalid_token() -> Answer:
    """A key nobody issued, or one that expired (its execution environment is gone)."""
    return _forbidden("UnrecognizedClientException",
                      "The security token included in the request is invalid.")


def signature_mismatch() -> Answer:
    return _forbidden(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service "
        "documentation for details.")


def stale_signature(message: str) -> Answer:
    """A signature too old or too new (`sigv4.age_problem`), or a presigned URL expired."""
    return _forbidden("InvalidSignatureException", message)


def incomplete_signature(problem: str) -> Answer:
    return _forbidden("IncompleteSignatureException", problem)


def frozen(connection_id: str) -> Answer:
    """The emulator's answer to a call from an invocation past its timeout (on AWS the
    call never happens: the sandbox is frozen)."""
    return _forbidden(
        "ForbiddenException",
        f"Refused: this call to @connections/{connection_id} comes from a Lambda invocation "
        "past its timeout. On AWS its sandbox is frozen and the call never happens.")
