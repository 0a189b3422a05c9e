"""The temporary credentials each execution environment of a role-bearing function holds.

On AWS, Lambda puts the execution role's temporary credentials in the environment
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`:
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
and every SDK signs with them. Here each environment gets its own key, so a request signed
with it (a boto3 client, or `requests` signed with botocore's `SigV4Auth`) tells the gateway
which environment, and so which invocation, made it. The holders are weakly referenced: the
key of an environment that is gone is unknown, as an expired token is on AWS.
"""

from __future__ import annotations

import secrets
import string
import threading
import weakref
from dataclasses import dataclass
from typing import Any

#: The prefix of every key issued here ("ASIA": AWS's temporary keys; "GW": ours).
PREFIX = "ASIAGW"
_ALPHABET = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def environment(self) -> dict[str, str]:
        """The variables Lambda sets for them."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_SESSION_TOKEN": self.session_token}


_lock = threading.Lock()
_holders: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_secrets: dict[str, Credentials] = {}


def issue(holder: Any) -> Credentials:
    """New credentials for `holder` (an execution environment), valid while it lives."""
    key = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(20 - len(PREFIX)))
    issued = Credentials(key, secrets.token_urlsafe(30), secrets.token_urlsafe(60))
    with _lock:
        _holders[key] = holder
        _secrets[key] = issued
    weakref.finalize(holder, _forget, key)
    return issued


def _forget(key: str) -> None:
    with _lock:
        _secrets.pop(key, None)


def holder(access_key: str) -> tuple[Any, Credentials] | None:
    """(environment, its credentials) for a key issued here and still valid, else None."""
    with _lock:
        found, issued = _holders.get(access_key), _secrets.get(access_key)
    return (found, issued) if found is not None and issued is not None else None


def issued_here(access_key: str) -> bool:
    """Whether the key has the form of ours (valid or not)."""
    return access_key.startswith(PREFIX)
