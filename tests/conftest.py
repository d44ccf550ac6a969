"""Makes tests/ importable, so test modules share helpers such as the image corpus, and gives
every test the session's databases (a throwaway PostgreSQL server once one is asked for)."""

from __future__ import annotations

import pytest

from stacks import Databases


@pytest.fixture(scope="session")
def databases():
    made = Databases()
    yield made
    made.stop()
