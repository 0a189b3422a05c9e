"""After a lesson's clean-up, AWS calls fail with "run the setup cells again", offline.

A clean-up cell stops moto and the local gateway. A cell run after that (a learner solving
an exercise after "Run All") would otherwise send its boto3 call to the real
`*.amazonaws.com`: an `EndpointConnectionError` offline, or a real account's answer online.
`stay_offline()` makes botocore refuse, at the last step before the network, any request
to an AWS host, with a message that names the fix. moto (which answers before that step)
and the local gateway's `@connections` interception keep working once the setup cells run
again.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import EndpointConnectionError
from botocore.httpsession import URLLib3Session

_AWS_HOST = re.compile(r"^https?://[^/]*\.amazonaws\.com(?::\d+)?(?:/|$)", re.IGNORECASE)
_MARK = "_helpers_offline"
FIX = ("this notebook runs offline and its clean-up cell has stopped moto and the local "
       "gateway: run the setup cells again (or Kernel -> Restart Kernel and Run All Cells)")


class OfflineError(EndpointConnectionError):
    """An AWS call after clean-up. (An EndpointConnectionError, so handlers of that error
    still work; its message says what to do.)"""

    fmt = "Not sending {method} {endpoint_url}: {fix}."


def _guarded(original: Any) -> Any:
    def send(self: URLLib3Session, request: Any) -> Any:
        if _AWS_HOST.match(request.url):
            raise OfflineError(method=request.method, endpoint_url=request.url, fix=FIX)
        return original(self, request)

    setattr(send, _MARK, True)
    send.__wrapped__ = original
    return send


def stay_offline() -> None:
    """From now on in this process, no request reaches a real AWS endpoint (idempotent)."""
    if not getattr(URLLib3Session.send, _MARK, False):
        URLLib3Session.send = _guarded(URLLib3Session.send)


def allow_online() -> None:
    """Undo `stay_offline` (for the opt-in real-AWS appendix and for tests)."""
    current = URLLib3Session.send
    if getattr(current, _MARK, False):
        URLLib3Session.send = current.__wrapped__
