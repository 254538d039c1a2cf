"""`confedit audit --fleet`: do all Client Access servers have the same SSL policy?

One row per server file, one column per default target; a cell is the target's effective
sslFlags and Extended Protection, and those of the paths below it that differ from it (owa's
Integrated keeping SSL where owa is offloaded). A column where the servers differ is a finding:
Microsoft's procedure asks for every Client Access server to be configured the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confedit import exchange
from confedit.auditing import (
    AuditReport,
    Row,
    aligned,
    back_end_advice,
    back_end_paths,
    is_offloaded,
)
from confedit.batch import CONFIG_NAME
from confedit.errors import shown
from confedit.iis import is_below, path_key
from confedit.style import paint

SCHEMA_ID: Final = "https://confedit.example/schemas/fleet-report-1.json"
SERVICES: Final = exchange.DEFAULT_SERVICES
CONFIG_ENDINGS: Final = ("/" + CONFIG_NAME, "." + CONFIG_NAME)


@dataclass(frozen=True)
class Below:
    """A path below a target whose policy differs from the target's."""

    key: str  # relative to the target, folded: what servers are compared by
    path: str = field(compare=False)  # relative to the target, as the file spells it
    ssl_flags: str
    extended_protection: str
    # A web.config may set sslFlags there (see Cell.unlocked); compared as the target's is.
    unlocked: bool = False
    unlocked_by: str | None = field(default=None, compare=False)

    def text(self) -> str:
        policy = _policy_text(self.ssl_flags, self.extended_protection)
        return f"{self.path}={policy}" + ("/unlocked" if self.unlocked else "")


@dataclass(frozen=True)
class Cell:
    """One target on one server."""

    present: bool  # the path is an application or virtual directory in <sites>
    ssl_flags: str  # effective, formatted as IIS does
    extended_protection: str  # effective tokenChecking
    # Two servers alike at the target can differ below it: one offloaded owa/Integrated too.
    below: tuple[Below, ...] = ()
    # A web.config may set sslFlags there (the access section unlocked): what that server
    # enforces is not in the file. What unlocks it (its line) is not compared, only whether.
    unlocked: bool = False
    unlocked_by: str | None = field(default=None, compare=False)

    @property
    def offloaded(self) -> bool | None:
        return is_offloaded(self.ssl_flags) if self.present else None

    def text(self, *, below: bool = False) -> str:
        """Compact: 'None', 'Ssl,Ssl128', with '/EP=Require' when Extended Protection is on and
        '/unlocked' when a web.config may set sslFlags; with `below`, the paths below that
        differ follow ('None;Integrated=Ssl,Ssl128')."""
        if not self.present:
            return "absent"
        policy = _policy_text(self.ssl_flags, self.extended_protection)
        policy += "/unlocked" if self.unlocked else ""
        shown_below = [path.text() for path in self.below] if below else []
        return ";".join([policy, *shown_below])


def _policy_text(ssl_flags: str, extended_protection: str) -> str:
    flags = ssl_flags.replace(", ", ",")
    return flags if extended_protection.lower() == "none" else f"{flags}/EP={extended_protection}"


@dataclass(frozen=True)
class Server:
    file: str
    cells: dict[str, Cell]  # by service name
    # The Back End's topmost paths that do not require SSL, but for those Exchange ships so:
    # it must keep requiring SSL whatever the front end does, and is no column of the matrix.
    back_end_without_ssl: tuple[str, ...] = ()

    @property
    def compared(self) -> bool:
        """Only Client Access servers are compared: a file without any front-end target (a
        mailbox-only server, a plain IIS server) has nothing to agree on."""
        return any(cell.present for cell in self.cells.values())


