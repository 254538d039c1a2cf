"""What `confedit offload` does with files and streams: read, call the library, write, report.

Over several files (or folders), each file is worked on by itself and reported in input order;
then one combined diff and a closing summary. With --jobs above 1 (the default: the number of
CPUs), files are worked on in parallel by worker processes, which take paths and return plain
data; with --jobs 1, one after another in this process (see batch.run_all). A file's errors are
its own: they become its report (exit code included) and never stop the others.

Kept apart from cli.py so that click stays a thin layer and `confedit --help` loads nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import click

from confedit import quick_exit, report, style
from confedit.batch import Input, default_jobs, find_inputs, most_severe, run_all, show_progress
from confedit.command_common import (
    CommonOptions,
    crash,
    echo_err,
    found_inputs,
    paint_note,
    paint_summary,
    read_item,
    require_stdout,
    searched_folders,
    streams_each_file,
)
from confedit.diffing import diff_label
from confedit.engine import Result, offload
from confedit.errors import ConfeditError, ExitCode, StdoutFailed, WriteFailed, shown
from confedit.files import (
    CAN_SYNC_LATER,
    NOTHING_CHANGED,
    STDIN_NAMES,
    Outputs,
    Snapshot,
    check_unchanged,
    is_folder,
    is_link,
    print_json,
    read_input,
    rereading,
    same_file,
    sync_filesystems,
    to_stdout,
    write_file,
)
from confedit.plan import Request

STDIO = "-"
OFFLOAD_GROUPS = ("changed", "unchanged", "refused", "invalid")


@dataclass
class OffloadOptions(CommonOptions):
    output: str | None
    output_dir: Path | None
    in_place: bool
    backup: str | None
    diff_to: str | None
    check: bool
    runbook: str | None
    runbook_dir: Path | None
    since: str | None
    services: tuple[str, ...]
    paths: tuple[str, ...]
    include_descendants: bool
    allow_extended_protection: bool

    @property
    def many(self) -> bool:
        """Several files (or a folder to search): per-file summary lines and one combined diff.
        An output folder (--output-dir, --runbook-dir) is for several files, even if given one."""
        return len(self.configs) > 1 or self.writes_folders or is_folder(self.config)

    @property
    def writes_folders(self) -> bool:
        """Whether this run writes into output folders (--output-dir, --runbook-dir)."""
        return self.output_dir is not None or self.runbook_dir is not None

    def validate(self) -> None:
        """Usage errors (exit 2) that can be seen before reading anything."""
        if self.many:
            self._validate_many()
        if self.output and self.in_place:
            raise click.UsageError("use either -o/--output or --in-place, not both")
        if self.in_place:
            for name in self.config_names:
                _check_rewritable(name)
        if self.backup is not None:
            self._validate_backup(self.backup)
        writes = (self.output, self.output_dir, self.in_place, self.runbook, self.runbook_dir)
        if self.check and any(writes):
            raise click.UsageError(
                "--check writes nothing; drop -o/--output-dir/--in-place/--runbook/--runbook-dir"
            )
        on_stdout = self._on_stdout()
        if len(on_stdout) > 1:
            raise click.UsageError(
                f"{' and '.join(on_stdout)} would {'both' if len(on_stdout) == 2 else 'all'} "
                "write to stdout; send one of them to a file"
            )
        if self.output and self.output != STDIO and same_file(Path(self.output), self.config):
            raise click.UsageError(
                "-o names the input file itself; use --in-place (with --backup) to rewrite it"
            )
        if not self.many:
            _check_destinations(self.destinations(), [self.config], self.backups([self.config]))

    def _validate_backup(self, backup: str) -> None:
        if not self.in_place:
            raise click.UsageError("--backup needs --in-place")
        if not backup.strip():
            raise click.UsageError("--backup needs a non-empty SUFFIX such as .bak")
        if "/" in backup:
            raise click.UsageError(
                f"--backup takes a SUFFIX added to each file's name, such as .bak, with no '/' "
                f"in it (with one, CONFIG+SUFFIX is a path: CONFIG/ is CONFIG itself); got "
                f"{backup!r}"
            )

    def _on_stdout(self) -> list[str]:
        """What this run writes to stdout, by option."""
        on_stdout = [name for name, value in self._named_outputs() if _is_stdout(value)]
        if self.fmt == "json":
            on_stdout.append("--format json")
        elif self.previewing:
            on_stdout.append("the preview diff")
        return on_stdout

    @property
    def uses_stdout(self) -> bool:
        return bool(self._on_stdout())

    def destinations(self) -> list[tuple[str, Path]]:
        """The files named by -o, --diff and --runbook (not stdout), by option."""
        return [(option, Path(value)) for option, value in self._named_outputs() if value != STDIO]

    @property
    def writes_files(self) -> bool:
        """Whether this run writes any file (stdout is not one)."""
        return self.in_place or self.writes_folders or bool(self.destinations())

    def _named_outputs(self) -> list[tuple[str, str]]:
        named = (("-o", self.output), ("--diff", self.diff_to), ("--runbook", self.runbook))
        return [(option, value) for option, value in named if value]

    def backups(self, inputs: list[Path]) -> list[tuple[str, Path]]:
        """The backup files --in-place --backup writes."""
        if not (self.in_place and self.backup):
            return []
        return [("--backup", Path(f"{config}{self.backup}")) for config in inputs]

    def _validate_many(self) -> None:
        if self.output and self.output_dir is not None:
            raise click.UsageError("use either -o/--output or --output-dir, not both")
        if self.runbook and self.runbook_dir is not None:
            raise click.UsageError("use either --runbook or --runbook-dir, not both")
        several = len(self.configs) > 1 or is_folder(self.config)
        if (self.output or self.runbook) and not several:  # one CONFIG, and a folder option
            one, folder = ("-o", "--runbook-dir") if self.output else ("--runbook", "--output-dir")
            raise click.UsageError(
                f"{one} writes one file and {folder} a folder: use -o with --runbook FILE.ps1, "
                "or --output-dir DIR with --runbook-dir"
            )
        if self.output:
            raise click.UsageError(
                "-o writes one file; with several CONFIGs or a folder, use --output-dir DIR"
            )
        if self.runbook:
            raise click.UsageError(
                "--runbook writes one file; with several CONFIGs or a folder, use --runbook-dir DIR"
            )
        if self.output_dir is not None and self.in_place:
            raise click.UsageError("use either --output-dir or --in-place, not both")

    def request(self) -> Request:
        return Request(
            services=self.services,
            paths=self.paths,
            site=self.site,
            include_descendants=self.include_descendants,
            allow_extended_protection=self.allow_extended_protection,
        )

    @property
    def previewing(self) -> bool:
        """Whether the diff is previewed on stdout: no output, --diff or --check, in text."""
        asked = self.output or self.output_dir or self.in_place or self.diff_to or self.check
        return not asked and self.fmt == "text"

    @property
    def color_stdout(self) -> bool:
        return style.enabled(self.color, sys.stdout)


def _check_rewritable(config: str) -> None:
    """A usage error if --in-place cannot rewrite `config`: stdin, which has no name to rename
    a new file to or to put a backup beside (/dev/stdin redirected from a file was rewritten
    through the link, its backup written to /dev/stdin.bak), or something that is not a regular
    file (a FIFO, a device). A folder is searched; a file that cannot be looked at is its own
    error, when read (so is a file named as a folder, `a.config/`, which os.stat refuses).
    Stdin is recognised by its Path, which drops what does not change the name (`/dev//stdin`,
    `/dev/./stdin`)."""
    if str(Path(config)) in STDIN_NAMES:
        raise click.UsageError(
            f"--in-place rewrites a file by its name, and {config} is stdin: name the file"
        )
    try:
        mode = os.stat(config).st_mode  # noqa: PTH116 - Path(config) would drop a trailing slash
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise click.UsageError(
            f"--in-place rewrites a regular file, and {config} is not one; use -o to write the "
            "result elsewhere"
        )


def _check_destinations(
    destinations: list[tuple[str, Path]],
    inputs: list[Path],
    produced: Sequence[tuple[str, Path]] = (),
) -> None:
    """Usage errors: a file named by an option (`destinations`) that is one of the inputs, or
    that another output also writes: another option's, a backup, a file below --output-dir or
    --runbook-dir (`produced`); or two of `produced` that are one file."""
    for option, path in destinations:
        for config in inputs:
            if same_file(path, config):
                raise click.UsageError(f"{option} names the input file {config}; name another file")
    if len({option for option, _ in [*produced, *destinations]}) < 2:
        return  # only the files of two options are compared: with one, there is nothing to do
    first: dict[str, str] = {}
    for option, path in produced:
        # Two files' outputs can meet only across options: with --runbook-dir the same folder
        # as --output-dir, the runbook of a.config is the output of an input named a.config.ps1.
        other = first.setdefault(os.path.realpath(path), option)
        if other != option:
            raise click.UsageError(
                f"{other} and {option} would both write {path}; give them different folders"
            )
    for option, path in destinations:
        other = first.setdefault(os.path.realpath(path), option)
        if other != option:
            raise click.UsageError(f"{other} and {option} both write {path}; name another file")


def _check_backups(backup: str, inputs: list[Path], named: list[Path]) -> None:
    """A usage error if CONFIG+SUFFIX of one input is a file `named` as one (the inputs, and
    those named as folders): its original would be lost."""
    paths = {os.path.realpath(config) for config in named}
    for config in inputs:
        if os.path.realpath(f"{config}{backup}") in paths:
            raise click.UsageError(
                f"--backup {backup} would write the backup of {config} over the input "
                f"{config}{backup}; choose another suffix"
            )


@contextlib.contextmanager
def _written_before(written: bool) -> Iterator[None]:
    """Around what goes to stdout once files are written: if stdout fails then, the error says
    that the files were written, instead of letting exit 3 pass for 'nothing written'."""
    try:
        yield
    except StdoutFailed as error:
        if written:
            error.message += "; the files were written"
        raise


def run_offload(opts: OffloadOptions) -> int:
    """The offload command; returns the exit code."""
    require_stdout(opts.uses_stdout)
    if opts.many:
        return _run_offload_many(opts)
    snapshot = read_input(opts.config, opts.max_size)
    if opts.since:
        _check_since(opts.config, snapshot.data, opts.since, str(opts.config))
    result = offload(snapshot.data, opts.request(), name=str(opts.config))
    diff = result.diff(diff_label(opts.config))
    _, code = _result_status(result, opts.check)

    # The summary says "changed" once the patched config is out: to -o (a file or stdout) or
    # over the input; a --diff or a --runbook alone leaves it "to change".
    config_out = not opts.check and bool(opts.output or opts.in_place)
    runbook = _write_files(opts, snapshot, result, diff)
    wrote_files = bool(opts.destinations()) or bool(opts.in_place and result.changed)
    with _written_before(wrote_files):  # stdout comes after the files
        _print_outputs(opts, result, diff, runbook)
        _report(opts, result, diff, written=config_out)
    quick_exit.keep(snapshot, result, diff)
    return int(code)


def _write_files(opts: OffloadOptions, snapshot: Snapshot, result: Result, diff: bytes) -> bytes:
    """Write the files asked for (-o, --in-place and its backup, --diff, --runbook), all of them
    or none (see Outputs); returns the runbook (empty without --runbook), for stdout too."""
    # Any file written from the input is refused if the input changed: a diff or a runbook of a
    # version the file no longer has would be applied to the one it has now.
    with rereading(snapshot) if opts.writes_files else contextlib.nullcontext() as unchanged:
        runbook = _runbook(result, str(opts.config)) if opts.runbook else b""
        outputs = ((opts.output, result.output), (opts.diff_to, diff), (opts.runbook, runbook))
        with Outputs(unchanged) as files:
            if opts.in_place and result.changed:
                _stage_in_place(files, snapshot, result, opts.backup)
            for destination, data in outputs:
                if destination and destination != STDIO:
                    files.add(Path(destination), data)
    return runbook


def _print_outputs(opts: OffloadOptions, result: Result, diff: bytes, runbook: bytes) -> None:
    """The outputs sent to stdout (`-`), and the preview diff."""
    if opts.output == STDIO:
        to_stdout(result.output)
    if _diff_on_stdout(opts):
        _emit_diff(STDIO, diff, color=opts.color_stdout)
    if opts.runbook == STDIO:
        to_stdout(runbook)


def _is_stdout(destination: str) -> bool:
    """`-` (which /dev/stdout and its other names became: see cli._output), or the file stdout
    is redirected to.
    Only a stdout that keeps what is written counts (a file or a pipe): two writers into
    /dev/null or a terminal spoil nothing a program reads."""
    if destination == STDIO:
        return True
    try:
        out = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout closed (`>&-`), or captured
        return False
    if not (stat.S_ISREG(out.st_mode) or stat.S_ISFIFO(out.st_mode)):
        return False
    try:
        return os.path.samestat(Path(destination).stat(), out)
    except OSError:  # not there yet
        return False


def _stage_in_place(
    outputs: Outputs, snapshot: Snapshot, result: Result, backup: str | None
) -> None:
    """Stage the input file's new bytes, after its backup (CONFIG + the suffix) if asked for."""
    if backup:
        copy = Path(f"{snapshot.path}{backup}")
        if is_link(copy):  # writing through it would overwrite whatever it points to
            raise WriteFailed(
                "is a symbolic link; confedit writes a backup only as a file of its own: "
                "remove the link or choose another --backup suffix",
                source=str(copy),
            )
        outputs.add(copy, snapshot.data, copy_of=snapshot.path)
    outputs.add(snapshot.path, result.output)


