"""AWS Signature Version 4, checked the way a service checks it: pure, no I/O.

A signed request carries ``Authorization: AWS4-HMAC-SHA256 Credential={key}/{date}/{region}/
{service}/aws4_request, SignedHeaders={names}, Signature={hex}`` and ``X-Amz-Date``, or the
same parts as ``X-Amz-*`` query parameters (a presigned URL). To check it, the service
rebuilds the canonical request from what arrived and signs it with the secret it holds for
the key; the signatures must be equal. botocore's own signer (`botocore.auth.SigV4Auth`)
computes the expected signature here, so whatever botocore signs, this accepts.

A signature also has an age: AWS refuses one made more than `MAX_SKEW_MINUTES` before (or
after) the time it arrives, and a presigned URL past its `X-Amz-Expires` (`age_problem`).

The answers when it fails are API Gateway's (docs/aws-behaviour.md §6.3).
"""

from __future__ import annotations

import calendar
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
#: How far a request's X-Amz-Date may stand from the receiver's clock, either way (§6.3).
MAX_SKEW_MINUTES = 5
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Signature:
    """The parts of a request's signature (header or query string form)."""

    access_key: str
    date: str  # YYYYMMDD, from the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # X-Amz-Date: YYYYMMDDTHHMMSSZ
    in_query: bool = False  # a presigned URL: the parts are query parameters
    expires: int | None = None  # a presigned URL's X-Amz-Expires, in seconds
    signed_at: float = 0.0  # X-Amz-Date as seconds since the epoch


class Malformed(ValueError):
    """An Authorization header or query signature that cannot be read."""


def lower_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header names lowercased; repeated headers joined with commas, as SigV4 reads them."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise Malformed(f"Credential should be {{key}}/{{date}}/{{region}}/{{service}}/"
                        f"aws4_request, not {credential!r}")
    return parts[0], parts[1], parts[2], parts[3]


def parse(headers: Mapping[str, str], query: str = "") -> Signature | None:
    """The request's signature, or None if it carries none. `headers` are lowercased
    (`lower_headers`); `query` is the raw query string. Raises `Malformed`."""
    authorization = headers.get("authorization")
    if authorization is not None:
        algorithm, _, rest = authorization.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise Malformed(f"unsupported algorithm {algorithm!r}: only {ALGORITHM}")
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
        try:
            credential, signed, signature = (fields["Credential"], fields["SignedHeaders"],
                                             fields["Signature"])
        except KeyError as missing:
            raise Malformed(f"Authorization header requires a {missing.args[0]} "
                            "parameter") from None
        timestamp = headers.get("x-amz-date", "")
        in_query, expires = False, None
    else:
        params = dict(parse_qsl(query, keep_blank_values=True))
        if "X-Amz-Signature" not in params and "X-Amz-Credential" not in params:
            return None
        try:
            credential, signed, signature, timestamp = (
                params["X-Amz-Credential"], params["X-Amz-SignedHeaders"],
                params["X-Amz-Signature"], params["X-Amz-Date"])
        except KeyError as missing:
            raise Malformed(f"a presigned request requires {missing.args[0]}") from None
        in_query, expires = True, params.get("X-Amz-Expires")
    key, date, region, service = _scope(credential)
    if not timestamp:
        raise Malformed("the request has no X-Amz-Date")
    try:
        signed_at = float(calendar.timegm(time.strptime(timestamp, _STAMP)))
    except ValueError:
        raise Malformed(f"X-Amz-Date must be in the form YYYYMMDD'T'HHMMSS'Z' (UTC), as "
                        f"20260101T120000Z; got {timestamp!r}. Sign with botocore or "
                        "another SigV4 library rather than by hand") from None
    if expires is not None and not expires.isdigit():
        raise Malformed(f"X-Amz-Expires must be a whole number of seconds, not {expires!r}")
    return Signature(key, date, region, service, tuple(signed.lower().split(";")), signature,
                     timestamp, in_query, None if expires is None else int(expires),
                     signed_at)


def age_problem(signature: Signature, age: float) -> str | None:
    """AWS's message if a signature `age` seconds old (on the receiver's clock; negative if
    it is dated in the future) is refused, else None. A presigned URL is good for its
    X-Amz-Expires; any signature dated more than MAX_SKEW_MINUTES ahead is not yet good."""
    skew = 60 * MAX_SKEW_MINUTES
    now = signature.signed_at + age
    if signature.in_query and signature.expires is not None:
        return "Request has expired" if age > signature.expires else (
            _not_yet_current(signature, now) if age < -skew else None)
    if age > skew:
        return (f"Signature expired: {signature.timestamp} is now earlier than "
                f"{_stamp(now - skew)} ({_stamp(now)} - {MAX_SKEW_MINUTES} min.)")
    if age < -skew:
        return _not_yet_current(signature, now)
    return None


def _not_yet_current(signature: Signature, now: float) -> str:
    return (f"Signature not yet current: {signature.timestamp} is still later than "
            f"{_stamp(now + 60 * MAX_SKEW_MINUTES)} ({_stamp(now)} + {MAX_SKEW_MINUTES} min.)")


def _stamp(seconds: float) -> str:
    return time.strftime(_STAMP, time.gmtime(seconds))


def expected(signature: Signature, secret_key: str, method: str, url: str,
             headers: Mapping[str, str], body: bytes) -> str:
    """The signature the holder of `secret_key` computes for this request (botocore's
    canonicalisation: the path URI-encoded again, as AWS's spec asks for every service but
    S3). `url` is the full URL as sent; `headers` lowercased."""
    # A signed header that did not arrive is left out (and the signatures differ), except
    # `host`, which botocore's prepared requests leave to the HTTP client: from the URL then.
    signed = {name: headers[name] for name in signature.signed_headers if name in headers}
    if signature.in_query:  # the signature itself is not part of what it signs
        parts = urlsplit(url)
        query = "&".join(p for p in parts.query.split("&")
                         if p and not p.startswith("X-Amz-Signature="))
        url = urlunsplit(parts._replace(query=query))
    request = AWSRequest(method=method.upper(), url=url, headers=signed, data=body)
    request.context["timestamp"] = signature.timestamp
    auth = SigV4Auth(Credentials(signature.access_key, secret_key), signature.service,
                     signature.region)
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


def matches(signature: Signature, secret_key: str, method: str, url: str,
            headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the request was signed with `secret_key` (constant-time comparison)."""
    if signature.date != signature.timestamp[:8]:
        return False
    want = expected(signature, secret_key, method, url, headers, body)
    return hmac.compare_digest(want, signature.signature)


def sign(method: str, url: str, body: bytes = b"", *, access_key: str, secret_key: str,
         token: str | None = None, region: str = "us-east-1",
         service: str = "execute-api") -> dict[str, str]:
    """The headers that sign a request with these credentials (botocore's signer), for a
    plain HTTP client: ``requests.post(url, data=body, headers=sign("POST", url, body, ...))``."""
    request = AWSRequest(method=method.upper(), url=url, data=body)
    SigV4Auth(Credentials(access_key, secret_key, token), service, region).add_auth(request)
    return dict(request.headers.items())


__all__ = ["MAX_SKEW_MINUTES", "Malformed", "Signature", "age_problem", "expected",
           "lower_headers", "matches", "parse", "sign"]
