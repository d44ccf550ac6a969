"""One real stack shared by the integration tests of a session."""

from __future__ import annotations

import pytest

from pipeline_client import Api
from stacks import running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def api(stack):
    return Api(stack.api_url)
