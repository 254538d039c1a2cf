"""Mutation fuzzing: damaged real files never crash confedit, and nothing is written on refusal.

For a long run before a release: HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from confedit import cli
from tests.conftest import SAMPLES, corpus_files, variant

SOURCES = [p.read_bytes() for p in corpus_files() if "malformed" not in p.name]
SOURCES.append((SAMPLES / "exchange2013-cas.applicationHost.config").read_bytes())
JUNK = [
    b"<",
    b">",
    b"&",
    b"]]>",
    b"<!--",
    b"-->",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"<location>",
    b'<access sslFlags="Ssl" />',
    b"</security>",
    b"<!DOCTYPE x>",
    b"\r",
    b'"',
    b"'",
]


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    raw = variant(
        draw(st.sampled_from(SOURCES)), draw(st.sampled_from(["stored", "crlf", "bom-crlf"]))
    )
    how = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "encoding", "duplicate"]))
    at = draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        return raw[:at] + bytes([raw[at] ^ (1 << draw(st.integers(0, 7)))]) + raw[at + 1 :]
    if how == "truncate":
        return raw[:at]
    if how == "insert":
        return raw[:at] + draw(st.sampled_from(JUNK) | st.binary(max_size=8)) + raw[at:]
    if how == "delete":
        return raw[:at] + raw[at + draw(st.integers(1, 64)) :]
    if how == "encoding":
        codec = draw(st.sampled_from(["utf-16-le", "utf-16-be", "latin-1"]))
        body = raw.removeprefix(codecs.BOM_UTF8).decode("utf-8")
        bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(codec, b"")
        return draw(st.sampled_from([bom, b""])) + body.encode(codec)
    start, length = at, draw(st.integers(1, 400))
    return raw[:start] + raw[start : start + length] * 2 + raw[start + length :]


def run_cli(data: bytes, *extra: str) -> tuple[int, str, bytes | None, bytes]:
    """Offload `data` from a file in a fresh folder; return code, messages, output, input after."""
    with tempfile.TemporaryDirectory() as folder:
        config, out = Path(folder) / "applicationHost.config", Path(folder) / "out.config"
        config.write_bytes(data)
        result = CliRunner().invoke(cli.main, ["offload", str(config), "-o", str(out), *extra])
        written = out.read_bytes() if out.exists() else None
        return result.exit_code, result.output, written, config.read_bytes()


def check_run(data: bytes, *extra: str) -> None:
    code, messages, written, after = run_cli(data, *extra)
    assert code in (0, 1, 3, 4), messages
    assert "Traceback" not in messages and "internal error" not in messages, messages
    assert after == data, "the input is never modified"
    if code in (3, 4):
        assert written is None, "nothing is written on refusal or invalid input"
        return
    assert written is not None
    text = written.removeprefix(codecs.BOM_UTF8)
    if not text.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        etree.fromstring(written)  # the output re-parses
    code_again, messages_again, written_again, _ = run_cli(written, *extra)
    assert (code_again, written_again) == (0, written), messages_again


@given(damaged())
@example(b"")
@example(SOURCES[-1][: SOURCES[-1].index(b"</configuration>")])
def test_damaged_real_files_never_crash_and_never_write_on_refusal(data: bytes) -> None:
    check_run(data, "--allow-extended-protection")


@given(
    damaged(),
    st.sampled_from(
        [("--service", "owa"), ("--include-descendants",), ("--path", "Default Web Site/OAB")]
    ),
)
def test_damaged_files_with_other_requests(data: bytes, extra: tuple[str, ...]) -> None:
    check_run(data, *extra)


def _outcome(data: bytes, prune_above: int) -> tuple[str, bytes | int]:
    from confedit import document, offload
    from confedit.errors import ConfeditError
    from confedit.plan import Request

    saved = document.PRUNE_ABOVE
    document.PRUNE_ABOVE = prune_above
    try:
        return "ok", offload(data, Request(allow_extended_protection=True)).output
    except ConfeditError as error:
        return type(error).__name__, int(error.exit_code)
    finally:
        document.PRUNE_ABOVE = saved


@given(damaged())
def test_the_large_file_loader_agrees_with_the_plain_one(data: bytes) -> None:
    """Large files are loaded from a copy without the other sites (or by a pruning parse); on
    damaged real files that must give the same output, or the same kind of refusal."""
    assert _outcome(data, prune_above=0) == _outcome(data, prune_above=1 << 40)
