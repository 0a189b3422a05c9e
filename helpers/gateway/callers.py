"""Who is calling `@connections`: one answer for both doors into it.

Calls arrive through two doors: boto3 clients built the AWS way, which `interception` answers
in this process, and plain HTTP on the gateway's port (`requests`, `urllib`, curl). Either way
the caller is found the same way (docs/aws-behaviour.md §6.3):

1. a call made on a handler's own thread is that invocation's (in-process door only);
2. otherwise its SigV4 signature names the caller: a key issued to an execution environment
   (`runtime.credentials`) is the invocation that environment runs, once the signature
   checks out against that key's secret; any other key is the account owner's (like moto,
   the emulator holds no secrets for the account's own keys and accepts them);
3. an unsigned request over HTTP is AWS's 403 "Missing Authentication Token"; a signature
   older (or newer) than `sigv4.MAX_SKEW_MINUTES` on the gateway's clock, or a presigned URL
   past its X-Amz-Expires, is refused whoever signed it.

What the caller may then do is the server's decision (`LocalGateway`): the owner anything; an
invocation past its timeout nothing; an invocation what its role's policies allow
(`role_refusal`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import connections_api, iam_policy, ids, sigv4
from .runtime import credentials
from .runtime.invocation import RunningInvocation, current_invocation

Answer = connections_api.Answer
#: How old a signature is for the gateway: `Clock.elapsed_since`.
Age = Callable[[float], float]


@dataclass(frozen=True)
class Caller:
    """The invocation making a call, or None for the account owner."""

    invocation: RunningInvocation | None = None
    on_its_thread: bool = False  # the handler's own code is making the call, right now


OWNER = Caller()


def in_process(method: str, url: str, headers: Mapping[str, Any] | None, body: bytes,
               age: Age) -> Caller | Answer:
    """The caller of a boto3 call answered in-process (botocore's headers, values str or
    bytes), or a 403. A handler's own call needs no look at its headers at all."""
    running = current_invocation()
    if running is not None:
        return Caller(running, on_its_thread=True)
    if not headers:
        return OWNER
    lowered = sigv4.lower_headers((name, _text(value)) for name, value in headers.items())
    return _signed_by(method, url, lowered, body, age, required=False)


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def over_http(method: str, url: str, headers: Mapping[str, str], body: bytes,
              age: Age) -> Caller | Answer:
    """The caller of a plain HTTP request (`headers` lowercased), or AWS's 403."""
    return _signed_by(method, url, headers, body, age, required=True)


def _signed_by(method: str, url: str, headers: Mapping[str, str], body: bytes, age: Age, *,
               required: bool) -> Caller | Answer:
    try:
        signature = sigv4.parse(headers, urlsplit(url).query)
    except sigv4.Malformed as problem:
        return connections_api.incomplete_signature(str(problem))
    if signature is None:
        return connections_api.missing_token() if required else OWNER
    stale = sigv4.age_problem(signature, age(signature.signed_at))
    if stale is not None:
        return connections_api.stale_signature(stale)
    if not credentials.issued_here(signature.access_key):
        return OWNER
    found = credentials.holder(signature.access_key)
    if found is None:
        return connections_api.invalid_token()
    environment, issued = found
    if not sigv4.matches(signature, issued.secret_access_key, method, url, headers, body):
        return connections_api.signature_mismatch()
    return Caller(environment.running)


#: `aws:SourceIp` of a boto3 call answered in-process (*inferred*, docs/aws-behaviour.md §7.4):
#: it comes from this machine. On AWS it is the address the function's calls leave from.
IN_PROCESS_SOURCE_IP = "127.0.0.1"


