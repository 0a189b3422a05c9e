"""moto's DynamoDB, made safe for a gateway that runs invocations concurrently.

**Atomic requests.** moto's DynamoDB backend is a plain in-memory store with no locking, so two
handlers running at once can interleave inside one request: two ``ADD lastId :one`` updates read
the same counter and both return it (measured: 8 threads x 100 ``update_item`` ADDs left the
counter at 745-782, not 800), and a ``scan`` can meet a table changing under it. On AWS every
single-item write is atomic ("atomic counters", UpdateItem in the Developer Guide:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.AtomicCounters).
The fix: each DynamoDB request moto handles runs under one lock, serialisation included.

**Bounded memory** (a gateway serving a chat for hours).

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

import functools
import threading
from typing import Any

from moto.core.common_models import BaseModel
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.responses import DynamoHandler

from .. import patches


def untracked_items(original: Any) -> Any:
    """``BaseModel.__new__`` that skips moto's instance list for DynamoDB items."""

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        if issubclass(cls, Item):
            return object.__new__(cls)
        return original(cls, *args, **kwargs)

    return __new__


#: One DynamoDB request at a time, as each AWS request is atomic (held across moto's handler).
REQUEST_LOCK = threading.RLock()


def atomic_requests(original: Any) -> Any:
    """``DynamoHandler.call_action`` that handles one request at a time."""

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with REQUEST_LOCK:
            return original(self)

    return call_action


def install() -> None:
    Item.instances_tracked = []  # what was tracked before we were installed
    patches.replace(BaseModel, "__new__", untracked_items)
    patches.replace(DynamoHandler, "call_action", atomic_requests)
