"""Helpers for testing applicationHost.config policies: a plain builder (`build`) and
Hypothesis strategies (`strategies`, needs the `testing` extra)."""