def _emit_diff(destination: str, diff: bytes, *, color: bool) -> None:
    """Write a diff; coloured only when it goes to stdout and colour is on."""
    if destination == STDIO:
        to_stdout(style.paint_diff(diff) if color else diff)
    else:
        write_file(Path(destination), diff)


def _result_status(result: Result, check: bool) -> tuple[str, ExitCode]:
    """The report status and exit code of a completed offload."""
    if check and result.changed:
        return "work-found", ExitCode.WORK_FOUND
    return ("changed" if result.changed else "unchanged"), ExitCode.OK


def _report(opts: OffloadOptions, result: Result, diff: bytes, *, written: bool) -> None:
    if opts.fmt == "json":
        print_json(_result_json(result, diff, opts.check))
    if opts.quiet:
        return
    for line in report.target_lines(result) + report.finding_lines(result):
        click.echo(line, err=True)
    click.echo(report.summary_line(result, str(opts.config), written=written), err=True)


def _result_json(result: Result, diff: bytes, check: bool) -> dict[str, Any]:
    """The JSON report of a completed offload."""
    status, code = _result_status(result, check)
    text = diff.decode("utf-8", "surrogateescape")  # a name's bytes kept (see json_bytes)
    return report.result_json(result, diff=text, status=status, exit_code=int(code))


