"""Property-based requests generated from the OpenAPI description (schemathesis) against the
live API: whatever the body, path or header, the answer is never a 5xx and always matches the
description."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from api.openapi import document_for
from imgpipe.settings import Settings

DOCUMENT = document_for(Settings())
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def live_api(stack):
    """The stack's API, checked to serve the very document the requests are generated from."""
    owner = {"Authorization": f"Bearer {stack.settings.api_token}"}
    assert requests.get(f"{stack.api_url}/openapi.json", headers=owner, timeout=10).json() == DOCUMENT
    return stack.api_url, owner


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_every_generated_request(case, live_api):
    base_url, owner = live_api
    case.call_and_validate(base_url=base_url, headers=owner)
