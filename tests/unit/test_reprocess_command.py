"""`imgpipe reprocess` picks and enqueues its uploads without the worker's code: importing the
command loads neither the image code (and whatever it would set up) nor the worker or its jobs."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

from processor import jobs

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys
import cli.reprocess
print(" ".join(sorted(name for name in sys.modules if name.startswith("processor"))))
"""


def test_the_reprocess_command_imports_no_worker_or_image_code():
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    loaded = set(child.stdout.split())
    assert "processor.jobs" in loaded  # what it enqueues with
    assert not loaded & {"processor.imaging", "processor.worker", "processor.reprocess", "processor.tasks",
                         "processor.resources"}, loaded


def test_the_job_it_names_is_the_reprocess_job():
    module, function = jobs.REPROCESS_UPLOAD.rsplit(".", 1)
    job = getattr(importlib.import_module(module), function)
    assert job.__module__ == "processor.reprocess" and job.__name__ == "reprocess_upload"
