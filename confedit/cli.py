"""The command line: click options in, a command's run, exit code out.

What each command does is offload_command.py's and audit_command.py's; here is how every run
ends: each error's message and exit code (and its JSON report), Ctrl-C, SIGTERM, SIGHUP, a closed
stdout, a stderr that cannot fail."""

from __future__ import annotations

import contextlib
import errno
import io
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import click

from confedit import __version__, exchange, style
from confedit.errors import ConfeditError, InternalError, InvalidInput, StdoutFailed, UsageProblem
from confedit.files import (
    DEFAULT_MAX_SIZE,
    STDOUT_NAMES,
    is_folder,
    is_link,
    named_as_folder,
    print_json,
    remove_temporary_files,
    silence_stdout,
    stdout_open,
    to_null,
)

if TYPE_CHECKING:
    from click.decorators import FC

_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class _Size(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower().removesuffix("ib").removesuffix("b")
        unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
        number = text[: len(text) - len(unit)]
        if not number.isdigit():
            self.fail(f"{value!r} is not a size such as 512M, 2G or 1048576", param, ctx)
        return int(number) * _SIZE_UNITS[unit]


def _services(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    del ctx, param
    for name in value:
        if name.lower() not in exchange.SERVICE_BY_NAME:
            raise click.BadParameter(
                f"unknown service '{name}'; valid names: {exchange.service_names()}"
            )
    return tuple(name.lower() for name in value)


def _complete_services(ctx: click.Context, param: click.Parameter, typed: str) -> list[str]:
    """Shell completion of --service: the names that start with what is typed."""
    del ctx, param
    return [name for name in exchange.SERVICE_BY_NAME if name.startswith(typed.lower())]


def _site(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A site's name; one trailing slash is tolerated, as in location paths."""
    del ctx, param
    name = value.removesuffix("/")
    if not name.strip():
        raise click.BadParameter(exchange.BLANK_SITE.format(site=value))
    if _undecodable(name):
        raise click.BadParameter(
            f"{value!r} is not UTF-8 text (bytes the terminal's encoding cannot read): "
            "type the site's name as applicationHost.config spells it"
        )
    if "/" in name:  # IIS forbids it in a site name: a path was meant
        site = name.partition("/")[0]
        raise click.BadParameter(
            f"{value!r} is a path: --site takes a site name, which has no '/' (here {site!r}); "
            "`confedit offload --path` takes paths"
        )
    return name


def _undecodable(text: str) -> bool:
    """Whether `text` holds bytes of the command line that did not decode (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _not_empty(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A value that names something. An empty one (`-o "$OUT"` with OUT unset) ran as if the
    option were left out: a preview instead of a file, a gate without its --since check. A
    blank one (`-o "$OUT "`) named a file ' ' or a path ' ': no name a user means (`./ `
    still names such a file)."""
    del ctx
    if value is not None and not value.strip():
        empty = "an empty" if value == "" else "a blank"
        raise click.BadParameter(
            f"{empty} {param.metavar} names nothing (an unset shell variable?); name one, or "
            "leave out the option"
        )
    return value


def _output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A file to write, or '-' for stdout. /dev/stdout (and /dev/fd/1, /proc/self/fd/1) is
    stdout itself and is written like '-': as a file, stdout redirected with `>>` lost what
    it held, and `{ echo header; confedit ...; } > all.txt` its header, the new file being
    renamed over the one stdout writes to."""
    named = _not_empty(ctx, param, value)
    return "-" if named in STDOUT_NAMES else named


def _paths(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """Each --path given names something, as _not_empty asks of one value."""
    for path in value:
        _not_empty(ctx, param, path)
    return value


def _folder(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """--output-dir or --runbook-dir as a Path; an empty one is refused before it becomes '.'."""
    named = _not_empty(ctx, param, value)
    if named is None:
        return None
    click.Path(file_okay=False).convert(named, param, ctx)  # refuses a file's name
    if is_link(named) and not is_folder(named):
        # Else making it fails with EEXIST ("File exists") for each file: the link is there,
        # the folder is not.
        raise click.BadParameter(
            f"{named} is a symbolic link to {Path(named).readlink()}, which does not exist; create "
            "that folder, or name another"
        )
    return Path(named)


_SITE = click.option(
    "--site",
    metavar="NAME",
    default=exchange.FRONT_END_SITE,
    show_default=True,
    callback=_site,
    help="The front-end site.",
)


@dataclass
class _Run:
    """How to report, shared by the commands."""

    fmt: str
    debug: bool
    name: str | None = None
    command: str = "offload"
    writes: bool = False  # whether the run writes files, for an interruption to speak of them

    def fail(self, error: ConfeditError) -> int:
        if self.fmt == "json" and not isinstance(error, StdoutFailed):
            self._json_report(error)
        click.echo(str(error), err=True)
        return int(error.exit_code)

    def _json_report(self, error: ConfeditError) -> None:
        from confedit import report  # noqa: PLC0415 - it loads the engine: JSON errors only

        render = report.audit_error_json if self.command == "audit" else report.error_json
        try:
            print_json(render(error, self.name, int(error.exit_code)))
        except (BrokenPipeError, StdoutFailed):  # the error, on stderr, stays the run's answer
            silence_stdout()

    def crash(self, error: BaseException) -> int:
        """A bug: reported like any error (a JSON report too), with its exit code."""
        code = self.fail(InternalError.of(error, debug=self.debug))
        if self.debug:
            traceback.print_exc()
        return code


class _Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a CI runner's timeout) or SIGHUP (the terminal closed, an SSH session
    lost), raised like Ctrl-C so that the same cleanup runs: temporary files removed, worker
    processes stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame: object) -> None:
    del frame
    raise _Terminated(signum)


def _guarded(run: _Run, action: Callable[[], int]) -> None:
    """Run a command body; map every error to its message and exit code."""
    with _sigterm_as_interrupt():
        code = _run_mapped(run, action)
    sys.exit(code)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise _Terminated while the command runs (in the main thread, the
    only one that can take signals); the handlers before them come back afterwards. A SIGHUP
    ignored from the start (`nohup`) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = [signal.SIGTERM]
    hangup = getattr(signal, "SIGHUP", None)  # not on Windows
    if hangup is not None and signal.getsignal(hangup) != signal.SIG_IGN:
        caught.append(hangup)
    previous = {signum: signal.signal(signum, _terminate) for signum in caught}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_mapped(run: _Run, action: Callable[[], int]) -> int:
    try:
        code = action()
        if stdout_open():  # a run that needs stdout has refused to start without it
            sys.stdout.flush()  # a full stdout is found here, not at the interpreter's exit
    except ConfeditError as error:
        if run.debug:
            traceback.print_exc()
        code = run.fail(error)
    except KeyboardInterrupt as interrupt:
        code = _interrupted(interrupt, writes=run.writes)
    except BrokenPipeError:
        code = _stdout_closed()
    except click.UsageError as error:
        if run.fmt != "json":
            raise  # click prints it with the usage line
        code = run.fail(UsageProblem(error.format_message()))
    except (click.exceptions.Exit, click.ClickException):
        raise
    except OSError as error:
        if error.filename is not None or error.errno not in _STREAM_ERRORS:
            code = run.crash(error)
        else:  # confedit's own files fail as WriteFailed, stderr never fails (_Commentary)
            silence_stdout()
            code = run.fail(StdoutFailed(error.strerror or str(error)))
    except Exception as error:
        code = run.crash(error)
    return code


# Errors of a write to a stream: a full disk or quota, a file too large, an I/O error.
_STREAM_ERRORS: Final = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF}


def _interrupted(interrupt: KeyboardInterrupt, *, writes: bool) -> int:
    """Ctrl-C, SIGTERM or SIGHUP: every file is as it was or completely written, no temporary
    file is left (said only by a command that writes files); the exit code is the shell's for
    the signal (130, 143, 129)."""
    remove_temporary_files()  # those whose `finally` the signal came before (see there)
    sig = interrupt.signum if isinstance(interrupt, _Terminated) else signal.SIGINT
    said = "interrupted"
    if writes:
        said += ": files not yet written were left as they were; no temporary file remains"
    click.echo(said, err=True)
    return 128 + int(sig)


def _stdout_closed() -> int:
    """stdout was closed early (`confedit audit ... | head`): stop quietly, as Unix tools do;
    141 is the shell's code for a process ended by SIGPIPE."""
    silence_stdout()
    return _SIGPIPE_EXIT


_SIGPIPE_EXIT: Final = 128 + 13  # signal.SIGPIPE, which Windows does not define


_DEBUG = click.option(
    "--debug", is_flag=True, help="Show a traceback for errors (for bug reports)."
)
_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Report format on stdout (json: one report, also on errors).",
)


def _color(what: str) -> Callable[[FC], FC]:
    """--color, saying what the command colours: offload prints a diff, audit tables."""
    return click.option(
        "--color",
        type=click.Choice(style.CHOICES),
        default="auto",
        show_default=True,
        help=f"Colour {what} (auto: on a terminal, unless NO_COLOR is set).",
    )


_JOBS = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Work on N files at once (default: the number of CPUs).",
)


class _NamedPath(click.Path):
    """A CONFIG that names something: click makes an empty one Path('.'), and `confedit offload
    --in-place "$CONFIG"` with CONFIG unset searched the current folder and rewrote its files.
    Kept as typed (a str): a Path drops a trailing slash, and `a.config/` is not `a.config`
    (see files.named_as_folder)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "":
            self.fail(
                "an empty CONFIG names nothing (an unset shell variable?); name a file or a folder",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


def _refuse_named_as_folder(name: str, *, many: bool) -> None:
    """A run over one file stops, before anything is read or written, if the file is named as a
    folder (`a.config/`); over several, that file gets its own line (see batch.find_inputs)."""
    if not many and (problem := named_as_folder(name)):
        raise InvalidInput(problem, source=name)


def _one_name(typed: str, *, many: bool) -> str | None:
    """The file's name in the error report of a run over one file: its Path's, except for a file
    named as a folder, whose Path lost the slash (see files.named_as_folder); None over several."""
    if many:
        return None
    return typed if named_as_folder(typed) else str(Path(typed))


_CONFIGS = click.argument(
    "config_names",
    metavar="CONFIG...",
    nargs=-1,
    required=True,
    # readable=False: an unreadable file is that file's error (exit 4), not a usage error
    type=_NamedPath(path_type=str, readable=False),
)
_MAX_SIZE = click.option(
    "--max-size",
    type=_Size(),
    default=f"{DEFAULT_MAX_SIZE >> 20}M",  # converted by _Size; shown as written
    show_default=True,
    help="Treat a larger input as bad input (exit 4), before reading it.",
)


class _Main(click.Group):
    """click's group, except that Ctrl-C before a command takes over (while options are read)
    exits 130 like any interrupt: click would say "Aborted!" and exit 1, the code of "--check
    found work"."""

    def main(  # click's overloads, in one signature
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        with _standard_streams():
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except click.exceptions.Abort:
                code = _interrupted(KeyboardInterrupt(), writes=False)  # no command has run
            except click.ClickException as error:
                error.show()
                code = error.exit_code
            sys.exit(code if isinstance(code, int) else 0)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _click_writing():  # --help, --version
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _click_writing():  # a command's --help (a command's own run is _guarded)
            return super().invoke(ctx)


@contextlib.contextmanager
def _click_writing() -> Iterator[None]:
    """What click writes on stdout itself (the help, the version) fails as a command's output
    does: a closed pipe ends quietly with 141, where click exits 1 (the code of "--check found
    work"), and a full disk is one line and exit 3, where click shows a traceback."""
    try:
        yield
    except BrokenPipeError:
        raise click.exceptions.Exit(_stdout_closed()) from None
    except OSError as error:
        if error.filename is not None or error.errno not in _STREAM_ERRORS:
            raise
        silence_stdout()
        failed = StdoutFailed(error.strerror or str(error))
        click.echo(str(failed), err=True)
        raise click.exceptions.Exit(int(failed.exit_code)) from None


@contextlib.contextmanager
def _standard_streams() -> Iterator[None]:
    """The streams as a command uses them: stderr cannot fail (see _Commentary), and stdout
    writes a file name's bytes as they are, whatever the locale. (Python does so only in the C
    and C.UTF-8 locales: in en_US.UTF-8 a table naming a file whose name is not UTF-8 would
    stop the run.) stderr keeps its `\\udcff` escapes for such bytes, as in the JSON report."""
    if sys.stdout is not None and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    stderr = sys.stderr
    sys.stderr = _Commentary(stderr)
    try:
        yield
    finally:
        sys.stderr = stderr


class _Commentary:
    """sys.stderr while a command runs. What confedit writes there explains the run (progress,
    each file's line, warnings, errors); the exit code says how the run ended, and so do the
    files written. A stderr that is closed (`2>&-`, where Python's sys.stderr is None), full
    (`2>/dev/full`) or gone (a pipe's reader exited) costs only the words: writing to it never
    fails, and the run ends with the exit code of its work, as with stderr intact. Any other
    code would lie: 1 means work found, 3 nothing written."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        # What click reads to decide whether it may write text here as it is.
        self.encoding = getattr(stream, "encoding", None) or "utf-8"
        self.errors = getattr(stream, "errors", None) or "backslashreplace"

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # a text stream: click probes with bytes to tell
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._stream is not None:
            try:
                self._stream.write(text)
            except OSError:
                self._lost()
        return len(text)

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            except OSError:
                self._lost()

    def isatty(self) -> bool:
        return self._stream is not None and self._stream.isatty()

    def fileno(self) -> int:
        if self._stream is None:
            raise io.UnsupportedOperation("stderr is closed")
        return self._stream.fileno()

    def _lost(self) -> None:
        to_null(self._stream)
        self._stream = None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="confedit")
def main() -> None:
    """Offline, byte-exact SSL-offloading edits of IIS applicationHost.config for Exchange.

    Exit codes: 0 done or nothing to do, 1 --check found work (audit: a target
    not offloaded, an Exchange Back End that does not require SSL, servers that
    disagree), 2 usage error, 3 refused for safety (nothing written), 4 invalid
    input (nothing written), 130/143/129 interrupted (Ctrl-C/SIGTERM/SIGHUP),
    141 stdout closed early. Over several files, the most severe of the files'
    codes: 3, then 4, 2, 1, 0.
    """


# Each summary whole: click cuts the docstring's first sentence to fit its list of commands.
@main.command(short_help='Offload SSL: set sslFlags="None" on the Exchange front end.')
@_CONFIGS
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    callback=_output,
    help="Write the patched file here ('-': stdout).",
)
@click.option(
    "--output-dir",
    metavar="DIR",
    callback=_folder,
    help=(
        "Write each patched file below DIR, at its path from the current directory (for a "
        "folder outside it: from that folder's parent, its name included)."
    ),
)
@click.option("--in-place", is_flag=True, help="Rewrite each CONFIG itself (atomically).")
@click.option(
    "--backup", metavar="SUFFIX", help="With --in-place: keep the original as CONFIG+SUFFIX."
)
@click.option(
    "--diff",
    "diff_to",
    metavar="PATH",
    callback=_output,
    help="Write the unified diff here ('-': stdout).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Change no file; exit 1 if anything would change (--diff still works).",
)
@click.option(
    "--runbook",
    metavar="FILE.ps1",
    callback=_output,
    help="Write the operator's PowerShell steps (pools, rollback).",
)
@click.option(
    "--runbook-dir",
    metavar="DIR",
    callback=_folder,
    help="Write each file's runbook below DIR, at the path --output-dir uses, plus '.ps1'.",
)
@click.option(
    "--since",
    metavar="REV",
    callback=_not_empty,
    help="Refuse a file whose Exchange Back End differs from its version at git revision REV.",
)
@click.option(
    "--service",
    "services",
    multiple=True,
    callback=_services,
    shell_complete=_complete_services,
    metavar="NAME",
    help=f"Service to offload (repeatable): {exchange.service_names()}. Default: all but rpc.",
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    metavar="SITE/VDIR",
    callback=_paths,
    help="A location path to offload (repeatable).",
)
@_SITE
@click.option(
    "--include-descendants",
    is_flag=True,
    help="Also offload the paths below a target that would still require SSL.",
)
@click.option(
    "--allow-extended-protection",
    is_flag=True,
    help="Proceed (with a warning) where Extended Protection is on.",
)
@_FORMAT
@_color("the diff on stdout")
@_JOBS
@_MAX_SIZE
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@_DEBUG
def offload(**options: Any) -> None:
    """Set sslFlags="None" on the Exchange front-end virtual directories of CONFIG.

    CONFIG may be several files and folders (searched for applicationHost.config). With none
    of -o, --output-dir, --in-place, --diff or --check, prints the diff and writes nothing.
    """
    # Imported here: `confedit --help` (and shell completion) load nothing heavy.
    from confedit.offload_command import OffloadOptions, run_offload  # noqa: PLC0415

    opts = OffloadOptions(**options)
    name = _one_name(opts.config_names[0], many=opts.many)
    run = _Run(opts.fmt, opts.debug, name, writes=opts.writes_files)

    def validated_run() -> int:
        _refuse_named_as_folder(opts.config_names[0], many=opts.many)
        opts.validate()
        return run_offload(opts)

    _guarded(run, validated_run)


@main.command(short_help="Show the effective SSL policy of the Exchange sites.")
@_CONFIGS
@click.option(
    "--offloaded",
    is_flag=True,
    help=(
        "Report whether each default target is offloaded; exit 1 if one is not, or if the "
        "Exchange Back End does not require SSL."
    ),
)
@click.option(
    "--fleet",
    is_flag=True,
    help=(
        "One matrix of all files (servers x targets); exit 1 if the servers disagree, or if "
        "an Exchange Back End does not require SSL."
    ),
)
@_SITE
@_FORMAT
@_color("the tables")
@_JOBS
@_MAX_SIZE
@click.option(
    "-q", "--quiet", is_flag=True, help="Only errors on stderr (no warnings, progress or summary)."
)
@_DEBUG
def audit(**options: Any) -> None:
    """Show the effective SSL policy of every location of the Exchange sites in CONFIG.

    CONFIG may be several files and folders (searched for applicationHost.config).
    """
    from confedit.audit_command import AuditOptions, run_audit  # noqa: PLC0415 - as in offload()

    opts = AuditOptions(**options)
    name = _one_name(opts.config_names[0], many=opts.many)
    run = _Run(opts.fmt, opts.debug, name, command="audit")

    def checked_run() -> int:
        _refuse_named_as_folder(opts.config_names[0], many=opts.many)
        return run_audit(opts)

    _guarded(run, checked_run)
