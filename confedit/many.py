"""What `offload` and `audit` do with several files (or folders): each file is worked on by
itself, in parallel, and reported in input order; then one combined diff and a closing summary.

A file's errors are its own: they become its report (exit code included) and never stop the
others. Workers run in other processes, so they take paths and return plain data.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import click

from confedit import report, style
from confedit.auditing import AuditReport, audit, render_table, unlocked_warnings
from confedit.baseline import check_back_end_since
from confedit.batch import (
    Input,
    WorkerDied,
    default_jobs,
    find_inputs,
    most_severe,
    on_terminal,
    run_all,
    show_progress,
)
from confedit.commands import (
    STDIO,
    AuditOptions,
    OffloadOptions,
    check_backups,
    check_destinations,
    emit_diff,
    result_status,
    stage_in_place,
    written_before,
)
from confedit.engine import offload
from confedit.errors import (
    ConfeditError,
    ExitCode,
    InternalError,
    InvalidInput,
    WorkerLost,
    WriteFailed,
    shown,
)
from confedit.files import (
    CAN_SYNC_LATER,
    NOTHING_CHANGED,
    Outputs,
    Snapshot,
    check_same_stat,
    check_unchanged,
    print_json,
    read_input,
    sync_filesystems,
)
from confedit.fleet import fleet_of, render_fleet
from confedit.plan import Request

OFFLOAD_GROUPS = ("changed", "unchanged", "refused", "invalid")
AUDIT_GROUPS = ("offloaded", "not_offloaded", "invalid")


# --- offload -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSettings:
    """What to do with each file (the same for all of them)."""

    request: Request
    check: bool
    in_place: bool
    backup: str | None
    output_dir: Path | None
    since: str | None
    max_size: int
    want_diff: bool  # each file's diff is needed (shown, written or in the JSON report)
    want_json: bool
    debug: bool


@dataclass(frozen=True)
class FileReport:
    """What happened to one file."""

    path: str
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
    name = str(item.path)
    try:
        snapshot = _read(item, settings.max_size)
        if settings.since:
            check_back_end_since(item.path, snapshot.data, settings.since, name)
        result = offload(snapshot.data, settings.request, name=name)
        status, code = result_status(result, settings.check)
        if _writes(settings):
            check_unchanged(snapshot)
            # New files in an output folder are synced to disk once, at the end of the run
            # (run_offload_many); an input replaced in place, and its backup, file by file.
            durable = settings.output_dir is None or not CAN_SYNC_LATER
            with Outputs(partial(check_same_stat, snapshot), durable=durable) as outputs:
                if settings.in_place and result.changed:
                    stage_in_place(outputs, snapshot, result, settings.backup)
                if settings.output_dir is not None:
                    _mirror(outputs, settings.output_dir / item.label, result.output, item.path)
        diff = result.diff(item.label) if settings.want_diff else b""
    except ConfeditError as error:
        return _failed(settings, name, error)
    except Exception as error:
        return _crashed(settings, item, error)
    document = None
    if settings.want_json:
        text = diff.decode("utf-8", "surrogateescape")  # a name's bytes kept (see json_bytes)
        document = report.result_json(result, diff=text, status=status, exit_code=int(code))
    return FileReport(
        path=name,
        status=status,
        exit_code=int(code),
        headline=report.summary_line(result, name, written=_writes(settings)),
        notes=tuple(report.finding_lines(result)),
        diff=diff,
        document=document,
    )


def _writes(settings: FileSettings) -> bool:
    return settings.in_place or settings.output_dir is not None


def _read(item: Input, max_size: int) -> Snapshot:
    """The file's bytes, or InvalidInput with what the search found wrong with it."""
    if item.problem:
        raise InvalidInput(item.problem, source=str(item.path))
    return read_input(item.path, max_size)


def _mirror(outputs: Outputs, destination: Path, data: bytes, source: Path) -> None:
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # Named by the input, as every other line of the run: the folder is in the message.
        raise WriteFailed(
            f"cannot create the output folder {destination.parent}: {exc.strerror or exc}; "
            "check that --output-dir can be written to",
            source=str(source),
        ) from None
    outputs.add(destination, data, mode_from=source)


def _failed(settings: FileSettings, name: str, error: ConfeditError) -> FileReport:
    code = int(error.exit_code)
    document = report.error_json(error, name, code) if settings.want_json else None
    return FileReport(name, error.kind, code, str(error), (), b"", document)


def _crashed(settings: FileSettings, item: Input, error: BaseException) -> FileReport:
    failure = _crash(item, error, settings.debug, writes=_writes(settings))
    return _failed(settings, str(item.path), failure)


