"""What `confedit audit` does with files and streams: one file's table (or JSON report); over
several files, each file's in input order and a closing summary, or with --fleet one matrix of
them all. A file's errors are its own, as offload's are, and the module is kept apart from cli.py
for the same reasons (see offload_command.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from typing import Any

import click

from confedit import quick_exit, report, style
from confedit.auditing import AuditReport, audit, render_table, unlocked_warnings
from confedit.batch import Input, default_jobs, most_severe, run_all, show_progress
from confedit.command_common import (
    CommonOptions,
    crash,
    echo_err,
    found_inputs,
    paint_note,
    paint_summary,
    read_item,
    require_stdout,
    streams_each_file,
)
from confedit.errors import ConfeditError, ExitCode, shown
from confedit.files import is_folder, print_json, read_input
from confedit.fleet import fleet_of, render_fleet

AUDIT_GROUPS = ("offloaded", "not_offloaded", "invalid")


@dataclass
class AuditOptions(CommonOptions):
    offloaded: bool
    fleet: bool

    @property
    def many(self) -> bool:
        """Several files, a folder to search, or a fleet matrix."""
        return len(self.configs) > 1 or self.fleet or is_folder(self.config)


def run_audit(opts: AuditOptions) -> int:
    """The audit command; returns the exit code."""
    require_stdout(True)  # the tables, the matrix or the JSON report: the audit's product
    if opts.many:
        return _run_audit_many(opts)
    snapshot = read_input(opts.config, opts.max_size)
    result = audit(snapshot.data, name=str(opts.config), site=opts.site)
    if opts.fmt == "json":
        print_json(result.to_json(offloaded_only=opts.offloaded))
    else:
        color = style.enabled(opts.color, sys.stdout)
        click.echo(render_table(result, offloaded_only=opts.offloaded, color=color), color=color)
    if not opts.quiet:
        for line in unlocked_warnings(result):
            click.echo(line, err=True)
    quick_exit.keep(snapshot, result)
    return result.exit_code(offloaded_only=opts.offloaded)


# --- several files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditSettings:
    site: str
    max_size: int
    debug: bool


@dataclass(frozen=True)
class AuditedFile:
    """One file's audit, or why there is none."""

    name: str  # the file's name in the report, as given (see Input.name)
    report: AuditReport | None
    exit_code: int  # of the error; 0 when audited
    status: str  # the error's kind; "" when audited
    error: str
    error_json: dict[str, Any]


def audit_file(settings: AuditSettings, item: Input) -> AuditedFile:
    """Audit one file; never raises."""
    name = item.name
    try:
        snapshot = read_item(item, settings.max_size)
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
    return _audit_failed(item.name, crash(item, error, settings.debug, writes=False))


def _run_audit_many(opts: AuditOptions) -> int:
    """`confedit audit` over several files, or `--fleet`; returns the run's exit code."""
    color_out = style.enabled(opts.color, sys.stdout)
    color_err = style.enabled(opts.color, sys.stderr)
    inputs = found_inputs(opts.config_names, color_err, quiet=opts.quiet)
    settings = AuditSettings(opts.site, opts.max_size, opts.debug)
    progress = "auditing" if show_progress(len(inputs), opts.quiet) else None
    tables = not opts.fleet and opts.fmt != "json"
    show = _AuditShown(opts.offloaded, tables, opts.quiet, color_out, color_err)
    streams = streams_each_file()
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
        echo_err(paint_summary(report.summary_text(counts), counts, color_err), color_err)
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
            echo_err(style.paint(file.error, "bad", self.color_err), self.color_err)
            return
        if self.tables:
            table = render_table(
                file.report, offloaded_only=self.offloaded_only, color=self.color_out
            )
            click.echo(("\n" if self.shown_tables else "") + table, color=self.color_out)
            self.shown_tables += 1
        if not self.quiet:
            for line in unlocked_warnings(file.report):
                note = paint_note(line, self.color_err)
                echo_err(f"{shown(file.name)}: {note}", self.color_err)


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
    offload_gate = opts.offloaded and not fleet.all_offloaded
    if not fleet.consistent or nothing_compared or offload_gate or not fleet.back_end_requires_ssl:
        codes.append(ExitCode.WORK_FOUND)
    code = most_severe(codes)
    if opts.fmt == "json":
        errors = [file.error_json for file in files if file.report is None]
        print_json({**fleet.to_json(), "exit_code": code, "errors": errors})
    else:
        unaudited = [file.name for file in files if file.report is None]
        text = render_fleet(fleet, color=color, offloaded_only=opts.offloaded, unaudited=unaudited)
        click.echo(text, color=color)
    return code
