"""Keeps a long-running moto's DynamoDB memory bounded (a gateway serving a chat for hours).

moto records every instance of every model class in ``cls.instances_tracked``
(``moto/core/common_models.py``, ``BaseModel.__new__``), for the MotoServer dashboard, and
forgets them only when ``mock_aws`` stops. DynamoDB's ``Item`` is such a model, and moto
builds new ``Item`` objects for every ``put_item`` and for every item a ``scan``, ``query``
or ``get_item`` returns, so a chat that stores connections and scans them on each message
grows without bound even though its table stays small (measured: 10,755 ``Item`` objects
alive after 3,000 put/delete pairs and 300 scans of a 25-item table).

The fix: ``Item`` instances are not tracked (nothing in moto's in-process use reads that
list for DynamoDB). Every other model is tracked as before.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import BaseModel
from moto.dynamodb.models.dynamo_type import Item

from .. import patches


def untracked_items(original: Any) -> Any:
    """``BaseModel.__new__`` that skips moto's instance list for DynamoDB items."""

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        if issubclass(cls, Item):
            return object.__new__(cls)
        return original(cls, *args, **kwargs)

    return __new__


def install() -> None:
    Item.instances_tracked = []  # what was tracked before we were installed
    patches.replace(BaseModel, "__new__", untracked_items)
