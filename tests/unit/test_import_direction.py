"""Imports only go down: cli/ -> api/, processor/, notify_config/ -> imgpipe/, and the middle
layer's parts never import each other."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_FROM = {"imgpipe": ("processor", "api", "cli", "notify_config"), "processor": ("api", "cli", "notify_config"),
            "api": ("processor", "cli", "notify_config"), "notify_config": ("processor", "api", "cli")}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", list(NOT_FROM))
def test_no_import_runs_back_up(layer):
    upward = {(str(path.relative_to(ROOT)), name) for path in (ROOT / layer).rglob("*.py")
              for name in imported(path) if name.split(".")[0] in NOT_FROM[layer]}
    assert not upward


def modules_loaded_by(module: str) -> set[str]:
    """Every module importing `module` loads, in a fresh interpreter."""
    script = f"import sys, {module}; print('\\n'.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout.split())


def test_the_relay_loads_no_worker_code():
    """The relay enqueues jobs (processor.jobs) and runs none: a worker's resources, the jobs
    themselves and the image code stay out of its process."""
    loaded = modules_loaded_by("processor.relay")
    assert "processor.jobs" in loaded
    assert not loaded & {"processor.resources", "processor.tasks", "processor.webhooks", "processor.reprocess",
                         "processor.imaging", "processor.moderation"}
