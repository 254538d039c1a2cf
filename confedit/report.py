"""Text and JSON renderings of results and errors (no I/O here: the commands print them)."""

from __future__ import annotations

from typing import Any, Final

from confedit.auditing import SCHEMA_ID as AUDIT_SCHEMA_ID
from confedit.engine import Result
from confedit.errors import ConfeditError, InvalidInput, Refused, shown
from confedit.plan import Outcome

SCHEMA_ID: Final = "https://confedit.example/schemas/offload-report-1.json"
BATCH_SCHEMA_ID: Final = "https://confedit.example/schemas/offload-batch-1.json"
AUDIT_BATCH_SCHEMA_ID: Final = "https://confedit.example/schemas/audit-batch-1.json"
ACCESS_TEXT: Final = '<access sslFlags="None" />'


def describe(outcome: Outcome) -> str:
    """What was done to one target, in words."""
    if outcome.action == "unchanged":
        return 'already sslFlags="None"  (nothing to do)'
    if outcome.action == "rewritten":
        what = 'set sslFlags="None"'
    elif outcome.action == "inserted":
        what = f"inserted {ACCESS_TEXT}"
    else:
        what = f"created <{outcome.created[0]}> with {ACCESS_TEXT}"
    return f"{what}  ({_was(outcome)})"


def _was(outcome: Outcome) -> str:
    before = outcome.before
    origin = f"inherited from {before.where}" if outcome.inherited else "set here"
    text = f'was "{before.value}", {origin}'
    return text + "; pinned explicitly, as appcmd does" if outcome.pinned else text


def target_lines(result: Result) -> list[str]:
    """One aligned line per target."""
    rows = [
        (o.target.service or "path", shown(o.target.path), shown(describe(o)))
        for o in result.outcomes
    ]
    if not rows:
        return []
    width_service = max(len(r[0]) for r in rows)
    width_path = max(len(r[1]) for r in rows)
    return [f"{s:<{width_service}}  {p:<{width_path}}  {d}" for s, p, d in rows]


def summary_line(result: Result, name: str, *, written: bool = False) -> str:
    """One line: what is (or, once `written`, was) changed, and the pools to recycle."""
    changed = [o for o in result.outcomes if o.changed]
    name = shown(name)
    if not changed:
        return f"{name}: already offloaded, nothing to do"
    counts: dict[str, int] = {}
    for outcome in changed:
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
    parts = ", ".join(f"{n} {action}" for action, n in counts.items())
    pools = ", ".join(result.plan.pools)
    recycle = f"; recycle: {pools}" if pools else ""
    verb = "changed" if written else "to change"
    total = len(result.outcomes)
    targets = f"{len(changed)} of {total} target{'s' * (total != 1)}"
    return f"{name}: {targets} {verb} ({parts}){recycle}"


def finding_lines(result: Result) -> list[str]:
    return [f"{f.level}: {shown(f.message)}" for f in result.findings]


def result_json(result: Result, *, diff: str, status: str, exit_code: int) -> dict[str, Any]:
    """The JSON report of a completed run (schema: schemas/offload-report.schema.json)."""
    lines = result.lines
    return {
        "$schema": SCHEMA_ID,
        "file": result.document.name,
        "status": status,
        "exit_code": exit_code,
        "encoding": result.document.encoding.label,
        "targets": [_target_json(result, o, lines[o.target.path]) for o in result.outcomes],
        "findings": [
            {"code": f.code, "level": f.level, "message": f.message, "path": f.path}
            for f in result.findings
        ],
        "application_pools_to_recycle": result.plan.pools,
        "semantic_changes": [list(actions) for actions in result.semantic_changes],
        "diff": diff,
        "error": None,
    }


def _target_json(result: Result, outcome: Outcome, line: int) -> dict[str, Any]:
    before = outcome.before
    return {
        "service": outcome.target.service,
        "path": outcome.target.path,
        "action": outcome.action,
        "created": list(outcome.created),
        "before": {
            "sslFlags": before.value,
            "source": before.where,
            "line": result.document.line_of(before.source.element) if before.source else None,
        },
        "after": {"sslFlags": "None"},
        "line": line,
        "pinned": outcome.pinned,
        "application_pool": outcome.pool,
        "message": describe(outcome),
    }


def error_json(error: ConfeditError, name: str | None, exit_code: int) -> dict[str, Any]:
    """The JSON report of a run that stopped: refused, invalid input, usage or internal error."""
    return {
        "$schema": SCHEMA_ID,
        "file": name,
        "status": error.kind,
        "exit_code": exit_code,
        "encoding": None,
        "targets": [],
        "findings": [],
        "application_pools_to_recycle": [],
        "semantic_changes": [],
        "diff": "",
        "error": _error_detail(error),
    }


def _error_detail(error: ConfeditError) -> dict[str, Any]:
    """The `error` member of every JSON report: kind, message, and what the kind adds."""
    detail: dict[str, Any] = {"kind": error.kind, "message": str(error)}
    if isinstance(error, Refused):
        detail["reasons"] = error.reasons
        if error.advice:
            detail["advice"] = error.advice
    if isinstance(error, InvalidInput):
        detail["line"] = error.line
        detail["column"] = error.column
    return detail


def audit_error_json(error: ConfeditError, name: str | None, exit_code: int) -> dict[str, Any]:
    """The JSON report of an audit that stopped (schema: schemas/audit-report.schema.json)."""
    return {
        "$schema": AUDIT_SCHEMA_ID,
        "file": name,
        "status": error.kind,
        "exit_code": exit_code,
        "error": _error_detail(error),
    }


# --- many files ------------------------------------------------------------------------------

# How each file's status counts in the closing summary (groups are also the JSON keys).
SUMMARY_GROUPS: Final = {
    "changed": "changed",
    "work-found": "changed",
    "unchanged": "unchanged",
    "offloaded": "offloaded",
    "not-offloaded": "not_offloaded",
    "refused": "refused",
    "invalid": "invalid",
}
FAILED: Final = "failed"  # internal errors, outputs that could not be written, usage problems


def summary_counts(statuses: list[str], groups: tuple[str, ...]) -> dict[str, int]:
    """Files per group of the closing summary, `groups` first (even when 0), then failures."""
    counts = dict.fromkeys(groups, 0)
    for status in statuses:
        group = SUMMARY_GROUPS.get(status, FAILED)
        counts[group] = counts.get(group, 0) + 1
    return counts


def summary_text(counts: dict[str, int], names: dict[str, tuple[str, str]] | None = None) -> str:
    """'4 files: 2 changed, 1 unchanged, 0 refused, 1 invalid'. `names` renames groups: the
    words after a count of one, and after any other count ('1 needs work', '2 need work')."""
    total = sum(counts.values())
    plain = {group: group.replace("_", " ") for group in counts}
    words = {group: (word, word) for group, word in plain.items()} | (names or {})
    parts = ", ".join(f"{n} {words[group][n != 1]}" for group, n in counts.items())
    return f"{total} file{'s' * (total != 1)}: {parts}"


def batch_json(
    schema: str,
    files: list[dict[str, Any]],
    counts: dict[str, int],
    exit_code: int,
    error: ConfeditError | None = None,
) -> dict[str, Any]:
    """The JSON report of a run over several files: each file's own report, in input order,
    and the run's own error if it had one (the combined --diff could not be written, or the
    files written to --output-dir could not be flushed to disk)."""
    document = {
        "$schema": schema,
        "exit_code": exit_code,
        "summary": {"files": len(files), **counts},
        "files": files,
    }
    if error is not None:
        document["error"] = _error_detail(error)
    return document