def _crash(item: Input, error: BaseException, debug: bool, *, writes: bool) -> ConfeditError:
    """A file's unexpected error (a bug), or the death of the worker process working on it."""
    if not isinstance(error, WorkerDied):
        return _internal(item, error, debug)
    # Killed in the middle of the file: it may have been renamed into place already.
    fate = "it may or may not have been written: run again" if writes else "run again"
    return WorkerLost(
        f"the worker process working on this file died ({error}); {fate}", source=str(item.path)
    )


def _internal(item: Input, error: BaseException, debug: bool) -> InternalError:
    message = f"internal error, please report: {type(error).__name__}: {error}"
    if debug:
        message += "\n" + "".join(traceback.format_exception(error)).rstrip()
    else:
        message += " (run with --debug for the traceback)"
    return InternalError(message, source=str(item.path))


def run_offload_many(opts: OffloadOptions) -> int:
    """`confedit offload` over several files; returns the run's exit code."""
    inputs = find_inputs(opts.configs, skip=opts.output_dir)
    _check_destinations(opts, inputs)
    if opts.output_dir is not None:
        _warn_unsearched(opts, opts.output_dir, inputs)
    settings = FileSettings(
        request=opts.request(),
        check=opts.check,
        in_place=opts.in_place,
        backup=opts.backup,
        output_dir=opts.output_dir,
        since=opts.since,
        max_size=opts.max_size,
        want_diff=_shows_diff(opts) or opts.fmt == "json",
        want_json=opts.fmt == "json",
        debug=opts.debug,
    )
    progress = "offloading" if show_progress(len(inputs), opts.quiet) else None
    color = style.enabled(opts.color, sys.stderr)
    streams = _streams()
    done: list[FileReport] = []  # as reported, in input order

    def reported(file: FileReport) -> None:
        done.append(file)
        if streams:
            _print_file_report(opts, color, file)

    try:
        reports = run_all(
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
    unsynced = _sync_output_dir(opts, inputs)
    unwritten = _write_diff_file(opts, reports)
    run_errors = [error for error in (unsynced, unwritten) if error is not None]
    codes = [file.exit_code for file in reports] + [error.exit_code for error in run_errors]
    code = most_severe(codes)
    try:
        _report_offloads(opts, reports, code, _run_error(run_errors), color=color, streams=streams)
    finally:  # last, under the report they qualify, even if writing the report failed
        for error in run_errors:
            _echo_err(style.paint(str(error), "bad", color), color)
    return code


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
    if opts.diff_to == STDIO or _previews(opts):
        emit_diff(STDIO, b"".join(r.diff for r in reports), color=opts.color_stdout)
    counts = report.summary_counts([r.status for r in reports], OFFLOAD_GROUPS)
    if opts.fmt == "json":
        files = [r.document for r in reports if r.document is not None]
        with written_before(_wrote_files(opts, reports)):
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
    if opts.output_dir is not None and CAN_SYNC_LATER:
        sync_filesystems([opts.output_dir, *(opts.output_dir / item.label for item in items)])


def _sync_output_dir(opts: OffloadOptions, inputs: list[Input]) -> WriteFailed | None:
    """Make the files written to the output folder durable before the run reports success;
    the error if the kernel says that failed."""
    try:
        _flush_outputs(opts, inputs)
    except OSError as exc:
        return WriteFailed(
            f"the files were written, but flushing them to disk failed: {exc.strerror or exc}; "
            "run again",
            source=str(opts.output_dir),
        )
    return None


def _warn_unsearched(opts: OffloadOptions, output_dir: Path, inputs: list[Input]) -> None:
    """A warning for each config file in the output folder, which the search of a folder that
    holds it skipped, that is not where this run writes its outputs: a server's own config,
    most likely, that would otherwise go unmentioned."""
    real = Path(os.path.realpath(output_dir))
    searched = [Path(os.path.realpath(config)) for config in opts.configs if config.is_dir()]
    if not real.is_dir() or not any(real.is_relative_to(folder) for folder in searched):
        return
    known = {os.path.realpath(output_dir / item.label) for item in inputs}  # written here
    known |= {os.path.realpath(item.path) for item in inputs}  # DIR was searched after all
    color = style.enabled(opts.color, sys.stderr)
    warning = style.paint("warning:", "warn", color)
    for found in find_inputs([output_dir]):
        if found.problem is None and os.path.realpath(found.path) not in known:
            _echo_err(
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
        emit_diff(opts.diff_to, b"".join(r.diff for r in reports), color=False)
    except WriteFailed as error:
        if _wrote_files(opts, reports):
            reason = error.message.removesuffix(NOTHING_CHANGED)
            error.message = f"{reason}; the files were written, the diff was not"
        return error
    return None


def _wrote_files(opts: OffloadOptions, reports: list[FileReport]) -> bool:
    return (opts.in_place or opts.output_dir is not None) and any(not r.failed for r in reports)


def _check_destinations(opts: OffloadOptions, inputs: list[Input]) -> None:
    """Usage errors that need the list of files: two files with one name in the diff or the
    output folder, or an output that would overwrite its input."""
    if _shows_diff(opts) or opts.output_dir is not None:
        first: dict[str, Input] = {}
        for item in inputs:
            other = first.setdefault(item.label, item)
            if other is not item:
                raise click.UsageError(
                    f"{other.path} and {item.path} would both be named {item.label!r} in the "
                    "diff or the output folder; run confedit from a folder that contains both, "
                    "or name the folder that holds them instead of the files"
                )
    paths = [item.path for item in inputs]
    produced = opts.backups(paths)
    if opts.output_dir is not None:
        produced += [("--output-dir", opts.output_dir / item.label) for item in inputs]
    check_destinations(opts.destinations(), paths, produced)
    if opts.backup:
        check_backups(opts.backup, paths)
    if opts.output_dir is not None:
        _check_output_dir(opts.output_dir, inputs)


def _check_output_dir(output_dir: Path, inputs: list[Input]) -> None:
    """Usage errors: an output that is an input, or leads to one through a symlink. Most often
    an input inside the output folder: an earlier run's output, named again by a glob such as
    `*/` (its own output lands a folder deeper, another file's output over it)."""
    identities: dict[tuple[int, int], Path] = {}
    for item in inputs:
        with contextlib.suppress(OSError):
            info = item.path.stat()
            identities[(info.st_dev, info.st_ino)] = item.path
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


def _input_at(destination: Path, identities: dict[tuple[int, int], Path]) -> Path | None:
    """The input that `destination` is (or leads to through a symlink), if any."""
    try:
        info = destination.stat()
    except OSError:
        return None  # not there yet (or not reachable: writing it will say so)
    return identities.get((info.st_dev, info.st_ino))


def _previews(opts: OffloadOptions) -> bool:
    """Whether the combined diff goes to stdout (a preview shown as text)."""
    return opts.previewing and opts.fmt == "text"


def _shows_diff(opts: OffloadOptions) -> bool:
    """Whether the combined diff is written anywhere (--diff, or the preview on stdout)."""
    return bool(opts.diff_to) or _previews(opts)


def _print_file_report(opts: OffloadOptions, color: bool, file: FileReport) -> None:
    """A file's line on stderr (its summary, or its error) and its warnings below it."""
    if opts.quiet and not file.failed:
        return
    role = "bad" if file.failed else ("warn" if file.status == "work-found" else None)
    _echo_err(style.paint(file.headline, role, color), color)
    if not opts.quiet:
        for note in file.notes:
            _echo_err("  " + _paint_note(note, color), color)


def _print_offload_summary(opts: OffloadOptions, counts: dict[str, int], color: bool) -> None:
    if not opts.quiet:
        writes = opts.in_place or opts.output_dir is not None
        names = {} if writes else {"changed": "need work" if opts.check else "to change"}
        _echo_err(_paint_summary(report.summary_text(counts, names), counts, color), color)


def _paint_note(note: str, color: bool) -> str:
    level, sep, rest = note.partition(":")
    if sep and level == "warning":
        return style.paint(level + sep, "warn", color) + rest
    return note


def _paint_summary(text: str, counts: dict[str, int], color: bool) -> str:
    failed = any(counts.get(group) for group in ("refused", "invalid", report.FAILED))
    return style.paint(text, "bad" if failed else "header", color)


# --- audit ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditSettings:
    site: str
    max_size: int
    debug: bool


@dataclass(frozen=True)
class AuditedFile:
    """One file's audit, or why there is none."""

    path: str
    report: AuditReport | None
    exit_code: int  # of the error; 0 when audited
    status: str  # the error's kind; "" when audited
    error: str
    error_json: dict[str, Any]


def audit_file(settings: AuditSettings, item: Input) -> AuditedFile:
    """Audit one file; never raises."""
    name = str(item.path)
    try:
        snapshot = _read(item, settings.max_size)
        return AuditedFile(name, audit(snapshot.data, name, settings.site), 0, "", "", {})
    except ConfeditError as error:
        return _audit_failed(name, error)
    except Exception as error:
        return _audit_crashed(settings, item, error)


def _audit_failed(name: str, error: ConfeditError) -> AuditedFile:
    code = int(error.exit_code)
    document = report.audit_error_json(error, name, code)
    return AuditedFile(name, None, code, error.kind, str(error), document)


def _audit_crashed(settings: AuditSettings, item: Input, error: BaseException) -> AuditedFile:
    return _audit_failed(str(item.path), _crash(item, error, settings.debug, writes=False))


def run_audit_many(opts: AuditOptions) -> int:
    """`confedit audit` over several files, or `--fleet`; returns the run's exit code."""
    inputs = find_inputs(opts.configs)
    settings = AuditSettings(opts.site, opts.max_size, opts.debug)
    progress = "auditing" if show_progress(len(inputs), opts.quiet) else None
    color_out = style.enabled(opts.color, sys.stdout)
    color_err = style.enabled(opts.color, sys.stderr)
    tables = not opts.fleet and opts.fmt != "json"
    show = _AuditShown(opts.offloaded, tables, opts.quiet, color_out, color_err)
    streams = _streams()
    files = run_all(
        partial(audit_file, settings),
        inputs,
        jobs=opts.jobs or default_jobs(),
        crashed=partial(_audit_crashed, settings),
        progress=progress,
        on_result=show if streams else None,
    )
    if not streams:
        for file in files:
            show(file)
    if opts.fleet:
        return _fleet(opts, files, color_out)

    codes = [_audit_code(file, opts.offloaded) for file in files]
    code = most_severe(codes)
    statuses = [_audit_status(file) for file in files]
    counts = report.summary_counts(statuses, AUDIT_GROUPS)
    if opts.fmt == "json":
        documents = [
            file.report.to_json(offloaded_only=opts.offloaded) if file.report else file.error_json
            for file in files
        ]
        print_json(report.batch_json(report.AUDIT_BATCH_SCHEMA_ID, documents, counts, code))
    if not opts.quiet:
        _echo_err(_paint_summary(report.summary_text(counts), counts, color_err), color_err)
    return code


@dataclass
class _AuditShown:
    """Shows an audited file: its error on stderr, or (in text mode) its table on stdout, the
    tables separated by a blank line, and its warnings on stderr, each after the file's name."""

    offloaded_only: bool
    tables: bool
    quiet: bool
    color_out: bool
    color_err: bool
    shown_tables: int = 0

    def __call__(self, file: AuditedFile) -> None:
        if file.report is None:
            _echo_err(style.paint(file.error, "bad", self.color_err), self.color_err)
            return
        if self.tables:
            table = render_table(
                file.report, offloaded_only=self.offloaded_only, color=self.color_out
            )
            click.echo(("\n" if self.shown_tables else "") + table, color=self.color_out)
            self.shown_tables += 1
        if not self.quiet:
            for line in unlocked_warnings(file.report):
                note = _paint_note(line, self.color_err)
                _echo_err(f"{shown(file.path)}: {note}", self.color_err)


def _audit_code(file: AuditedFile, offloaded: bool) -> int:
    if file.report is None:
        return file.exit_code
    return file.report.exit_code(offloaded_only=offloaded)


def _audit_status(file: AuditedFile) -> str:
    if file.report is None:
        return file.status
    return file.report.status


def _fleet(opts: AuditOptions, files: list[AuditedFile], color: bool) -> int:
    fleet = fleet_of([file.report for file in files if file.report])
    codes = [file.exit_code for file in files if file.report is None]
    nothing_compared = bool(fleet.servers) and not fleet.compared  # a misspelt --site, say
    if not fleet.consistent or nothing_compared or (opts.offloaded and not fleet.all_offloaded):
        codes.append(ExitCode.WORK_FOUND)
    code = most_severe(codes)
    if opts.fmt == "json":
        errors = [file.error_json for file in files if file.report is None]
        print_json({**fleet.to_json(), "exit_code": code, "errors": errors})
    else:
        click.echo(render_fleet(fleet, color=color), color=color)
        if opts.offloaded and not fleet.all_offloaded:
            click.echo(
                style.paint("NOT offloaded everywhere: run confedit offload", "bad", color),
                color=color,
            )
    return code


# --- output ------------------------------------------------------------------------------------


def _streams() -> bool:
    """Whether each file is shown as soon as it and the files before it are done: off a
    terminal (a pipeline's log, say), where a long run would otherwise be silent to the end.
    On a terminal the files are shown together at the end, after the progress bar if any."""
    return not on_terminal(sys.stderr)


def _echo_err(text: str, color: bool) -> None:
    click.echo(text, err=True, color=color)
