"""One real stack shared by the integration tests of a session."""

from __future__ import annotations

import pytest

from pipeline_client import Api
from stacks import running_stack


# Webhook receivers in the tests listen on loopback, which callbacks reach only when allowed by
# name; two-second retry intervals let a failing receiver use up its three tries in seconds (RQ
# schedules retries to the whole second, so a try follows the one before by one to two seconds).
WEBHOOK_SETTINGS = {"webhook_allow_hosts": "127.0.0.1", "webhook_secret": "integration-secret",
                    "webhook_retry_intervals": "2,2"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("stack"), **WEBHOOK_SETTINGS) as running:
        yield running


@pytest.fixture
def api(stack):
    return Api(stack.api_url)
