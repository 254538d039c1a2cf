"""confedit: offline, byte-exact SSL-offloading edits of IIS applicationHost.config for Exchange.

    >>> import confedit
    >>> result = confedit.offload(open("applicationHost.config", "rb").read())  # doctest: +SKIP
    >>> result.output, result.diff("applicationHost.config")  # doctest: +SKIP

The public names are loaded on first use, so that `confedit --version` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AuditReport",
    "ConfeditError",
    "ExitCode",
    "Finding",
    "InvalidInput",
    "Outcome",
    "Refused",
    "Request",
    "Result",
    "UsageProblem",
    "VerificationFailed",
    "audit",
    "load",
    "offload",
]

_HOMES = {
    "offload": "confedit.engine",
    "Result": "confedit.engine",
    "Request": "confedit.plan",
    "audit": "confedit.auditing",
    "AuditReport": "confedit.auditing",
    "load": "confedit.document",
    "ConfeditError": "confedit.errors",
    "ExitCode": "confedit.errors",
    "Finding": "confedit.plan",
    "Outcome": "confedit.plan",
    "InvalidInput": "confedit.errors",
    "Refused": "confedit.errors",
    "UsageProblem": "confedit.errors",
    "VerificationFailed": "confedit.errors",
}

if TYPE_CHECKING:
    from confedit.auditing import AuditReport, audit
    from confedit.document import load
    from confedit.engine import Result, offload
    from confedit.errors import (
        ConfeditError,
        ExitCode,
        InvalidInput,
        Refused,
        UsageProblem,
        VerificationFailed,
    )
    from confedit.plan import Finding, Outcome, Request


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value  # loaded once
        return value
    raise AttributeError(f"module 'confedit' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names, loaded or not (tab completion and help() read this), not the helpers
    # of the lazy loading.
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
