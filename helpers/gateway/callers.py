"""Who is calling `@connections`: one answer for both doors into it.

Calls arrive through two doors: boto3 clients built the AWS way, which `interception` answers
in this process, and plain HTTP on the gateway's port (`requests`, `urllib`, curl). Either way
the caller is found the same way (docs/aws-behaviour.md §6.3):

1. a call made on a handler's own thread is that invocation's (in-process door only);
2. otherwise its SigV4 signature names the caller: a key issued to an execution environment
   (`runtime.credentials`) is the invocation that environment runs, once the signature
   checks out against that key's secret; any other key is the account owner's (like moto,
   the emulator holds no secrets for the account's own keys and accepts them);
3. an unsigned request over HTTP is AWS's 403 "Missing Authentication Token".

What the caller may then do is the server's decision (`LocalGateway`): the owner anything; an
invocation past its timeout nothing; an invocation what its role's policies allow
(`role_refusal`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import connections_api, iam_policy, ids, sigv4
from .runtime import credentials
from .runtime.invocation import RunningInvocation, current_invocation

Answer = connections_api.Answer


@dataclass(frozen=True)
class Caller:
    """The invocation making a call, or None for the account owner."""

    invocation: RunningInvocation | None = None
    on_its_thread: bool = False  # the handler's own code is making the call, right now


OWNER = Caller()


def in_process(method: str, url: str, headers: Mapping[str, str] | None,
               body: bytes) -> Caller | Answer:
    """The caller of a boto3 call answered in-process (`headers` lowercased), or a 403."""
    running = current_invocation()
    if running is not None:
        return Caller(running, on_its_thread=True)
    if not headers:
        return OWNER
    return _signed_by(method, url, headers, body, required=False)


def over_http(method: str, url: str, headers: Mapping[str, str], body: bytes) -> Caller | Answer:
    """The caller of a plain HTTP request (`headers` lowercased), or AWS's 403."""
    return _signed_by(method, url, headers, body, required=True)


def _signed_by(method: str, url: str, headers: Mapping[str, str], body: bytes, *,
               required: bool) -> Caller | Answer:
    try:
        signature = sigv4.parse(headers, urlsplit(url).query)
    except sigv4.Malformed as problem:
        return connections_api.incomplete_signature(str(problem))
    if signature is None:
        return connections_api.missing_token() if required else OWNER
    if not credentials.issued_here(signature.access_key):
        return OWNER
    found = credentials.holder(signature.access_key)
    if found is None:
        return connections_api.invalid_token()
    environment, issued = found
    if not sigv4.matches(signature, issued.secret_access_key, method, url, headers, body):
        return connections_api.signature_mismatch()
    return Caller(environment.running)


def request_context(role: str, region: str, now: float, url: str) -> iam_policy.Context:
    """The condition keys an invocation's call carries (docs/aws-behaviour.md §7.4): who
    (the role: `aws:PrincipalArn` of an assumed-role session is the role's ARN), where, when,
    and over what. `aws:SourceIp` and VPC keys are absent: no network sits between them."""
    context = {
        "aws:PrincipalArn": role,
        "aws:PrincipalAccount": role.split(":")[4] if role.count(":") >= 5 else "",
        "aws:PrincipalType": "AssumedRole",
        "aws:RequestedRegion": region,
        "aws:CurrentTime": ids.iso8601(now).replace(".000Z", "Z"),
        "aws:EpochTime": str(int(now)),
    }
    if url:
        context["aws:SecureTransport"] = "true" if url.startswith("https:") else "false"
    return context


def role_refusal(role: str, resource: str, context: iam_policy.Context) -> str | None:
    """Why `role` may not manage connections on `resource`, or None if it may (§6.3, §7.4)."""
    from .moto_gaps import iam  # moto is loaded: a role-bearing function comes from moto

    try:
        documents = iam.role_policy_documents(role)
    except iam.RoleNotFound:
        return f"the execution role {role} does not exist in IAM"
    decision = iam_policy.evaluate(documents, connections_api.MANAGE_CONNECTIONS, resource,
                                   context)
    if decision.allowed:
        return None
    return connections_api.why_refused(decision, role, resource)


__all__ = ["OWNER", "Caller", "in_process", "over_http", "request_context", "role_refusal"]
