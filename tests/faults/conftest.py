"""Fault tests: each starts its own stack, breaks a piece of it with real signals, and checks
the final state of every upload.

Every fault, and every state change it drives, is tested on each database engine. A test marked
`@pytest.mark.engines("sqlite")` runs on SQLite alone: it repeats a fault and database path that
another test covers on both, and adds what MinIO, Redis or RQ do, which no engine changes.
"""

from __future__ import annotations

import contextlib

import pytest

from stacks import ENGINES, running_stack


def pytest_generate_tests(metafunc):
    if "engine" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("engines")
        metafunc.parametrize("engine", marker.args if marker else ENGINES)


@pytest.fixture
def stack_with(engine, tmp_path, databases):
    """Start a stack with these settings overrides, on a fresh database of the test's engine;
    stopped when the test ends."""
    with contextlib.ExitStack() as stacks:
        yield lambda **overrides: stacks.enter_context(running_stack(
            tmp_path / "stack", database_url=databases.url(engine), **overrides))
