"""POST /uploads under load: wrk, 32 connections, for a fixed time, with a Lua script for the
JSON body (bench/post_upload.lua), reporting requests/s and the 99th percentile latency.
Every request carries the Origin header a web app's page on another origin sends, so an API with
CORS switched on does all of its CORS work, and one without ignores the header.

wrk runs on the same two cores as gunicorn, so its own CPU is part of the price; two wrk
threads are the fewest that keep 32 connections busy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("post_upload.lua")
CONNECTIONS = 32
WRK_THREADS = 2
ORIGIN = "http://localhost:5173"


def run_wrk(api_url: str, seconds: int, token: str) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: run scripts/install_bench_deps.sh (Debian package wrk)")
    result = subprocess.run(
        [wrk, f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(LUA_SCRIPT),
         f"{api_url}/uploads"],
        capture_output=True, text=True, timeout=seconds + 60, check=True, env={**os.environ, "BENCH_ORIGIN": ORIGIN, "BENCH_TOKEN": token})
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH-JSON ")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")
    raw = json.loads(lines[-1].removeprefix("BENCH-JSON "))
    seconds_run = raw["duration_us"] / 1e6
    failures = raw["non_2xx"] + raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds_run, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "failures": failures,
        "non_2xx": raw["non_2xx"],
    }
