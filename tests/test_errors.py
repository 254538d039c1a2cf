"""errors.py: the exceptions a program calling confedit catches."""

from __future__ import annotations

import pickle

import pytest

from confedit.errors import (
    ConfeditError,
    InvalidInput,
    Refused,
    StdoutFailed,
    UsageProblem,
    VerificationFailed,
)

ERRORS = [
    ConfeditError("cannot write", source="a.config"),
    InvalidInput("not well-formed", source="a.config", line=3, column=7),
    UsageProblem("unknown service 'x'"),
    Refused(["one reason", "another"], source="a.config", advice="do this instead"),
    Refused(["one reason"]),
    VerificationFailed("the edit reaches outside its element", source="a.config"),
    StdoutFailed("Broken pipe"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_an_error_comes_back_from_pickle_as_it_was(error):
    """A multiprocessing pool sends a worker's exception to its parent pickled: an error whose
    constructor takes other arguments than its message came back with its message's letters
    for reasons (Refused) or its prefix twice (StdoutFailed)."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)
