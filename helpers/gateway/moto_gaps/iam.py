"""An execution role's policy documents, read from moto's IAM backend (thin: no evaluation).

`helpers.gateway.iam_policy` decides; this only finds the documents: the role's inline
policies and the default version of each attached managed policy.
"""

from __future__ import annotations

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
    documents = list(role.policies.values())
    for policy in role.managed_policies.values():
        documents += [v.document for v in policy.versions if v.is_default]
    return documents
