"""Ten thousand upload URLs handed out and never used must not hide an upload whose event was
lost: the sweeper finds it within 30 s, and its requests to MinIO stay few.

The sweeper runs with its shipped interval and minimum age, so the bound is the one users get.
"""

from __future__ import annotations

from bench.sweeper import lost_upload_among_abandoned
from pipeline_client import make_jpegs

ABANDONED = 10_000
SHIPPED_SWEEP = {"sweep_interval": 5.0, "sweep_min_age": 10.0}


def test_an_upload_whose_event_was_lost_completes_within_30_s_among_10000_abandoned(stack_with, tmp_path):
    stack = stack_with(**SHIPPED_SWEEP)
    [photo] = make_jpegs(tmp_path / "in", 1)

    measured = lost_upload_among_abandoned(stack, photo.read_bytes(), abandoned=ABANDONED, timeout=45)
    print(measured)

    assert measured["status"] == "completed", measured
    assert measured["seconds_to_final"] <= 30, measured
    assert measured["idle_rps"] <= 2, measured
