"""POST /uploads under load: wrk, 32 connections, for a fixed time, with a Lua script for the
JSON body (bench/post_upload.lua), reporting requests/s and the 99th percentile latency.
Every request carries the Origin header a web app's page on another origin sends, so an API with
CORS switched on does all of its CORS work, and one without ignores the header.

wrk runs on the same two cores as gunicorn, so its own CPU is part of the price; two wrk
threads are the fewest that keep 32 connections busy.
"""

from __future__ import annotations

from pathlib import Path

from bench import wrk

LUA_SCRIPT = Path(__file__).with_name("post_upload.lua")
ORIGIN = "http://localhost:5173"


def run_wrk(api_url: str, seconds: int, token: str) -> dict:
    return wrk.run_wrk(LUA_SCRIPT, f"{api_url}/uploads", seconds, {"BENCH_ORIGIN": ORIGIN, "BENCH_TOKEN": token})
