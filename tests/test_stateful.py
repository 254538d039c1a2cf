"""A stateful property: offloads of different services, rollbacks through the reverse diff and
hand edits of unrelated parts, in any order, checked after every step against a simple model.

The model is the generated file's tree with sslFlags="None" pinned at each path whose offload has
not been rolled back (tests/reference_model.py); hand edits change nothing it looks at. Every diff
is applied and rolled back with the real `patch` program.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from lxml import etree

from confedit import offload
from confedit.document import load
from confedit.iis import SSL_FLAGS, Config
from confedit.plan import Request
from confedit.testing import strategies as st_iis
from confedit.testing.strategies import GeneratedConfig
from tests import reference_model as model
from tests.helpers import back_end_blocks, run_patch
from tests.properties import (
    FRONT_END,
    SERVICE_DIRECTORIES,
    interesting_paths,
    parse,
    pinned_tree,
    present_services,
)

LABEL = "applicationHost.config"
# `patch` works on bytes, so the files are UTF-8 here (UTF-16 is covered in test_properties).
UTF8_CONFIGS = st_iis.generated_configs(styles=st_iis.formatting_styles(encodings=("utf-8",)))


def _new_physical_path(data: bytes) -> bytes:
    return data.replace(b"C:\\inetpub\\wwwroot", b"D:\\web\\root", 1)


def _comment_in_sites(data: bytes) -> bytes:
    """A comment line after <sites> that names a location (comments are not configuration)."""
    end = data.index(b"\n", data.index(b"<sites>")) + 1
    newline = b"\r\n" if data[end - 2 : end] == b"\r\n" else b"\n"
    comment = b'<!-- edited by hand: <location path="Default Web Site/owa"> -->'
    return data[:end] + comment + newline + data[end:]


def _renamed_pool(data: bytes) -> bytes:
    return data.replace(b"DefaultAppPool", b"DefaultAppPool2", 1)


# Hand edits of <sites>, far (more than the diff's 3 lines of context) from any <location>.
HAND_EDITS = {
    "physical path": _new_physical_path,
    "comment in sites": _comment_in_sites,
    "application pool": _renamed_pool,
}


@dataclass
class Offloaded:
    key: str
    diff: bytes
    before: bytes
    clean: bool = True  # no hand edit since: rolling back must give `before` byte for byte


class OffloadMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="confedit-stateful-"))
        self.steps = 0
        self.history: list[Offloaded] = []

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    @initialize(config=UTF8_CONFIGS)
    def start(self, config: GeneratedConfig) -> None:
        self.config = config
        self.current = config.raw
        self.initial_tree = parse(config.raw)
        self.back_end = back_end_blocks(config.raw)

    def _patch(self, diff: bytes, *, reverse: bool = False) -> bytes:
        self.steps += 1
        return run_patch(self.folder / str(self.steps), LABEL, self.current, diff, reverse=reverse)

    def _model(self) -> etree._Element:
        return pinned_tree(self.initial_tree, {step.key for step in self.history})

    @rule(data=st.data())
    def offload_one_target(self, data: st.DataObject) -> None:
        services = [(s, (s,), ()) for s in present_services(self.config)]
        paths = [(p, (), (p,)) for p in self.config.site_paths(FRONT_END)]
        name, chosen_services, chosen_paths = data.draw(st.sampled_from(services + paths))
        path = f"{FRONT_END}/{SERVICE_DIRECTORIES[name]}" if chosen_services else name
        key = model.key(path)
        explicit = model.explicit(self._model(), path)
        result = offload(self.current, Request(services=chosen_services, paths=chosen_paths))
        assert result.changed == (explicit is None or model.flag_bits(explicit) != 0)
        diff = result.diff(LABEL)
        after = self._patch(diff) if diff else self.current
        assert after == result.output
        self.history.append(Offloaded(key, diff, self.current))
        self.current = after

    @precondition(lambda self: self.history)
    @rule()
    def roll_back_the_last_offload(self) -> None:
        last = self.history.pop()
        restored = self._patch(last.diff, reverse=True) if last.diff else self.current
        if last.clean:
            assert restored == last.before
        self.current = restored

    @rule(edit=st.sampled_from(sorted(HAND_EDITS)))
    def edit_by_hand(self, edit: str) -> None:
        self.current = HAND_EDITS[edit](self.current)
        for step in self.history:
            step.clean = False

    @invariant()
    def effective_values_follow_the_model(self) -> None:
        if not hasattr(self, "current"):
            return
        actual, expected = parse(self.current), self._model()
        library = Config(load(self.current))
        for path in interesting_paths(expected):
            value = model.effective(expected, path)[0]
            assert model.effective(actual, path)[0] == value, path
            assert library.resolve(path, SSL_FLAGS).value == value, path
        assert back_end_blocks(self.current) == self.back_end


OffloadMachine.TestCase.settings = settings(
    max_examples=max(10, settings.default.max_examples // 2),
    stateful_step_count=20 if settings.default.max_examples < 1000 else 50,
)
TestOffloadSequences = OffloadMachine.TestCase