@dataclass(frozen=True)
class Fleet:
    servers: tuple[Server, ...]
    front_end: str = exchange.FRONT_END_SITE
    front_end_found: bool = True  # in the <sites> of at least one file
    nearest_sites: tuple[str, ...] = ()  # if in none: each file's nearest name, once each

    @property
    def compared(self) -> list[Server]:
        return [server for server in self.servers if server.compared]

    def disagreeing_below(self) -> list[str]:
        """Services whose paths below differ between the compared servers."""
        return [
            service
            for service in SERVICES
            if len({server.cells[service].below for server in self.compared}) > 1
        ]

    def disagreeing(self) -> list[str]:
        """Services whose cells differ between the compared servers."""
        return [
            service
            for service in SERVICES
            if len({server.cells[service] for server in self.compared}) > 1
        ]

    @property
    def consistent(self) -> bool:
        return not self.disagreeing()

    @property
    def all_offloaded(self) -> bool:
        return bool(self.compared) and all(
            cell.offloaded is not False for s in self.compared for cell in s.cells.values()
        )

    @property
    def back_end_requires_ssl(self) -> bool:
        """No server's Back End has a path without SSL (but for those Exchange ships so)."""
        return not any(server.back_end_without_ssl for server in self.servers)

    @property
    def front_end_problem(self) -> str | None:
        """Why no server was compared, if none was: the front-end site is in no file's <sites>
        (a misspelt --site, most likely: with each file's site of the nearest name), or no file
        has the Exchange virtual directories in it, or no file could be audited."""
        if self.compared:
            return None
        if not self.servers:
            return "no file could be audited: see each file's error"
        if not self.front_end_found:
            return exchange.unknown_site(self.front_end, self.nearest_sites)
        return f"no Exchange front-end virtual directory in '{self.front_end}' in any file"

    def to_json(self) -> dict[str, Any]:
        """The fleet report (schema: schemas/fleet-report.schema.json), without errors."""
        data: dict[str, Any] = {
            "$schema": SCHEMA_ID,
            "services": list(SERVICES),
            "consistent": self.consistent,
            "disagreeing": self.disagreeing(),
            "all_offloaded": self.all_offloaded,
            "back_end_requires_ssl": self.back_end_requires_ssl,
            "servers": [
                {
                    "file": server.file,
                    "compared": server.compared,
                    "back_end_without_ssl": list(server.back_end_without_ssl),
                    "targets": {
                        service: {
                            "present": cell.present,
                            "effective_ssl_flags": cell.ssl_flags,
                            "extended_protection": cell.extended_protection,
                            "offloaded": cell.offloaded,
                            "unlocked_by": cell.unlocked_by,
                            "below": [
                                {
                                    "path": below.path,
                                    "effective_ssl_flags": below.ssl_flags,
                                    "extended_protection": below.extended_protection,
                                    "unlocked_by": below.unlocked_by,
                                }
                                for below in cell.below
                            ],
                        }
                        for service, cell in server.cells.items()
                    },
                }
                for server in self.servers
            ],
        }
        if self.front_end_problem is not None:
            data["front_end_problem"] = self.front_end_problem
        return data


def fleet_of(reports: list[AuditReport]) -> Fleet:
    """The matrix of the audited files, in their order."""
    servers = tuple(_server(report) for report in reports)
    if not reports:
        return Fleet(servers)
    found = any(report.front_end_found for report in reports)
    nearest = dict.fromkeys(report.nearest_site for report in reports if report.nearest_site)
    return Fleet(servers, reports[0].front_end, found, tuple(nearest))


def _server(report: AuditReport) -> Server:
    rows: dict[str, Row] = {row.service: row for row in report.targets() if row.service}
    cells = {service: _cell(rows.get(service), report) for service in SERVICES}
    return Server(report.name, cells, report.back_end_without_ssl)


def _cell(row: Row | None, report: AuditReport) -> Cell:
    if row is None or not row.in_sites:
        return Cell(False, "", "")  # what it would inherit is no setting of this server's
    below = tuple(_below(row, other) for other in _differing_below(row, report))
    return Cell(
        row.in_sites,
        row.effective_ssl_flags,
        row.extended_protection,
        below,
        row.unlocked_by is not None,
        row.unlocked_by,
    )


def _differing_below(target: Row, report: AuditReport) -> list[Row]:
    """The front end's paths below the target whose policy is not the target's, or whose
    access section is unlocked where the target's is not (or the reverse), by path."""
    key = path_key(target.path)
    below = [
        row
        for row in report.rows
        if row.role == target.role
        and is_below(path_key(row.path), key)
        and _policy_of(row) != _policy_of(target)
    ]
    return sorted(below, key=lambda row: path_key(row.path))


def _policy_of(row: Row) -> tuple[str, str, bool]:
    return row.effective_ssl_flags, row.extended_protection.lower(), row.unlocked_by is not None


def _below(target: Row, row: Row) -> Below:
    depth = len(path_key(target.path).split("/"))
    path = "/".join(row.path.strip("/").split("/")[depth:])
    return Below(
        path_key(path),
        path,
        row.effective_ssl_flags,
        row.extended_protection,
        row.unlocked_by is not None,
        row.unlocked_by,
    )


# --- text --------------------------------------------------------------------------------------


