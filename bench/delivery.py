"""`python -m bench.delivery [--quick]`: what one view of a derivative costs by its delivery address,
GET /uploads/<id>/<preset> (part of `make bench`; alone, it sets the "delivery" entry and the
delivery figures of bench/results.json, and the table in BENCHMARKS.md when the file holds a whole
run).

On one stack in private mode, with signed delivery URLs as a page holds them, under wrk
(32 connections, the Accept header Chromium sends for an `<img>`), in a round-robin:
- the redirect from the API itself: the signature checked, the row read, the format negotiated
  and a fresh presigned GET signed, for an upload with three formats and for one with JPEG alone;
- the same address through the caching proxy of the tests (tests/caching_proxy.py, Debian's
  nginx), whose hits never reach the API: the API marks a redirect opened by a signed URL
  `public, max-age=N`, so a shared cache may keep it.

Negotiation is also timed alone (imgpipe.negotiation, parsing the header and choosing, and the
cached answer a repeated header gets), and set against the API's CPU time per redirect. The relay
and the workers are stopped once the uploads are made, leaving the two cores to the API, nginx
and wrk.
"""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import timeit
from pathlib import Path

import requests

from bench import report, wrk
from bench.inputs import photo_like_jpeg
from bench.pipeline import Client, session_cpu_seconds
from bench.stacks import PROJECT_ROOT, remove_stack, start_stack
from imgpipe import delivery_urls, negotiation
from tests.caching_proxy import CACHE_STATUS, caching_proxy

LUA_SCRIPT = Path(__file__).with_name("get_delivery.lua")
RESULTS = PROJECT_ROOT / "bench" / "results.json"
MARKDOWN = PROJECT_ROOT / "BENCHMARKS.md"
FULL, QUICK = (10, 3), (3, 1)  # (seconds of each wrk run, rounds)
PRESET = "thumbnail"
# What Chromium sends for an <img>.
BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
THREE_FORMATS, ONE_FORMAT = ("avif", "webp", "jpeg"), ("jpeg",)
REDIRECT = "redirect, private (signed URL), 3 formats"
REDIRECT_ONE_FORMAT = "redirect, private (signed URL), JPEG only"
CACHE_HIT = "the same through the caching proxy (hit)"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_wrk(url: str, seconds: int) -> dict:
    return wrk.run_wrk(LUA_SCRIPT, url, seconds, {"BENCH_ACCEPT": BROWSER_ACCEPT})


def completed_upload(stack, formats: tuple[str, ...]) -> str:
    client = Client(stack.api_url, stack.settings.api_token)
    data = photo_like_jpeg(1200, 800, seed=len(formats))
    answer = client.api.post(f"{stack.api_url}/uploads", timeout=10, json={
        "filename": "photo.jpg", "content_type": "image/jpeg", "size": len(data), "formats": list(formats)})
    answer.raise_for_status()
    created = answer.json()
    client.put(created, data)
    status = client.wait_final(created["id"])
    if status["status"] != "completed":
        raise RuntimeError(f"the bench's upload did not complete: {status}")
    return created["id"]


def check_redirect(url: str, expected_cache: str | None = None) -> None:
    """One request before wrk's, so a run measures redirects (and hits) and not refusals."""
    answer = requests.get(url, headers={"Accept": BROWSER_ACCEPT}, allow_redirects=False, timeout=10)
    if answer.status_code != 302 or (expected_cache and answer.headers.get(CACHE_STATUS) != expected_cache):
        raise RuntimeError(f"{url} answered {answer.status_code} {answer.headers.get(CACHE_STATUS)}: {answer.text[:200]}")


def negotiation_us(rounds: int = 9, number: int = 10_000) -> dict:
    """µs per call, the best of `rounds`: parsing Accept and choosing (negotiation.choose without
    its cache), and the cached answer a header seen before gets."""
    def best(call) -> float:
        return round(min(timeit.repeat(call, number=number, repeat=rounds)) / number * 1e6, 2)

    choose = negotiation.choose
    three, one = frozenset(THREE_FORMATS), frozenset(ONE_FORMAT)
    return {"three_formats": best(lambda: choose.__wrapped__(BROWSER_ACCEPT, three)),
            "one_format": best(lambda: choose.__wrapped__(BROWSER_ACCEPT, one)),
            "cached": best(lambda: choose(BROWSER_ACCEPT, three))}