# --- several files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSettings:
    """What to do with each file (the same for all of them)."""

    request: Request
    check: bool
    in_place: bool
    backup: str | None
    output_dir: Path | None
    runbook_dir: Path | None
    since: str | None
    max_size: int
    want_diff: bool  # each file's diff is needed (shown, written or in the JSON report)
    writes_files: bool  # any file is written from the inputs (see OffloadOptions.writes_files)
    want_json: bool
    debug: bool


@dataclass(frozen=True)
class FileReport:
    """What happened to one file."""

    name: str  # the file's name in the report, as given (see Input.name)
    status: str  # as in the JSON report: changed, unchanged, work-found, or the error's kind
    exit_code: int
    headline: str  # one line (a refusal may add its reasons on lines below)
    notes: tuple[str, ...]  # warnings and notes, one per line
    diff: bytes
    document: dict[str, Any] | None  # the JSON report, when asked for

    @property
    def failed(self) -> bool:
        return self.exit_code not in (ExitCode.OK, ExitCode.WORK_FOUND)


def offload_file(settings: FileSettings, item: Input) -> FileReport:
    """Offload one file as the settings say, and write its outputs; never raises."""
    name = item.name
    try:
        snapshot = read_item(item, settings.max_size)
        if settings.since:
            _check_since(item.path, snapshot.data, settings.since, name)
        result = offload(snapshot.data, settings.request, name=name)
        _write_outputs(settings, item, snapshot, result)
        diff = result.diff(item.label) if settings.want_diff else b""
    except ConfeditError as error:
        return _failed(settings, name, error)
    except Exception as error:
        return _crashed(settings, item, error)
    return _file_report(settings, name, result, diff)


