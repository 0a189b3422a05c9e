"""What the learners' check cells call: raise with a hint on failure, say so briefly on success.

A failing check raises (nbgrader scores the cell 0, nbval and the exercise harness see the error);
a passing one prints one deterministic line. A typical check cell:

    with checking("ping route", "the two-way route answers 'pong'"):
        reply = send_and_receive(ws, {"action": "ping"})
        check(reply == "pong", f"the reply was {reply!r}, not 'pong'",
              hint="return {'statusCode': 200, 'body': 'pong'} from the handler")

An unattempted exercise (its stub raises NotImplementedError, or the names it should define do
not exist yet) fails with `NotDoneYet` instead of a traceback into the learner's stub.
"""

from __future__ import annotations

from types import TracebackType

PASS_MARK = "✅"


class CheckFailed(AssertionError):
    """A learner's answer is wrong; the message says what and how to fix it.

    Subclasses AssertionError so that any grader counting failed assertions counts it.
    """

    def __repr__(self) -> str:
        # Short and stable: nbval compares ename and evalue of cells expected to raise.
        return f"{type(self).__name__}({str(self)!r})"


class NotDoneYet(CheckFailed):
    """The exercise still holds its `raise NotImplementedError()` stub."""


def check(condition: object, what: str, hint: str) -> None:
    """Raise CheckFailed("<what> Hint: <hint>") unless `condition` is true.

    `what` states what is wrong in the learner's terms; `hint` says where to look.
    """
    if not condition:
        raise CheckFailed(f"{what.rstrip('.')}. Hint: {hint}")


def passed(message: str) -> None:
    """Print the one-line success message, e.g. "✅ ping route: answers 'pong'"."""
    print(f"{PASS_MARK} {message}")


class checking:  # lower case: used like contextlib.suppress
    """Run one check block: prefix failures with `name`, print "✅ name: success" if all pass.

    NotImplementedError (the stub) and NameError (a name the exercise defines is missing)
    become NotDoneYet; other exceptions propagate untouched, since they show a real bug.
    A class, not @contextmanager, so the learner's traceback has no contextlib frames.
    """

    def __init__(self, name: str, success: str) -> None:
        self.name, self.success = name, success

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        name = self.name
        if error is None:
            passed(f"{name}: {self.success}")
            return False
        if isinstance(error, NotDoneYet):
            return False
        if isinstance(error, CheckFailed):
            raise CheckFailed(f"{name}: {error}") from None
        if isinstance(error, NotImplementedError):
            raise NotDoneYet(
                f"{name}: exercise not done yet. Hint: replace `raise NotImplementedError()` in "
                "the exercise cell above with your code, run that cell, then run this one again"
            ) from None
        if isinstance(error, NameError):
            raise NotDoneYet(
                f"{name}: {error}. Hint: finish the exercise cell above and run it "
                "(after a kernel restart, run the cells above this one again)"
            ) from None
        return False
