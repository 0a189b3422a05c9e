"""Every number the local gateway starts with, in one place, each with where AWS says so.

Change a default here and the whole gateway follows: the server, the configuration, the
connection state machine and the limits all read these names.
"""

from __future__ import annotations

# --- Timeouts (docs/aws-behaviour.md §1.2, §5) ---------------------------------------------

#: An integration's TimeoutInMillis default, 29,000 ms, also its maximum for WebSocket APIs
#: (docs/aws-behaviour.md §1.2): past it the client gets "Endpoint request timed out".
INTEGRATION_TIMEOUT = 29.0
#: A Lambda function's default Timeout in seconds (Lambda's CreateFunction default).
FUNCTION_TIMEOUT = 3.0
#: Seconds without a data message before API Gateway closes 1001 "Going away" (§5).
IDLE_TIMEOUT = 600
#: The maximum connection duration: 2 hours (§5).
MAX_LIFETIME = 7200

#: Seconds an execution environment may stay idle before Lambda reclaims it, so that the
#: next invocation is a cold start (docs/aws-behaviour.md §4.3a: observed, not documented).
ENVIRONMENT_IDLE_LIFETIME = 600.0

# --- Sizes (docs/aws-behaviour.md §5, §6) ----------------------------------------------------

#: A larger frame closes the connection 1009 (§5).
MAX_FRAME_BYTES = 32 * 1024
#: A larger message (all its frames together) closes the connection 1009 (§5).
MAX_MESSAGE_BYTES = 128 * 1024
#: post_to_connection Data larger than this gets 413 PayloadTooLargeException (§6).
MAX_POST_BYTES = 128 * 1024

# --- The emulator's own (no AWS counterpart) --------------------------------------------------

#: Real seconds a closing socket may take to answer our close frame before we drop it.
CLOSE_GRACE = 5.0
#: Real seconds a deadline timer may fire late before the machine counts as saturated: the
#: event loop could not run, so neither could the handlers. That time is not the function's.
SATURATION_LAG = 0.5
#: Real seconds an answer may wait for an earlier message's answer, so that handlers finishing
#: a few milliseconds apart on different threads still answer in arrival order.
ANSWER_HOLD = 0.05
#: Entries the event log keeps (the oldest go first), so a long benchmark stays bounded.
LOG_SIZE = 20_000