def _write_outputs(settings: FileSettings, item: Input, snapshot: Snapshot, result: Result) -> None:
    """Write a file's outputs (its patched config, its backup, its runbook), all or none, unless
    its input changed since it was read."""
    # Made before anything is written: a runbook refused leaves the file's outputs unwritten.
    wanted = settings.runbook_dir is not None
    runbook = _runbook(result, item.name, option="--runbook-dir") if wanted else None
    if not _writes_own_files(settings):
        if settings.writes_files:  # the run's combined --diff, written from this input
            check_unchanged(snapshot)
        return
    # New files in an output folder are synced to disk once, at the end of the run
    # (_run_offload_many); an input replaced in place, and its backup, file by file.
    durable = settings.in_place or not CAN_SYNC_LATER
    with (
        rereading(snapshot) as unchanged,  # as for one file: see _write_files
        _folders_undone_on_error() as made,
        Outputs(unchanged, durable=durable) as outputs,
    ):
        if settings.in_place and result.changed:
            _stage_in_place(outputs, snapshot, result, settings.backup)
        if settings.output_dir is not None:
            destination = settings.output_dir / item.label
            _stage_in_folder(
                outputs, destination, result.output, item.path, made, mode_from=item.path
            )
        if settings.runbook_dir is not None and runbook is not None:
            destination = _runbook_path(settings.runbook_dir, item)
            _stage_in_folder(outputs, destination, runbook, item.path, made, option="--runbook-dir")


