"""What the learners' check cells call: raise with a hint on failure, say so briefly on success.

A failing check raises (nbgrader scores the cell 0, nbval and the exercise harness see the error);
a passing one prints one deterministic line. A typical check cell imports what it uses itself,
so an answer cell that redefines `checking` or `check` changes nothing:

    from helpers.checks import check, checking
    with checking("ping route", "the two-way route answers 'pong'"):
        reply = send_and_receive(ws, {"action": "ping"})
        check(reply == "pong", f"the reply was {reply!r}, not 'pong'",
              hint="return {'statusCode': 200, 'body': 'pong'} from the handler")

Three guards make a check hard to game and fair to grade:
- **Untouched machinery.** The first import of this module seals the check machinery: the
  functions and classes of every `helpers` module, Python's builtins and IPython's traceback
  and run-cell methods. `checking` refuses to run (raising `Tampered`) when any of them was
  replaced since, e.g. by `helpers.checks.check = lambda *a, **k: None` in an answer cell.
- **stderr-safe.** nbgrader scores a graded cell 0 as soon as it writes to stderr, so inside
  `checking` stderr (warnings, logging, prints) goes to stdout instead.
- **Readable failures.** The hint is on its own line (`nbgrader validate` cuts lines at 90
  characters), and frames of this module are hidden from the learner's traceback.

An unattempted exercise (its stub raises NotImplementedError, or the names it should define do
not exist yet) fails with `NotDoneYet` instead of a traceback into the learner's stub.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
import os
import sys
import textwrap
from collections.abc import Iterator
from types import CodeType, FunctionType, ModuleType, TracebackType
from typing import Any

PASS_MARK = "✅"
LINE_WIDTH = 86  # `nbgrader validate` cuts lines at 87 characters
_SHELL_METHODS = ("showtraceback", "_showtraceback", "run_cell", "run_cell_async",
                  "run_ast_nodes", "run_code", "showsyntaxerror")


class CheckFailed(AssertionError):
    """A learner's answer is wrong; the message says what and how to fix it.

    Subclasses AssertionError so that any grader counting failed assertions counts it.
    """

    def __repr__(self) -> str:
        # Short and stable: nbval compares ename and evalue of cells expected to raise.
        return f"{type(self).__name__}({str(self)!r})"


class NotDoneYet(CheckFailed):
    """The exercise still holds its `raise NotImplementedError()` stub."""


class Tampered(CheckFailed):
    """Code in the notebook replaced part of the check machinery; no check can pass."""


def wrap(message: str, width: int = LINE_WIDTH) -> str:
    """Break lines longer than `width` at spaces, continuing at the line's indent plus two."""
    lines = []
    for line in message.split("\n"):
        indent = " " * (len(line) - len(line.lstrip(" ")))
        lines.append(textwrap.fill(line, width, subsequent_indent=indent + "  ",
                                   break_long_words=False, break_on_hyphens=False)
                     if len(line) > width else line)
    return "\n".join(lines)


def check(condition: object, what: str, hint: str) -> None:
    """Raise CheckFailed("<what>.\\nHint: <hint>") unless `condition` is true.

    `what` states what is wrong in the learner's terms; `hint` says where to look.
    """
    __tracebackhide__ = True  # IPython leaves this frame out of the learner's traceback
    if not condition:
        raise CheckFailed(wrap(f"{what.rstrip('.')}.\nHint: {hint}"))


def passed(message: str) -> None:
    """Print the one-line success message, e.g. "✅ ping route: answers 'pong'"."""
    print(f"{PASS_MARK} {message}")


# -- the seal: what the machinery looked like when this module was first imported -------------

# Rebound by the kernel itself: ipykernel sets `input` per request, IPython `_` per result.
_REBOUND = {"input", "raw_input", "_", "__", "___"}


def _callables(namespace: dict[str, Any]) -> dict[str, int]:
    """Ids of the functions, classes and modules in a namespace (data may change freely), and
    of each function's code and defaults: `f.__code__ = ...` keeps the function's id."""
    ids = {}
    for name, value in namespace.copy().items():
        if name in _REBOUND or not (callable(value) or isinstance(value, ModuleType)):
            continue
        ids[name] = id(value)
        if isinstance(value, FunctionType):
            ids[f"{name}.__code__"] = id(value.__code__)
            ids[f"{name}.__defaults__"] = id(value.__defaults__)
            ids[f"{name}.__kwdefaults__"] = id(value.__kwdefaults__)
    return ids


def _helpers_modules() -> Iterator[tuple[str, ModuleType]]:
    # dict.copy() is one C call that runs no Python code: other threads (handlers importing
    # their modules) cannot change the dict half way, as they can during list(d.items()).
    for name, module in sys.modules.copy().items():
        if (name == "helpers" or name.startswith("helpers.")) and module is not None:
            yield name, module


