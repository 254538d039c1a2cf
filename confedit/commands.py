"""What each command does with files and streams: read, call the library, write, report.

Kept apart from cli.py so that click stays a thin layer and `confedit --help` loads nothing heavy.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from confedit import report
from confedit.diffing import diff_label
from confedit.engine import Result, offload
from confedit.errors import ExitCode
from confedit.files import check_unchanged, read_input, same_file, write_file
from confedit.plan import Request
from confedit.runbook import render_runbook

STDIO = "-"


@dataclass
class OffloadOptions:
    config: Path
    output: str | None
    in_place: bool
    backup: str | None
    diff_to: str | None
    check: bool
    runbook: str | None
    services: tuple[str, ...]
    paths: tuple[str, ...]
    site: str
    include_descendants: bool
    allow_extended_protection: bool
    fmt: str
    max_size: int
    quiet: bool
    debug: bool

    def validate(self) -> None:
        """Usage errors (exit 2) that can be seen before reading anything."""
        if self.output and self.in_place:
            raise click.UsageError("use either -o/--output or --in-place, not both")
        if self.backup is not None and not self.in_place:
            raise click.UsageError("--backup needs --in-place")
        if self.backup is not None and not self.backup.strip():
            raise click.UsageError("--backup needs a non-empty SUFFIX such as .bak")
        if self.check and (self.output or self.in_place or self.runbook):
            raise click.UsageError("--check writes nothing; drop -o/--in-place/--runbook")
        named = (("-o", self.output), ("--diff", self.diff_to), ("--runbook", self.runbook))
        to_stdout = [name for name, value in named if value == STDIO]
        if self.fmt == "json":
            to_stdout.append("--format json")
        elif self.previewing:
            to_stdout.append("the preview diff")
        if len(to_stdout) > 1:
            raise click.UsageError(
                f"{' and '.join(to_stdout)} would all write to stdout; send one of them to a file"
            )
        if self.output and self.output != STDIO and same_file(Path(self.output), self.config):
            raise click.UsageError(
                "-o names the input file itself; use --in-place (with --backup) to rewrite it"
            )

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
        return not (self.output or self.in_place or self.diff_to or self.check)


def run_offload(opts: OffloadOptions) -> int:
    """The offload command; returns the exit code."""
    snapshot = read_input(opts.config, opts.max_size)
    result = offload(snapshot.data, opts.request(), name=str(opts.config))
    diff = result.diff(diff_label(opts.config))
    code = ExitCode.WORK_FOUND if opts.check and result.changed else ExitCode.OK

    if not opts.check and (opts.output or opts.in_place):
        check_unchanged(snapshot)
    if opts.in_place and result.changed:
        if opts.backup:
            write_file(Path(f"{opts.config}{opts.backup}"), snapshot.data, mode_from=opts.config)
        write_file(opts.config, result.output)
    if opts.output:
        _emit(opts.output, result.output)
    if opts.diff_to:
        _emit(opts.diff_to, diff)
    if opts.runbook:
        _emit(opts.runbook, render_runbook(result, str(opts.config)))
    if opts.previewing and opts.fmt == "text":
        _emit(STDIO, diff)

    _report(opts, result, diff, code)
    return int(code)


def _emit(destination: str, data: bytes) -> None:
    if destination == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_file(Path(destination), data)


def _report(opts: OffloadOptions, result: Result, diff: bytes, code: ExitCode) -> None:
    if opts.fmt == "json":
        status = (
            "work-found"
            if code == ExitCode.WORK_FOUND
            else ("changed" if result.changed else "unchanged")
        )
        text = diff.decode("utf-8", "replace")
        _print_json(report.result_json(result, diff=text, status=status, exit_code=int(code)))
    if opts.quiet:
        return
    for line in report.target_lines(result) + report.finding_lines(result):
        click.echo(line, err=True)
    click.echo(report.summary_line(result, str(opts.config)), err=True)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@dataclass
class AuditOptions:
    config: Path
    offloaded: bool
    site: str
    fmt: str
    max_size: int
    debug: bool


def run_audit(opts: AuditOptions) -> int:
    """The audit command; returns the exit code."""
    from confedit.audit import audit, render_table  # noqa: PLC0415

    snapshot = read_input(opts.config, opts.max_size)
    result = audit(snapshot.data, name=str(opts.config), site=opts.site)
    if opts.fmt == "json":
        _print_json(result.to_json(offloaded_only=opts.offloaded))
    else:
        click.echo(render_table(result, offloaded_only=opts.offloaded))
    if opts.offloaded and not result.all_offloaded:
        return int(ExitCode.WORK_FOUND)
    return int(ExitCode.OK)