def _file_report(settings: FileSettings, name: str, result: Result, diff: bytes) -> FileReport:
    """The report of a file offloaded (and its outputs written)."""
    status, code = _result_status(result, settings.check)
    document = _result_json(result, diff, settings.check) if settings.want_json else None
    return FileReport(
        name=name,
        status=status,
        exit_code=int(code),
        headline=report.summary_line(result, name, written=_writes_config(settings)),
        notes=tuple(report.finding_lines(result)),
        diff=diff,
        document=document,
    )


# Imported where used: only --since runs git, and only a runbook needs hashlib; the modules
# cost every other run about 2 and 4 ms of start-up.


def _check_since(path: Path, data: bytes, revision: str, name: str) -> None:
    from confedit.baseline import check_back_end_since  # noqa: PLC0415

    check_back_end_since(path, data, revision, name)


def _runbook(result: Result, name: str, *, option: str = "--runbook") -> bytes:
    from confedit.runbook import render_runbook  # noqa: PLC0415

    return render_runbook(result, name, option=option)


def _writes_config(settings: FileSettings) -> bool:
    """Whether each file's patched config is written (--in-place, --output-dir); a --runbook-dir
    or the combined --diff are other files (see FileSettings.writes_files)."""
    return settings.in_place or settings.output_dir is not None


def _writes_own_files(settings: FileSettings) -> bool:
    """Whether each file's own outputs are written with it: its patched config or its runbook
    (the combined --diff is the run's, written at the end)."""
    return _writes_config(settings) or settings.runbook_dir is not None


def _runbook_path(runbook_dir: Path, item: Input) -> Path:
    """Where --runbook-dir writes a file's runbook: at the file's path below an output folder
    (see batch.label_of), with `.ps1` added, so that it names the file it was written for."""
    return runbook_dir / f"{item.label}.ps1"


@contextlib.contextmanager
def _folders_undone_on_error() -> Iterator[list[Path]]:
    """The folders a file's outputs needed and this run made, outermost first: removed again if
    the file fails (a folder that is not empty, another file's by then, stays)."""
    made: list[Path] = []
    try:
        yield made
    except BaseException:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _stage_in_folder(
    outputs: Outputs,
    destination: Path,
    data: bytes,
    source: Path,
    made: list[Path],
    *,
    mode_from: Path | None = None,
    option: str = "--output-dir",
) -> None:
    """Stage `data` at `destination` below an output folder, making the folders it needs (and
    adding those it made to `made`)."""
    missing = []
    for folder in (destination.parent, *destination.parent.parents):
        if is_folder(folder):  # not pathlib's exists(): it raises for a path over PATH_MAX
            break
        missing.append(folder)
    made.extend(reversed(missing))
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # Named by the input, as every other line of the run: the folder is in the message.
        raise WriteFailed(
            f"cannot create the output folder {destination.parent}: {exc.strerror or exc}; "
            f"check that {option} can be written to",
            source=str(source),
        ) from None
    if same_file(destination, source):
        # Checked when the run started: only a folder changed since (replaced by a link to the
        # inputs' folder) leads here, and the input would be lost without a backup.
        raise WriteFailed(
            f"{option} would write {destination} over the input itself: the output folder "
            f"changed during the run{NOTHING_CHANGED}",
            source=str(source),
        )
    outputs.add(destination, data, mode_from=mode_from)


