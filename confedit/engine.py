"""The data path in one place: load -> plan -> splice -> verify -> Result."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from confedit.diffing import unified_diff
from confedit.document import Document, load
from confedit.edits import Edit, Moves, ordered, splice
from confedit.errors import UsageProblem
from confedit.exchange import BACK_END_SITE
from confedit.iis import Config
from confedit.plan import Finding, Outcome, Plan, Request, plan
from confedit.spans import fold
from confedit.verify import verify


@dataclass(frozen=True, eq=False)
class Result:
    """A verified offload: the new bytes, what was done to each target, and what to watch."""

    document: Document
    plan: Plan
    # The output as confedit works on it: UTF-8, whatever the input's encoding (a UTF-16 file
    # is transcoded). The file to write is `output`.
    output_data: bytes
    semantic_changes: tuple[tuple[str, ...], ...]  # xmldiff's actions, per edit

    @property
    def changed(self) -> bool:
        """Whether any byte changes (False: `output` is the input, and the diff is empty)."""
        return bool(self.plan.edits)

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        """One per target: its action, the value before, the application pool to recycle."""
        return self.plan.outcomes

    @property
    def findings(self) -> tuple[Finding, ...]:
        """The warnings and notes for the operator (`code` is stable for machines)."""
        return self.plan.findings

    @property
    def edits(self) -> tuple[Edit, ...]:
        """The byte edits, as offsets into the input's working bytes (`document.data`)."""
        return self.plan.edits

    @cached_property
    def output(self) -> bytes:
        """The patched file, in the input's own encoding and BOM."""
        return self.document.encoding.encode(self.output_data)

    def diff(self, label: str) -> bytes:
        """Unified diff naming a/LABEL and b/LABEL (LABEL: see diffing.diff_label), in UTF-8
        whatever the input's encoding: for review (it does not apply to a UTF-16 file)."""
        if not isinstance(label, str):  # a Path failed inside with a TypeError, only on a change
            raise UsageProblem(
                f"diff takes the file's name as a str, not {type(label).__name__}: "
                "result.diff(path.name)"
            )
        return unified_diff(self.document.data, self.output_data, self.plan.edits, label)

    @cached_property
    def lines(self) -> dict[str, int]:
        """Line of each target's <access> element in the output, by target path."""
        moves = Moves(ordered(self.plan.edits))
        offsets: list[tuple[int, str]] = []
        for outcome in self.outcomes:
            edit = outcome.edit
            inner = -1 if edit is None else edit.text.find(b"<access")
            if edit is None or inner == -1:  # the start tag is the input's: at outcome.offset
                offsets.append((moves.offset(outcome.offset), outcome.target.path))
            else:  # written by the edit
                offsets.append((moves.start(edit) + inner, outcome.target.path))
        lines: dict[str, int] = {}
        line, scanned = 1, 0
        for offset, path in sorted(offsets):
            line += self.output_data.count(b"\n", scanned, offset)
            scanned = offset
            lines[path] = line
        return lines


def offload(raw: bytes, request: Request | None = None, name: str = "<input>") -> Result:
    """Offload SSL for `request` (default: the seven services) in the file bytes `raw`.

    Raises InvalidInput (not an applicationHost.config), UsageProblem, Refused (unsafe), or
    VerificationFailed (a bug: the result did not pass confedit's own checks).
    """
    if request is None:
        request = Request()
    elif not isinstance(request, Request):  # a str naming a service or the file, say
        raise UsageProblem(
            f"request takes a confedit.Request, not {type(request).__name__}: "
            "Request(services=('owa',)) or Request(paths=('Default Web Site/owa',))"
        )
    document = load(raw, name, sites=(request.site, BACK_END_SITE))
    return offload_document(document, request)


def offload_document(document: Document, request: Request) -> Result:
    """offload() for a Document loaded with (at least) the request's site and the Back End."""
    needed = {fold(request.site), fold(BACK_END_SITE)}
    if document.scope is not None and not needed <= document.scope:
        raise UsageProblem(f"the document was loaded without the sites {sorted(needed)}")
    the_plan = plan(Config(document), request)
    output = splice(document.data, the_plan.edits)
    actions = verify(document, the_plan.edits, output)
    return Result(document, the_plan, output, tuple(tuple(a) for a in actions))