def _sealed_parts() -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, namespace) of everything a check relies on: helpers modules and their classes."""
    yield "builtins", vars(builtins)
    for name, module in _helpers_modules():
        yield name, vars(module)
        for attr, value in vars(module).copy().items():
            if isinstance(value, type) and value.__module__ == name:
                yield f"{name}.{attr}", vars(value)


def _read_sources(folder: str) -> dict[str, str]:
    """The text of every helpers/ module as it is now, by real path."""
    sources = {}
    for where, _, files in os.walk(folder):
        for file in files:
            if file.endswith(".py"):
                path = os.path.realpath(os.path.join(where, file))
                with open(path, encoding="utf-8") as handle:
                    sources[path] = handle.read()
    return sources


def _code_by_name(code: CodeType) -> dict[str, CodeType]:
    """Every code object compiled from a module's source, by qualified name."""
    found = {code.co_qualname: code}
    for const in code.co_consts:
        if isinstance(const, CodeType):
            found.update(_code_by_name(const))
    return found


def _foreign(name: str, module: ModuleType) -> list[str]:
    """What in a helpers module, seen for the first time, is not the code helpers/ held when
    the seal was made: a module from elsewhere (a fake put in sys.modules, or a file edited
    since) or a function whose code differs from the one its source compiles to."""
    path = os.path.realpath(getattr(module, "__file__", None) or "?")
    if path not in _SOURCES:
        return [f"sys.modules[{name!r}]"]
    if path not in _TRUSTED_CODE:
        _TRUSTED_CODE[path] = _code_by_name(compile(_SOURCES[path], path, "exec",
                                                     dont_inherit=True))
    trusted = _TRUSTED_CODE[path]
    functions = [(None, value) for value in vars(module).copy().values()]
    for value in vars(module).copy().values():
        if isinstance(value, type) and value.__module__ == name:
            functions += [(value, attr) for attr in vars(value).copy().values()]
    problems = []
    for owner, value in functions:
        if not isinstance(value, FunctionType) or value.__module__ != name:
            continue
        code = value.__code__
        # methods @dataclass wrote (from a string, or wrappers from the dataclasses module)
        generated = dataclasses.is_dataclass(owner) and code.co_filename != path
        if trusted.get(code.co_qualname) != code and not generated:
            problems.append(f"{name}.{value.__qualname__}")
    return problems


def _shell() -> Any:
    """The running IPython shell, or None outside IPython."""
    return getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()


def _shell_parts(shell: Any) -> dict[str, int]:
    """Ids of the shell's error-reporting and cell-running methods, on the instance and class."""
    parts = {f"IPython InteractiveShell.{name}": id(getattr(type(shell), name, None))
             for name in _SHELL_METHODS}
    for name in (*_SHELL_METHODS, "CustomTB", "custom_exceptions"):
        parts[f"IPython shell.{name}"] = id(vars(shell).get(name))
    return parts


def _helper_frames_hidden(shell: Any, etype: type, value: BaseException, tb: TracebackType,
                          tb_offset: int | None = None) -> None:
    """Show a CheckFailed with the learner's frames only: none from helpers/."""
    keep = [entry for entry in _entries(tb)
            if not entry.tb_frame.f_code.co_filename.startswith(_HELPERS_DIR)]
    for entry, following in zip(keep, [*keep[1:], None], strict=True):
        entry.tb_next = following
    shell.showtraceback((etype, value, keep[0] if keep else None), tb_offset=tb_offset)