def _failed(settings: FileSettings, name: str, error: ConfeditError) -> FileReport:
    code = int(error.exit_code)
    document = report.error_json(error, name, code) if settings.want_json else None
    return FileReport(name, error.kind, code, str(error), (), b"", document)


def _crashed(settings: FileSettings, item: Input, error: BaseException) -> FileReport:
    writes = _writes_own_files(settings)
    failure = crash(item, error, settings.debug, writes=writes)
    return _failed(settings, item.name, failure)


def _run_offload_many(opts: OffloadOptions) -> int:
    """`confedit offload` over several files; returns the run's exit code."""
    inputs = found_inputs(
        opts.config_names,
        style.enabled(opts.color, sys.stderr),
        quiet=opts.quiet,
        skip=opts.output_dir,
    )
    _check_files_destinations(opts, inputs)
    if opts.output_dir is not None:
        _warn_unsearched(opts, opts.output_dir, inputs)
    color = style.enabled(opts.color, sys.stderr)
    streams = streams_each_file()
    reports = _offload_all(opts, inputs, color=color, streams=streams)
    unsynced = _sync_output_folders(opts, inputs)
    unwritten = _write_diff_file(opts, reports)
    run_errors = [error for error in (unsynced, unwritten) if error is not None]
    codes = [file.exit_code for file in reports] + [error.exit_code for error in run_errors]
    code = most_severe(codes)
    try:
        _report_offloads(opts, reports, code, _run_error(run_errors), color=color, streams=streams)
    finally:  # last, under the report they qualify, even if writing the report failed
        for error in run_errors:
            echo_err(style.paint(str(error), "bad", color), color)
    return code


def _offload_all(
    opts: OffloadOptions, inputs: list[Input], *, color: bool, streams: bool
) -> list[FileReport]:
    """Each file offloaded, in input order; with `streams`, each file's lines shown as it is
    done. If the run is interrupted, the outputs written by then are flushed to disk."""
    settings = _file_settings(opts)
    progress = "offloading" if show_progress(len(inputs), opts.quiet) else None
    done: list[FileReport] = []  # as reported, in input order

    def reported(file: FileReport) -> None:
        done.append(file)
        if streams:
            _print_file_report(opts, color, file)

    try:
        return run_all(
            partial(offload_file, settings),
            inputs,
            jobs=opts.jobs or default_jobs(),
            crashed=partial(_crashed, settings),
            progress=progress,
            on_result=reported,
        )
    except BaseException:  # Ctrl-C or SIGTERM: what was written is flushed all the same
        with contextlib.suppress(OSError):  # best effort: the run ends interrupted either way
            _flush_outputs(opts, inputs[: len(done)])
        raise


def _file_settings(opts: OffloadOptions) -> FileSettings:
    """What to do with each file, as the options say (a worker process gets this, not them)."""
    return FileSettings(
        request=opts.request(),
        check=opts.check,
        in_place=opts.in_place,
        backup=opts.backup,
        output_dir=opts.output_dir,
        runbook_dir=opts.runbook_dir,
        since=opts.since,
        max_size=opts.max_size,
        want_diff=_shows_diff(opts) or opts.fmt == "json",
        writes_files=opts.writes_files,
        want_json=opts.fmt == "json",
        debug=opts.debug,
    )


def _run_error(errors: list[WriteFailed]) -> WriteFailed | None:
    """The error of the run itself for the JSON report, which has room for one."""
    if len(errors) < 2:
        return errors[0] if errors else None
    return WriteFailed("; ".join(str(error) for error in errors))


def _report_offloads(
    opts: OffloadOptions,
    reports: list[FileReport],
    code: int,
    run_error: WriteFailed | None,
    *,
    color: bool,
    streams: bool,
) -> None:
    """The combined diff on stdout, the JSON report, each file's lines (if not shown as they
    came) and the summary."""
    wrote_files = _wrote_files(opts, reports)
    if _diff_on_stdout(opts):
        with _written_before(wrote_files):
            _emit_diff(STDIO, b"".join(r.diff for r in reports), color=opts.color_stdout)
    counts = report.summary_counts([r.status for r in reports], OFFLOAD_GROUPS)
    if opts.fmt == "json":
        files = [r.document for r in reports if r.document is not None]
        with _written_before(wrote_files):
            document = report.batch_json(report.BATCH_SCHEMA_ID, files, counts, code, run_error)
            print_json(document)
    if not streams:
        for file in reports:
            _print_file_report(opts, color, file)
    _print_offload_summary(opts, counts, color)


