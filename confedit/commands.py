"""What each command does with files and streams: read, call the library, write, report.

Kept apart from cli.py so that click stays a thin layer and `confedit --help` loads nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import click

from confedit import report, style
from confedit.baseline import check_back_end_since
from confedit.diffing import diff_label
from confedit.engine import Result, offload
from confedit.errors import ExitCode, StdoutFailed, WriteFailed
from confedit.files import (
    STDOUT_CLOSED,
    Outputs,
    Snapshot,
    check_same_stat,
    check_unchanged,
    print_json,
    read_input,
    same_file,
    stdout_open,
    to_stdout,
    write_file,
)
from confedit.plan import Request
from confedit.runbook import render_runbook

STDIO = "-"


@dataclass
class OffloadOptions:
    configs: tuple[Path, ...]
    output: str | None
    output_dir: Path | None
    in_place: bool
    backup: str | None
    diff_to: str | None
    check: bool
    runbook: str | None
    since: str | None
    services: tuple[str, ...]
    paths: tuple[str, ...]
    site: str
    include_descendants: bool
    allow_extended_protection: bool
    fmt: str
    color: str
    jobs: int | None
    max_size: int
    quiet: bool
    debug: bool

    @property
    def config(self) -> Path:
        return self.configs[0]

    @property
    def many(self) -> bool:
        """Several files (or a folder to search): per-file summary lines and one combined diff."""
        return len(self.configs) > 1 or self.output_dir is not None or self.config.is_dir()

    def validate(self) -> None:
        """Usage errors (exit 2) that can be seen before reading anything."""
        if self.many:
            self._validate_many()
        if self.output and self.in_place:
            raise click.UsageError("use either -o/--output or --in-place, not both")
        if self.backup is not None and not self.in_place:
            raise click.UsageError("--backup needs --in-place")
        if self.backup is not None and not self.backup.strip():
            raise click.UsageError("--backup needs a non-empty SUFFIX such as .bak")
        if self.check and (self.output or self.in_place or self.runbook or self.output_dir):
            raise click.UsageError(
                "--check writes nothing; drop -o/--output-dir/--in-place/--runbook"
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
            check_destinations(self.destinations(), [self.config], self.backups([self.config]))

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

    def _named_outputs(self) -> list[tuple[str, str]]:
        named = (("-o", self.output), ("--diff", self.diff_to), ("--runbook", self.runbook))
        return [(option, value) for option, value in named if value]

    def backups(self, inputs: list[Path]) -> list[tuple[str, Path]]:
        """The backup files --in-place --backup writes."""
        if not (self.in_place and self.backup):
            return []
        return [("--backup", Path(f"{config}{self.backup}")) for config in inputs]

    def _validate_many(self) -> None:
        if self.output:
            raise click.UsageError(
                "-o writes one file; with several CONFIGs or a folder, use --output-dir DIR"
            )
        if self.runbook:
            raise click.UsageError("--runbook takes one CONFIG; run it once per file")
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
        return not (self.output or self.output_dir or self.in_place or self.diff_to or self.check)

    @property
    def color_stdout(self) -> bool:
        return style.enabled(self.color, sys.stdout)


def check_destinations(
    destinations: list[tuple[str, Path]],
    inputs: list[Path],
    produced: Iterable[tuple[str, Path]] = (),
) -> None:
    """Usage errors: a file named by an option (`destinations`) that is one of the inputs, or
    that another output also writes: another option's, a backup, a file below --output-dir
    (`produced`)."""
    for option, path in destinations:
        for config in inputs:
            if same_file(path, config):
                raise click.UsageError(f"{option} names the input file {config}; name another file")
    first = {os.path.realpath(path): option for option, path in produced}
    for option, path in destinations:
        other = first.setdefault(os.path.realpath(path), option)
        if other != option:
            raise click.UsageError(f"{other} and {option} both write {path}; name another file")


def check_backups(backup: str, inputs: list[Path]) -> None:
    """A usage error if CONFIG+SUFFIX of one input is another input: its original would be lost."""
    paths = {os.path.realpath(config) for config in inputs}
    for config in inputs:
        if os.path.realpath(f"{config}{backup}") in paths:
            raise click.UsageError(
                f"--backup {backup} would write the backup of {config} over the input "
                f"{config}{backup}; choose another suffix"
            )


def require_stdout(needed: bool) -> None:
    """Refuse a run whose output or report goes to stdout when there is none (`>&-`), before
    anything is read or written: a run cut short at the end would leave files written behind
    an error. (A run that does not use stdout goes on without it.)"""
    if needed and not stdout_open():
        raise StdoutFailed(STDOUT_CLOSED)


@contextlib.contextmanager
def written_before(written: bool) -> Iterator[None]:
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
        from confedit.many import run_offload_many  # noqa: PLC0415

        return run_offload_many(opts)
    snapshot = read_input(opts.config, opts.max_size)
    if opts.since:
        check_back_end_since(opts.config, snapshot.data, opts.since, str(opts.config))
    result = offload(snapshot.data, opts.request(), name=str(opts.config))
    diff = result.diff(diff_label(opts.config))
    _, code = result_status(result, opts.check)

    writes_input_copy = not opts.check and (opts.output or opts.in_place)
    if writes_input_copy:
        check_unchanged(snapshot)
    runbook = render_runbook(result, str(opts.config)) if opts.runbook else b""
    outputs = ((opts.output, result.output), (opts.diff_to, diff), (opts.runbook, runbook))
    # All files are written together or not at all (see Outputs); stdout comes after them.
    with Outputs(partial(check_same_stat, snapshot) if writes_input_copy else None) as files:
        if opts.in_place and result.changed:
            stage_in_place(files, snapshot, result, opts.backup)
        for destination, data in outputs:
            if destination and destination != STDIO:
                files.add(Path(destination), data)
    wrote_files = bool(opts.destinations()) or bool(opts.in_place and result.changed)
    with written_before(wrote_files):
        if opts.output == STDIO:
            to_stdout(result.output)
        if opts.diff_to == STDIO or (opts.previewing and opts.fmt == "text"):
            emit_diff(STDIO, diff, color=opts.color_stdout)
        if opts.runbook == STDIO:
            to_stdout(runbook)
        _report(opts, result, diff, code, written=bool(writes_input_copy))
    return int(code)


def _is_stdout(destination: str) -> bool:
    """`-`, or stdout under another name: /dev/stdout, /dev/fd/1, the file it is redirected to.
    Only a stdout that keeps what is written counts (a file or a pipe): two writers into
    /dev/null or a terminal spoil nothing a program reads."""
    if destination == STDIO:
        return True
    try:
        out = os.fstat(sys.stdout.fileno())
        if not (stat.S_ISREG(out.st_mode) or stat.S_ISFIFO(out.st_mode)):
            return False
        return os.path.samestat(Path(destination).stat(), out)
    except (OSError, ValueError, AttributeError):  # not there yet; stdout closed or captured
        return False


def stage_in_place(
    outputs: Outputs, snapshot: Snapshot, result: Result, backup: str | None
) -> None:
    """Stage the input file's new bytes, after its backup (CONFIG + the suffix) if asked for."""
    if backup:
        copy = Path(f"{snapshot.path}{backup}")
        if copy.is_symlink():  # writing through it would overwrite whatever it points to
            raise WriteFailed(
                "is a symbolic link; confedit writes a backup only as a file of its own: "
                "remove the link or choose another --backup suffix",
                source=str(copy),
            )
        outputs.add(copy, snapshot.data, copy_of=snapshot.path)
    outputs.add(snapshot.path, result.output)


