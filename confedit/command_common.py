"""What `offload` and `audit` do alike: refuse to start without the stdout they need, and over
several files, read each file, turn a file's unexpected error into its report, and say each
file's lines on stderr."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from confedit import report, style
from confedit.batch import Input, find_inputs, on_terminal
from confedit.errors import (
    ConfeditError,
    InternalError,
    InvalidInput,
    StdoutFailed,
    WorkerDied,
    WorkerLost,
    shown,
)
from confedit.files import STDOUT_CLOSED, Snapshot, is_folder, read_input, stdout_open


@dataclass
class CommonOptions:
    """What both commands are given: the files, the front-end site, and how to report."""

    config_names: tuple[str, ...]  # as typed: see configs
    site: str
    fmt: str
    color: str
    jobs: int | None
    max_size: int
    quiet: bool
    debug: bool

    @property
    def configs(self) -> tuple[Path, ...]:
        """The CONFIGs as Paths. A Path drops a trailing slash, which `config_names` keep: a
        file named as a folder (`a.config/`) is not to be read as the file (see
        batch.find_inputs)."""
        return tuple(Path(name) for name in self.config_names)

    @property
    def config(self) -> Path:
        """The first CONFIG: the file of a run over one."""
        return self.configs[0]


def require_stdout(needed: bool) -> None:
    """Refuse a run whose output or report goes to stdout when there is none (`>&-`), before
    anything is read or written: a run cut short at the end would leave files written behind
    an error. (A run that does not use stdout goes on without it.)"""
    if needed and not stdout_open():
        raise StdoutFailed(STDOUT_CLOSED)


def read_item(item: Input, max_size: int) -> Snapshot:
    """The file's bytes, or InvalidInput with what the search found wrong with it."""
    if item.problem:
        raise InvalidInput(item.problem, source=item.name)
    return read_input(item.path, max_size)


def crash(item: Input, error: BaseException, debug: bool, *, writes: bool) -> ConfeditError:
    """A file's unexpected error (a bug), or the death of the worker process working on it."""
    if not isinstance(error, WorkerDied):
        return _internal(item, error, debug)
    # Killed in the middle of the file: it may have been renamed into place already.
    fate = "it may or may not have been written: run again" if writes else "run again"
    return WorkerLost(
        f"the worker process working on this file died ({error}); {fate}", source=item.name
    )


def _internal(item: Input, error: BaseException, debug: bool) -> InternalError:
    failure = InternalError.of(error, debug=debug, source=item.name)
    if debug:  # in the file's report: a worker process hands the parent only plain data
        failure.message += "\n" + "".join(traceback.format_exception(error)).rstrip()
    return failure


def paint_note(note: str, color: bool) -> str:
    level, sep, rest = note.partition(":")
    if sep and level == "warning":
        return style.paint(level + sep, "warn", color) + rest
    return note


def paint_summary(text: str, counts: dict[str, int], color: bool) -> str:
    failed = any(counts.get(group) for group in ("refused", "invalid", report.FAILED))
    return style.paint(text, "bad" if failed else "header", color)


def streams_each_file() -> bool:
    """Whether each file is shown as soon as it and the files before it are done: off a
    terminal (a pipeline's log, say), where a long run would otherwise be silent to the end.
    On a terminal the files are shown together at the end, after the progress bar if any."""
    return not on_terminal(sys.stderr)


def found_inputs(
    configs: Sequence[str], color: bool, *, quiet: bool, skip: Path | None = None
) -> list[Input]:
    """The files to work on, from the CONFIGs as typed (see batch.find_inputs), with a warning
    for each symlinked folder the search met and did not follow (unless `quiet`): a server's
    folder reached by a link would otherwise be left out without a word."""
    unfollowed: list[Path] = []
    inputs = find_inputs(configs, skip, unfollowed)
    if quiet:
        return inputs
    warning = style.paint("warning:", "warn", color)
    for link in _unsearched(unfollowed, configs, skip):
        echo_err(
            f"{warning} {shown(str(link))} is a symlinked folder, not searched: name it to "
            "search it",
            color,
        )
    return inputs


def _unsearched(links: list[Path], configs: Sequence[str], skip: Path | None) -> list[Path]:
    """The links whose folder the run neither searches by another way (below a folder named,
    which holds it for real) nor writes to (the output folder): naming those would not help."""
    searched = searched_folders(configs)
    if skip is not None:
        searched.append(Path(os.path.realpath(skip)))
    return [
        link
        for link in links
        if not any(Path(os.path.realpath(link)).is_relative_to(folder) for folder in searched)
    ]


def searched_folders(configs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The real paths of the folders among the CONFIGs: those the run searches."""
    return [Path(os.path.realpath(config)) for config in configs if is_folder(config)]


def echo_err(text: str, color: bool) -> None:
    click.echo(text, err=True, color=color)