def _flush_outputs(opts: OffloadOptions, items: list[Input]) -> None:
    """Flush the outputs of `items` to disk (see Outputs' durable=False), and the output
    folder's filesystem. A failed file has none, or an earlier run's: syncing it costs nothing
    more, and a file whose worker died may have been written. Raises OSError."""
    if not CAN_SYNC_LATER:
        return
    folders = [folder for folder in (opts.output_dir, opts.runbook_dir) if folder is not None]
    written = [path for _, path in _in_folders(opts, items)]
    if folders:
        sync_filesystems([*folders, *written])


def _in_folders(opts: OffloadOptions, items: list[Input]) -> list[tuple[str, Path]]:
    """The files written for `items` below --output-dir and --runbook-dir, by option."""
    written = []
    if opts.output_dir is not None:
        written += [("--output-dir", opts.output_dir / item.label) for item in items]
    if opts.runbook_dir is not None:
        written += [("--runbook-dir", _runbook_path(opts.runbook_dir, item)) for item in items]
    return written


def _sync_output_folders(opts: OffloadOptions, inputs: list[Input]) -> WriteFailed | None:
    """Make the files written to --output-dir and --runbook-dir durable before the run reports
    success; the error if the kernel says that failed."""
    try:
        _flush_outputs(opts, inputs)
    except OSError as exc:
        return WriteFailed(
            f"the files were written, but flushing them to disk failed: {exc.strerror or exc}; "
            "run again",
            source=str(opts.output_dir or opts.runbook_dir),
        )
    return None


def _warn_unsearched(opts: OffloadOptions, output_dir: Path, inputs: list[Input]) -> None:
    """A warning for each config file in the output folder, which the search of a folder that
    holds it skipped, that is not where this run writes its outputs: a server's own config,
    most likely, that would otherwise go unmentioned."""
    real = Path(os.path.realpath(output_dir))
    searched = searched_folders(opts.configs)
    if not is_folder(real) or not any(real.is_relative_to(folder) for folder in searched):
        return
    known = {os.path.realpath(output_dir / item.label) for item in inputs}  # written here
    known |= {os.path.realpath(item.path) for item in inputs}  # DIR was searched after all
    color = style.enabled(opts.color, sys.stderr)
    warning = style.paint("warning:", "warn", color)
    for found in find_inputs([output_dir]):
        if found.problem is None and os.path.realpath(found.path) not in known:
            echo_err(
                f"{warning} {shown(str(found.path))} is not offloaded: it is inside "
                f"--output-dir {shown(str(output_dir))}, which is not searched",
                color,
            )


def _write_diff_file(opts: OffloadOptions, reports: list[FileReport]) -> WriteFailed | None:
    """The combined --diff file comes last, when every file is done. If it cannot be written,
    that is the run's own error: every file is still reported (a pipeline must learn which were
    written), and the error says whether the files were. A run in which every file failed
    writes none, as a run over one file that fails: an earlier diff there is not emptied."""
    if not opts.diff_to or opts.diff_to == STDIO or all(r.failed for r in reports):
        return None
    try:
        _emit_diff(opts.diff_to, b"".join(r.diff for r in reports), color=False)
    except WriteFailed as error:
        if _wrote_files(opts, reports):
            reason = error.message.removesuffix(NOTHING_CHANGED)
            error.message = f"{reason}; the files were written, the diff was not"
        return error
    return None


def _wrote_files(opts: OffloadOptions, reports: list[FileReport]) -> bool:
    return (opts.in_place or opts.writes_folders) and any(not r.failed for r in reports)


def _check_files_destinations(opts: OffloadOptions, inputs: list[Input]) -> None:
    """Usage errors that need the list of files: two files with one name in the diff or the
    output folder, or an output that would overwrite its input."""
    if _shows_diff(opts) or opts.writes_folders:
        _check_labels(inputs)
    # A file named as a folder (`a.config/`) is neither read nor written: what would be
    # written for it is not checked. Nor is anything written over it, by an option or by
    # another file's output: the file was named as an input.
    files = [item for item in inputs if item.typed is None]
    named = [item.path for item in inputs]
    produced = opts.backups([item.path for item in files]) + _in_folders(opts, files)
    _check_destinations(opts.destinations(), named, produced)
    if opts.backup:
        _check_backups(opts.backup, [item.path for item in files], named)
    if opts.output_dir is not None:
        _check_output_dir(opts.output_dir, files, inputs)
    if opts.runbook_dir is not None:
        _check_runbook_dir(opts.runbook_dir, files, inputs)


