"""Policy documents and access keys, read from moto's IAM backend (thin: no evaluation).

`helpers.gateway.iam_policy` decides; this only finds the documents: a role's (or a user's
and its groups') inline policies and the default version of each attached managed policy,
and who holds an access key made with `iam.create_access_key`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.iam.models import iam_backends


class RoleNotFound(LookupError):
    """The role ARN names no role in moto's IAM (deleted, or never created)."""


def role_policy_documents(role_arn: str) -> list[str]:
    """The JSON text of every policy that applies to the role, inline then managed."""
    parts = role_arn.split(":")
    account, partition = parts[4], parts[1]
    # dict.get: moto's BackendDict creates missing accounts on item access.
    accounts = dict.get(iam_backends, account)
    backend = dict.get(accounts, partition) if accounts is not None else None
    role = None
    if backend is not None:
        role = next((r for r in backend.roles.values() if r.arn == role_arn), None)
    if role is None:
        raise RoleNotFound(role_arn)
    return _documents(role)


def _documents(holder: Any) -> list[str]:
    documents = list(holder.policies.values())
    for policy in holder.managed_policies.values():
        documents += [v.document for v in policy.versions if v.is_default]
    return documents


@dataclass(frozen=True)
class KeyHolder:
    """An IAM user's active access key: its secret, the user's ARN and policies."""

    arn: str
    secret_access_key: str
    documents: list[str]


def access_key_holder(access_key: str) -> KeyHolder | None:
    """The IAM user holding this active access key in moto, or None."""
    for accounts in list(dict.values(iam_backends)):
        for backend in list(dict.values(accounts)):
            key = backend.access_keys.get(access_key)
            if key is None or key.status != "Active" or key.user_name is None:
                continue
            user = backend.users.get(key.user_name)
            if user is None:
                return None
            documents = _documents(user)
            for group in backend.get_groups_for_user(user.name):
                documents += _documents(group)
            return KeyHolder(user.arn, key.secret_access_key, documents)
    return None