def measure(seconds: int, rounds: int) -> dict:
    say(f"delivery: private-mode redirects by signed URL, from the API and through nginx, {seconds} s × {rounds}")
    background = report.cpu_busy_fraction(1.0)
    secret = secrets.token_hex(32)
    stack = start_stack(workers=1, delivery_secret=secret)
    try:
        three, one = completed_upload(stack, THREE_FORMATS), completed_upload(stack, ONE_FORMAT)
        for name in [name for name in stack.processes if name == "relay" or name.startswith("worker")]:
            stack.stop_process(name)
        with caching_proxy({"api": stack.api_url}) as proxy:
            targets = {REDIRECT: stack.api_url + delivery_urls.path(secret, three, PRESET),
                       REDIRECT_ONE_FORMAT: stack.api_url + delivery_urls.path(secret, one, PRESET),
                       CACHE_HIT: proxy.url("api") + delivery_urls.path(secret, three, PRESET)}
            check_redirect(targets[REDIRECT]), check_redirect(targets[REDIRECT_ONE_FORMAT])
            check_redirect(targets[CACHE_HIT]), check_redirect(targets[CACHE_HIT], "HIT")
            api_pid = stack.processes["api"].pid
            runs: dict[str, list[dict]] = {name: [] for name in targets}
            for round_index in range(rounds):
                for name, url in targets.items():
                    logged, cpu_before = len(proxy.entries()), session_cpu_seconds(api_pid)
                    run = run_wrk(url, seconds)
                    run["api_cpu_ms_per_request"] = round(
                        (session_cpu_seconds(api_pid) - cpu_before) * 1000 / max(1, run["requests"]), 4)
                    if name == CACHE_HIT:
                        verdicts = [entry["cache"] for entry in proxy.entries(logged)]
                        run["hit_share"] = round(verdicts.count("HIT") / max(1, len(verdicts)), 4)
                    say(f"  {name}: {run['rps']} req/s, p99 {run['p99_ms']} ms, {run['failures']} failed,"
                        f" API CPU {run['api_cpu_ms_per_request']} ms/request (round {round_index + 1}/{rounds})")
                    runs[name].append(run)
    finally:
        remove_stack(stack)
    kept = {name: {**sorted(results, key=lambda run: run["rps"])[(len(results) - 1) // 2],
                   "rps_of_rounds": [run["rps"] for run in results]} for name, results in runs.items()}
    timed = negotiation_us()
    redirect_cpu_us = statistics.median(run["api_cpu_ms_per_request"] for run in runs[REDIRECT]) * 1000
    say(f"  negotiation: {timed['three_formats']} µs to parse and choose among three formats,"
        f" {timed['cached']} µs cached; {timed['three_formats'] / redirect_cpu_us:.2%} of the API's CPU per redirect")
    return {"seconds": seconds, "rounds": rounds, "background_cpu_busy": background, "connections": wrk.CONNECTIONS,
            "accept": BROWSER_ACCEPT, "runs": kept, "negotiation_us": timed,
            "negotiation_share_of_redirect_cpu": round(timed["three_formats"] / redirect_cpu_us, 4)}


def headline(figures: dict) -> dict:
    """The delivery figures of bench/results.json's top level (report.TARGETS)."""
    runs = figures["runs"]
    return {"delivery_redirect_rps": runs[REDIRECT]["rps"], "delivery_redirect_p99_ms": runs[REDIRECT]["p99_ms"],
            "delivery_cache_hit_rps": runs[CACHE_HIT]["rps"], "delivery_cache_hit_p99_ms": runs[CACHE_HIT]["p99_ms"],
            "negotiation_us": figures["negotiation_us"]["three_formats"]}


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    seconds, rounds = QUICK if quick else FULL
    figures = {**measure(seconds, rounds), "mode": "quick" if quick else "full"}
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(headline(figures), delivery=figures)
    report.write_results(results, RESULTS)
    if "measured_at" in results:  # a whole run's figures are there to write the table around
        report.write_markdown(results, MARKDOWN)
    for name, value in headline(figures).items():
        say(f"  {name} = {value}")


if __name__ == "__main__":
    main()
