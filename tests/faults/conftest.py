"""Fault tests: each starts its own stack, breaks a piece of it with real signals, and checks
the final state of every upload."""

from __future__ import annotations

import contextlib

import pytest

from stacks import running_stack


@pytest.fixture
def stack_with(tmp_path):
    """Start a stack with these settings overrides; stopped when the test ends."""
    with contextlib.ExitStack() as stacks:
        yield lambda **overrides: stacks.enter_context(running_stack(tmp_path / "stack", **overrides))
