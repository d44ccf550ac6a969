"""One real stack per database engine, shared by the integration tests of a session: every
test that uses it runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess

import pytest

from cli.stack import PROJECT_ROOT
from pipeline_client import Api
from stacks import ENGINES, running_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


# Webhook receivers in the tests listen on loopback, on free ports, which callbacks reach only when
# allowed by name and port; two-second retry intervals let a failing receiver use up its three tries in seconds (RQ
# schedules retries to the whole second, so a try follows the one before by one to two seconds).
WEBHOOK_SETTINGS = {"webhook_allow_hosts": "127.0.0.1", "webhook_ports": "*", "webhook_secret": "integration-secret",
                    "webhook_retry_intervals": "2,2"}


@pytest.fixture(scope="session", params=ENGINES)
def stack(request, tmp_path_factory, databases):
    with running_stack(tmp_path_factory.mktemp(f"stack-{request.param}"), database_url=databases.url(request.param),
                       **WEBHOOK_SETTINGS) as running:
        yield running


@pytest.fixture
def api(stack):
    return Api.of(stack)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (whose own browser downloads are never used)."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        subprocess.run([str(PROJECT_ROOT / "scripts" / "install_chromium.sh")], check=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