def _check_labels(inputs: list[Input]) -> None:
    """A usage error if two files have one label: one name in the diff or the output folder."""
    first: dict[str, Input] = {}
    for item in inputs:
        other = first.setdefault(item.label, item)
        if other is not item:
            raise click.UsageError(
                f"{other.name} and {item.name} would both be named {item.label!r} in the "
                "diff or the output folder; run confedit from a folder that contains both, "
                "or name the folder that holds them instead of the files"
            )


def _check_output_dir(output_dir: Path, inputs: list[Input], named: list[Input]) -> None:
    """Usage errors: an output of `inputs` that is a file `named` (see _check_backups), or leads
    to one through a symlink. Most often an input inside the output folder: an earlier run's
    output, named again by a glob such as `*/` (its own output lands a folder deeper, another
    file's output over it)."""
    identities = _identities(named)
    overwritten = {item.path: _input_at(output_dir / item.label, identities) for item in inputs}
    for item in inputs:  # the plainest mistake first
        if overwritten[item.path] == item.path:
            raise click.UsageError(
                f"--output-dir would overwrite the input {item.path}; use --in-place"
            )
    folder = os.path.realpath(output_dir) + os.sep
    for item in inputs:
        if (other := overwritten[item.path]) is None:
            continue
        destination = output_dir / item.label
        if os.path.realpath(other).startswith(folder):
            raise click.UsageError(
                f"the input {other} is inside --output-dir {output_dir} (an earlier run's "
                f"output?) and would be overwritten by the output of {item.path}; name the "
                "configs to offload without that folder"
            )
        raise click.UsageError(
            f"--output-dir would write {destination} over the input {other}; "
            "choose another output folder"
        )


def _check_runbook_dir(runbook_dir: Path, inputs: list[Input], named: list[Input]) -> None:
    """A usage error if the runbook of one of `inputs` would be written over a file `named` (see
    _check_backups), or through a symlink to one."""
    identities = _identities(named)
    for item in inputs:
        runbook = _runbook_path(runbook_dir, item)
        if (other := _input_at(runbook, identities)) is not None:
            raise click.UsageError(
                f"--runbook-dir would write {runbook} over the input {other}; choose another folder"
            )


def _identities(inputs: list[Input]) -> dict[tuple[int, int], Path]:
    """Each input by its device and inode, which every name of a file leads to."""
    identities: dict[tuple[int, int], Path] = {}
    for item in inputs:
        with contextlib.suppress(OSError):
            info = item.path.stat()
            identities[(info.st_dev, info.st_ino)] = item.path
    return identities


def _input_at(destination: Path, identities: dict[tuple[int, int], Path]) -> Path | None:
    """The input that `destination` is (or leads to through a symlink), if any."""
    try:
        info = destination.stat()
    except OSError:
        return None  # not there yet (or not reachable: writing it will say so)
    return identities.get((info.st_dev, info.st_ino))


def _diff_on_stdout(opts: OffloadOptions) -> bool:
    """Whether the diff goes to stdout: `--diff -`, or the preview."""
    return opts.diff_to == STDIO or opts.previewing


def _shows_diff(opts: OffloadOptions) -> bool:
    """Whether the combined diff is written anywhere (--diff, or the preview on stdout)."""
    return bool(opts.diff_to) or opts.previewing


def _print_file_report(opts: OffloadOptions, color: bool, file: FileReport) -> None:
    """A file's line on stderr (its summary, or its error) and its warnings below it."""
    if opts.quiet and not file.failed:
        return
    role = "bad" if file.failed else ("warn" if file.status == "work-found" else None)
    echo_err(style.paint(file.headline, role, color), color)
    if not opts.quiet:
        for note in file.notes:
            echo_err("  " + paint_note(note, color), color)


def _print_offload_summary(opts: OffloadOptions, counts: dict[str, int], color: bool) -> None:
    if not opts.quiet:
        writes = opts.in_place or opts.output_dir is not None
        found = ("needs work", "need work") if opts.check else ("to change", "to change")
        names = {} if writes else {"changed": found}
        echo_err(paint_summary(report.summary_text(counts, names), counts, color), color)