def _entries(tb: TracebackType | None) -> Iterator[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _put_back_sealed_modules(*info: object) -> None:
    """Before every cell (an IPython pre_run_cell callback): a sealed helpers module that is no
    longer in sys.modules, or was replaced there, goes back, and the replacement is remembered.

    A check cell's `from helpers.checks import checking` reads sys.modules first: without this,
    an answer cell could hand the check cells a fake `helpers.checks` that never fails.
    """
    for name, module in _MODULES.copy().items():
        if sys.modules.get(name) is not module:
            _REPLACED.add(f"sys.modules[{name!r}]")
            sys.modules[name] = module


_HELPERS_DIR = os.path.dirname(os.path.realpath(__file__)) + os.sep
_SOURCES = _read_sources(_HELPERS_DIR)   # helpers/ as it was at the seal, by real path
_TRUSTED_CODE: dict[str, dict[str, CodeType]] = {}
_SEAL: dict[str, dict[str, int]] = {}
_MODULES: dict[str, ModuleType] = {}     # every sealed helpers module, by name
_REPLACED: set[str] = set()              # what _put_back_sealed_modules found replaced
_THIS = sys.modules[__name__]
if _shell() is not None:
    _shell().set_custom_exc((CheckFailed,), _helper_frames_hidden)
    _shell().events.register("pre_run_cell", _put_back_sealed_modules)


def tampered() -> list[str]:
    """What was replaced since the seal (empty when untouched); seals parts seen the first time.

    A helpers module first seen now (imported after this one) is sealed as it is, once its
    code was found to be what helpers/ held at the seal.
    """
    problems = sorted(_REPLACED)
    for name, module in _helpers_modules():
        if name not in _MODULES:
            _MODULES[name] = module
            problems += _foreign(name, module)
    for name, module in _MODULES.copy().items():
        if sys.modules.get(name) is not module:
            problems.append(f"sys.modules[{name!r}]")
    for label, namespace in _sealed_parts():
        now = _callables(namespace)
        sealed = _SEAL.setdefault(label, now)
        changed = [name for name, ident in sealed.items() if now.get(name, ident) != ident]
        problems += [f"{label}.{name}" for name in changed  # f, not also f.__code__
                     if name.partition(".")[0] == name or name.partition(".")[0] not in changed]
    shell = _shell()
    if shell is not None:
        sealed = _SEAL.setdefault("IPython", _shell_parts(shell))
        problems += [part for part, ident in _shell_parts(shell).items() if sealed[part] != ident]
        if _put_back_sealed_modules not in shell.events.callbacks.get("pre_run_cell", []):
            problems.append("IPython pre_run_cell callbacks")
    return list(dict.fromkeys(problems))


tampered()  # seal what is loaded now


# -- stderr goes to stdout while a check runs -----------------------------------------------

class _ToStdout:
    """A stand-in for sys.stderr that writes to the stdout of the moment it was made."""

    def __init__(self) -> None:
        self.target = sys.stdout

    def write(self, text: str) -> int:
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False


class _StderrToStdout:
    """Route sys.stderr, and logging handlers that hold it, to stdout; undo on exit."""

    def __enter__(self) -> None:
        self.original = sys.stderr
        self.stand_in = _ToStdout()
        sys.stderr = self.stand_in
        self.handlers = [h for h in _stream_handlers() if h.stream is self.original]
        for handler in self.handlers:
            handler.setStream(self.stand_in)

    def __exit__(self, *exc: object) -> None:
        for handler in self.handlers:
            if handler.stream is self.stand_in:
                handler.setStream(self.original)
        if sys.stderr is self.stand_in:
            sys.stderr = self.original


def _stream_handlers() -> list[logging.StreamHandler]:
    loggers = [logging.getLogger(), *(logger for logger in
               list(logging.Logger.manager.loggerDict.values())
               if isinstance(logger, logging.Logger))]
    return [h for logger in loggers for h in logger.handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]


class checking:  # lower case: used like contextlib.suppress
    """Run one check block: prefix failures with `name`, print "✅ name: success" if all pass.

    NotImplementedError (the stub) and NameError (a name the exercise defines is missing)
    become NotDoneYet; other exceptions propagate untouched, since they show a real bug.
    A class, not @contextmanager, so the learner's traceback has no contextlib frames.
    """

    def __init__(self, name: str, success: str) -> None:
        self.name, self.success = name, success
        self.stderr = _StderrToStdout()

    def __enter__(self) -> None:
        __tracebackhide__ = True
        replaced = tampered()
        if replaced:
            raise Tampered(wrap(
                f"{self.name}: the notebook replaced {', '.join(replaced[:3])}, which the "
                "checks rely on, so no check can pass.\nHint: remove that code from your "
                "answer, restart the kernel and run all cells"
            ))
        self.stderr.__enter__()
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        __tracebackhide__ = True
        self.stderr.__exit__()
        name = self.name
        if error is None:
            replaced = tampered()
            if replaced:
                raise Tampered(wrap(f"{name}: the check ran but {', '.join(replaced[:3])} "
                                    "changed while it did.\nHint: remove that code from your "
                                    "answer"))
            passed(f"{name}: {self.success}")
            return False
        if isinstance(error, NotDoneYet):
            return False
        if isinstance(error, CheckFailed):
            raise type(error)(wrap(f"{name}: {error}")) from None
        if isinstance(error, NotImplementedError):
            raise NotDoneYet(wrap(
                f"{name}: exercise not done yet.\nHint: replace `raise NotImplementedError()` "
                "in the exercise cell above with your code, run that cell, then this one"
            )) from None
        if isinstance(error, NameError):
            raise NotDoneYet(wrap(
                f"{name}: {error}.\nHint: finish the exercise cell above and run it "
                "(after a kernel restart, run the cells above this one again)"
            )) from None
        return False


