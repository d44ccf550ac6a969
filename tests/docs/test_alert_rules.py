"""The example alert rules in docs/operations/ load in Prometheus and fire when they should:
checked by Debian's promtool (scripts/install_promtool.sh installs it when it is missing)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cli.stack import PROJECT_ROOT

OPERATIONS = PROJECT_ROOT / "docs" / "operations"


@pytest.fixture(scope="module")
def promtool():
    if shutil.which("promtool") is None:
        subprocess.run([str(PROJECT_ROOT / "scripts" / "install_promtool.sh")], check=True)
    return shutil.which("promtool")


def test_the_rules_are_valid(promtool):
    result = subprocess.run([promtool, "check", "rules", str(OPERATIONS / "alerts.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout + result.stderr


def test_the_rules_fire_on_what_they_describe(promtool):
    result = subprocess.run([promtool, "test", "rules", "alerts.test.yml"], cwd=OPERATIONS,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