def request_context(principal_arn: str, region: str, now: float, url: str, *,
                    principal_type: str = "AssumedRole",
                    source_ip: str | None = None) -> iam_policy.Context:
    """The condition keys a call carries (docs/aws-behaviour.md §7.4): who (for an
    invocation its role: `aws:PrincipalArn` of an assumed-role session is the role's ARN),
    where from, when, and over what. VPC keys never: there are no VPC endpoints here."""
    context = {
        "aws:PrincipalArn": principal_arn,
        "aws:PrincipalAccount": (principal_arn.split(":")[4]
                                 if principal_arn.count(":") >= 5 else ""),
        "aws:PrincipalType": principal_type,
        "aws:RequestedRegion": region,
        "aws:CurrentTime": ids.iso8601(now).replace(".000Z", "Z"),
        "aws:EpochTime": str(int(now)),
    }
    if url:
        context["aws:SecureTransport"] = "true" if url.startswith(("https:", "wss:")) else "false"
    if source_ip:
        context["aws:SourceIp"] = source_ip
    return context


#: The action `$connect` with AuthorizationType AWS_IAM checks (docs/aws-behaviour.md §7.3).
INVOKE = "execute-api:Invoke"


def connect_refusal(url: str, headers: Mapping[str, str], resource: str, region: str,
                    now: float, source_ip: str, age: Age) -> tuple[int, str, str] | None:
    """AWS_IAM on `$connect` (§7.3): None if the upgrade request is signed by someone allowed
    `execute-api:Invoke` on `resource`, else (status, message, why). The signer is an
    execution environment (its role), an IAM user with an access key in moto (its and its
    groups' policies), or else the account owner (allowed)."""
    try:
        signature = sigv4.parse(headers, urlsplit(url).query)
    except sigv4.Malformed as problem:
        return 403, "Forbidden", str(problem)
    if signature is None:
        return 403, "Missing Authentication Token", "the upgrade request is not signed"
    stale = sigv4.age_problem(signature, age(signature.signed_at))
    if stale is not None:
        return 403, stale, ("sign the upgrade request just before connecting (a presigned URL "
                            "within its X-Amz-Expires)")
    key = signature.access_key
    if credentials.issued_here(key):
        found = credentials.holder(key)
        if found is None:
            return 403, "The security token included in the request is invalid.", (
                "the key's execution environment is gone")
        environment, issued = found
        role = environment.running.function.role
        secret, principal, kind = issued.secret_access_key, role, "AssumedRole"
        documents = _role_documents(role)
        who = connections_api.assumed_role_arn(role, environment.running.function.name)
    else:
        from .moto_gaps import iam

        holder = iam.access_key_holder(key)
        if holder is None:
            return None  # the account owner's key
        secret, principal, kind = holder.secret_access_key, holder.arn, "User"
        documents, who = holder.documents, holder.arn
    if not sigv4.matches(signature, secret, "GET", url, headers, b""):
        message = json.loads(connections_api.signature_mismatch()[2])["message"]
        return 403, message, f"the signature of {key} does not check out"
    context = request_context(principal, region, now, url, principal_type=kind,
                              source_ip=source_ip)
    decision = iam_policy.evaluate(documents, INVOKE, resource, context)
    if decision.allowed:
        return None
    why = ("an explicit Deny matches" if decision.effect is iam_policy.Effect.EXPLICIT_DENY
           else f"no policy allows {INVOKE} on {resource}")
    if decision.unmet:
        why += f"; {decision.unmet} statement(s) matched but their Condition did not hold"
    return 403, f"User: {who} is not authorized to perform: {INVOKE} on resource: {resource}", why


def _role_documents(role: str) -> list[str]:
    from .moto_gaps import iam

    try:
        return iam.role_policy_documents(role)
    except iam.RoleNotFound:
        return []


def role_refusal(role: str, resource: str,
                 context: Callable[[], iam_policy.Context]) -> str | None:
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


__all__ = ["INVOKE", "IN_PROCESS_SOURCE_IP", "OWNER", "Caller", "connect_refusal",
           "in_process", "over_http", "request_context", "role_refusal"]