def render_fleet(
    fleet: Fleet,
    *,
    color: bool = False,
    offloaded_only: bool = False,
    unaudited: Sequence[str] = (),
) -> str:
    """The matrix, a line marking the columns where servers differ, and the verdict; with
    `offloaded_only` (--offloaded), whether every server is offloaded too; and the files that
    could not be audited (their errors are on stderr), which the verdict does not cover."""
    differing = set(fleet.disagreeing())
    detailed = set(fleet.disagreeing_below())  # what differs there is below the target
    header = ("SERVER", *SERVICES)
    names = _server_names([server.file for server in fleet.servers])
    body = [
        (name, *(_shown(server, service, service in detailed) for service in SERVICES))
        for name, server in zip(names, fleet.servers, strict=True)
    ]
    marks = ("", *("DIFFERS" if service in differing else "same" for service in SERVICES))
    usual = {service: _most_common(fleet, service) for service in SERVICES}

    def role(row: int, column: int, text: str) -> str | None:
        if row == 0:
            return "header"
        if row == len(body) + 1:
            return "bad" if text == "DIFFERS" else "good"
        server = fleet.servers[row - 1]
        if column == 0 or not server.compared:
            return "dim" if not server.compared else None
        service = SERVICES[column - 1]
        return "bad" if service in differing and server.cells[service] != usual[service] else None

    compared = len(fleet.compared) >= 2  # the marks row says nothing about one server, or none
    rows = [header, *body, marks] if compared else [header, *body]
    lines = aligned(rows, paint_cell=role if color else None)
    verdict = _verdict(fleet, differing, color, offloaded_only, unaudited)
    return "\n".join([*lines, "", *verdict])


def _shown(server: Server, service: str, below: bool) -> str:
    return server.cells[service].text(below=below) if server.compared else "-"


def _server_names(files: list[str]) -> list[str]:
    """Each file's server name (see _server_name), or its whole path where two files would get
    one name (`cas1/applicationHost.config` and `cas1.applicationHost.config`)."""
    names = [_server_name(shown(file)) for file in files]
    counts = Counter(names)
    return [
        name if counts[name] == 1 else shown(file) for name, file in zip(names, files, strict=True)
    ]


def _server_name(file: str) -> str:
    """The path without its '/applicationHost.config' or '.applicationHost.config' ending: the
    folder, or the file name's prefix, names the server."""
    for ending in CONFIG_ENDINGS:
        if file.casefold().endswith(ending) and len(file) > len(ending):
            return file[: -len(ending)]
    return file


def _most_common(fleet: Fleet, service: str) -> Cell | None:
    """The column's most common cell; None on a tie, where no server is the odd one out (two
    servers that differ: each cell is red, not the second one's alone)."""
    top = Counter(server.cells[service] for server in fleet.compared).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def _verdict(
    fleet: Fleet,
    differing: set[str],
    color: bool,
    offloaded_only: bool,
    unaudited: Sequence[str],
) -> list[str]:
    lines = []
    if unaudited:  # not in the matrix: the files are not all the same, whatever it says
        names = ", ".join(shown(name) for name in unaudited)
        lines.append(paint(f"not audited (their errors are on stderr): {names}", "bad", color))
    skipped = [shown(s.file) for s in fleet.servers if not s.compared]  # as in the table
    if skipped:
        lines.append(
            paint(
                "not compared (no Exchange front-end targets): " + ", ".join(skipped), "dim", color
            )
        )
    compared = len(fleet.compared)
    if fleet.front_end_problem is not None:
        problem = shown(fleet.front_end_problem)
        lines.append(paint(f"no Client Access server among the files: {problem}", "bad", color))
    elif compared == 1:
        lines.append(paint("one Client Access server: nothing to compare it with", "dim", color))
    elif differing:
        names = ", ".join(service for service in SERVICES if service in differing)
        lines.append(paint(f"the {compared} servers disagree on: {names}", "bad", color))
    else:
        gate_fails = bool(unaudited) or (offloaded_only and not fleet.all_offloaded)
        lines.append(_agreement(compared, fleet.back_end_requires_ssl, gate_fails, color))
    if not fleet.back_end_requires_ssl:
        lines.append(paint(_back_end_verdict(fleet), "bad", color))
    if offloaded_only and not fleet.all_offloaded:
        lines.append(paint("NOT offloaded everywhere: run confedit offload", "bad", color))
    return lines


def _agreement(compared: int, back_end_fine: bool, gate_fails: bool, color: bool) -> str:
    """The servers agree: on everything the matrix shows, which is the front end alone when a
    Back End finding follows. Green only for a pass: a Back End finding, --offloaded's "NOT
    offloaded everywhere" or files not audited fail the run, and a green "agree" beside a
    failing line reads as a pass."""
    who = "both servers" if compared == 2 else f"all {compared} servers"
    if not back_end_fine:
        return paint(f"{who} agree on the front end", "dim", color)
    return paint(f"{who} agree", "dim" if gate_fails else "good", color)


def _back_end_verdict(fleet: Fleet) -> str:
    """The servers whose Back End does not require SSL, each with where (as the matrix names a
    server, by its folder)."""
    names = _server_names([server.file for server in fleet.servers])
    found = [
        f"{name} (at {back_end_paths(server.back_end_without_ssl)})"
        for name, server in zip(names, fleet.servers, strict=True)
        if server.back_end_without_ssl
    ]
    where = ", ".join(found)
    advice = back_end_advice([path for s in fleet.servers for path in s.back_end_without_ssl])
    return f"the {exchange.BACK_END_SITE} does not require SSL on {where}: {advice}"