def emit_diff(destination: str, diff: bytes, *, color: bool) -> None:
    """Write a diff; coloured only when it goes to stdout and colour is on."""
    if destination == STDIO:
        to_stdout(style.paint_diff(diff) if color else diff)
    else:
        write_file(Path(destination), diff)


def result_status(result: Result, check: bool) -> tuple[str, ExitCode]:
    """The report status and exit code of a completed offload."""
    if check and result.changed:
        return "work-found", ExitCode.WORK_FOUND
    return ("changed" if result.changed else "unchanged"), ExitCode.OK


def _report(
    opts: OffloadOptions, result: Result, diff: bytes, code: ExitCode, *, written: bool
) -> None:
    if opts.fmt == "json":
        status, _ = result_status(result, opts.check)
        text = diff.decode("utf-8", "surrogateescape")  # a name's bytes kept (see json_bytes)
        print_json(report.result_json(result, diff=text, status=status, exit_code=int(code)))
    if opts.quiet:
        return
    for line in report.target_lines(result) + report.finding_lines(result):
        click.echo(line, err=True)
    click.echo(report.summary_line(result, str(opts.config), written=written), err=True)


@dataclass
class AuditOptions:
    configs: tuple[Path, ...]
    offloaded: bool
    fleet: bool
    site: str
    fmt: str
    color: str
    jobs: int | None
    max_size: int
    quiet: bool
    debug: bool

    @property
    def config(self) -> Path:
        return self.configs[0]

    @property
    def many(self) -> bool:
        """Several files, a folder to search, or a fleet matrix."""
        return len(self.configs) > 1 or self.fleet or self.config.is_dir()


def run_audit(opts: AuditOptions) -> int:
    """The audit command; returns the exit code."""
    require_stdout(True)  # the tables, the matrix or the JSON report: the audit's product
    if opts.many:
        from confedit.many import run_audit_many  # noqa: PLC0415

        return run_audit_many(opts)
    from confedit.auditing import audit, render_table, unlocked_warnings  # noqa: PLC0415

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
    return result.exit_code(offloaded_only=opts.offloaded)
