"""One exception hierarchy; the CLI renders it once and maps it to an exit code."""

from __future__ import annotations

import re
import shlex
from enum import IntEnum
from typing import Any, Final, TypeVar


class ExitCode(IntEnum):
    """The documented exit codes of every confedit command."""

    OK = 0
    WORK_FOUND = 1  # --check found something to change; audit found drift
    USAGE = 2
    REFUSED = 3  # refused for safety, or an internal error; nothing written
    INVALID_INPUT = 4  # the input is not a loadable applicationHost.config; nothing written


# C0 and C1 control characters, DEL among them, and the bytes 0x80-0x9F of a name that is not
# UTF-8 (Python reads them as U+DC80-U+DC9F): written out as bytes, they are C1 controls too.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\udc80-\udc9f]")


def shown(name: str) -> str:
    """A file name, or a path or message read from a file, as confedit's messages and tables
    show it: a control character (a line break, a tab, an escape sequence that would drive the
    terminal) written as its Python escape (\\n, \\t, \\x1b), so that a message stays on its
    line and shows what the name holds. The JSON reports keep names and paths as they are."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], name)


def shell_command(words: list[str]) -> str:
    """A command to paste from a message, quoted for a POSIX shell as shlex.join quotes it; but
    a word holding a control character (a line break in a folder's name) or a byte that is not
    UTF-8 is written in bash's $'...' form, its bytes escaped, so that the command stays on the
    message's line and runs as given (shown() would write \\n inside plain quotes: another
    name)."""
    return " ".join(_ansi_c(word) if _ESCAPED.search(word) else shlex.quote(word) for word in words)


# What a pasted command must hold as escaped bytes: a control character, or a byte of a name
# that is not UTF-8 (a surrogate, which plain quotes would show as the text '\udce9').
_ESCAPED: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\udc80-\udcff]")


def _ansi_c(word: str) -> str:
    def escaped(char: str) -> str:
        if char in "\\'":
            return "\\" + char
        if _ESCAPED.match(char):  # as the bytes of the name (a surrogate: its undecoded byte)
            return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogateescape"))
        return char

    return "$'" + "".join(escaped(char) for char in word) + "'"


class ConfeditError(Exception):
    """Base of every error confedit reports to its user."""

    exit_code = ExitCode.REFUSED  # unless a subclass says otherwise: refused, nothing written
    kind = "error"

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source

    @property
    def prefix(self) -> str:
        """'SOURCE: ' when the error concerns a file, else nothing."""
        return f"{shown(self.source)}: " if self.source else ""

    def __str__(self) -> str:
        return self.prefix + shown(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle (a multiprocessing pool returning a worker's error) would call the class with
        # `args`, the message alone: Refused takes its reasons, StdoutFailed words its message.
        # The copy is made without __init__, from the args and the attributes as they are.
        return _rebuilt, (type(self), self.args, self.__dict__)


_E = TypeVar("_E", bound=ConfeditError)


def _rebuilt(cls: type[_E], args: tuple[Any, ...], state: dict[str, Any]) -> _E:
    error = cls.__new__(cls, *args)
    error.__dict__.update(state)
    return error


class InvalidInput(ConfeditError):
    """The file cannot be read as an applicationHost.config (exit 4)."""

    exit_code = ExitCode.INVALID_INPUT
    kind = "invalid"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message, source=source)
        self.line = line
        self.column = column

    def __str__(self) -> str:
        source = shown(self.source) if self.source is not None else None
        where = [p for p in (source, self.line, self.column) if p is not None]
        prefix = ":".join(str(p) for p in where)
        return f"{prefix}: {shown(self.message)}" if prefix else shown(self.message)


class UsageProblem(ConfeditError):
    """The request itself is wrong, e.g. an unknown service name (exit 2)."""

    exit_code = ExitCode.USAGE
    kind = "usage"


class Refused(ConfeditError):
    """The change would be unsafe; nothing is written (exit 3). Carries every reason found, and
    the `advice` that answers all of them when it is one (it is not a reason of its own)."""

    kind = "refused"

    def __init__(
        self, reasons: list[str], *, source: str | None = None, advice: str | None = None
    ) -> None:
        super().__init__("; ".join([*reasons, *([advice] if advice else [])]), source=source)
        self.reasons = reasons
        self.advice = advice

    def __str__(self) -> str:
        reasons = [shown(reason) for reason in self.reasons]
        advice = shown(self.advice) if self.advice else None
        if len(reasons) == 1:
            return f"{self.prefix}refused: {reasons[0]}" + (f"; {advice}" if advice else "")
        lines = [f"{self.prefix}refused for {len(reasons)} reasons:"]
        lines += [f"  - {reason}" for reason in reasons]
        lines += [f"  {advice}"] if advice else []
        return "\n".join(lines)


class VerificationFailed(ConfeditError):
    """confedit's own post-condition check failed: a bug, never the user's fault (exit 3)."""

    kind = "internal"

    def __str__(self) -> str:
        return (
            f"{self.prefix}internal error: the result failed verification, nothing was written "
            f"(this is a bug in confedit, please report it): {shown(self.message)}"
        )


class InputChanged(ConfeditError):
    """The input file changed between reading and writing (exit 3)."""

    kind = "refused"


class WriteFailed(ConfeditError):
    """An output could not be written (exit 3). Usually every file is as it was (see
    files.Outputs); where some were written (a rename refused after others, a combined --diff
    or the flush of an output folder at the end of a run), the message says so."""

    kind = "write-failed"


class StdoutFailed(WriteFailed):
    """stdout, where an output or the report was to go, is closed or cannot be written (exit 3).
    Said on stderr only: no JSON report can reach stdout any more."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot write to stdout: {reason}")


class InternalError(ConfeditError):
    """An unexpected error: a bug in confedit (exit 3)."""

    kind = "internal"

    @classmethod
    def of(cls, error: BaseException, *, debug: bool, source: str | None = None) -> InternalError:
        """The report of the bug `error`, in the same words wherever it is caught. With --debug
        the caller shows the traceback; without it, the message says how to get it."""
        message = f"internal error, please report: {type(error).__name__}: {error}"
        if not debug:
            message += " (run with --debug for the traceback)"
        return cls(message, source=source)


class WorkerDied(Exception):
    """Handed to batch.run_all's `crashed` for the item a worker process was working on when it
    died: whatever that item's work had done (a file written or not) is unknown. Not a
    ConfeditError: the caller turns it into one (see WorkerLost)."""


class WorkerLost(ConfeditError):
    """The worker process working on one of several files died (killed for memory, say): what
    became of the file is unknown, and running again settles it (exit 3). Not a bug."""

    kind = "worker-died"
