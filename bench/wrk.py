"""One run of wrk with one of the benchmark's scripts, read back from the BENCH-JSON line every
script prints at its end (bench/wrk_report.lua)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

CONNECTIONS = 32
THREADS = 2


def run_wrk(script: Path, url: str, seconds: int, env: dict[str, str]) -> dict:
    """Requests, requests/s, latency percentiles (ms) and failures: answers of 400 and over,
    connection errors and timeouts."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: run scripts/install_bench_deps.sh (Debian package wrk)")
    result = subprocess.run(
        [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60, check=True, env={**os.environ, **env})
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH-JSON ")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")
    raw = json.loads(lines[-1].removeprefix("BENCH-JSON "))
    failures = raw["non_2xx"] + raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {"requests": raw["requests"], "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "p50_ms": round(raw["p50_us"] / 1000, 2), "p99_ms": round(raw["p99_us"] / 1000, 2),
            "max_ms": round(raw["max_us"] / 1000, 2), "failures": failures, "non_2xx": raw["non_2xx"]}
