"""`python -m bench.recovery [--quick]`: what recovery costs, written to bench/recovery.json.

- the sweeper: the cost of a HEAD per pending row against a LIST page (why it lists), then
  an upload whose event was lost among 10,000 abandoned ones: seconds until it is completed,
  and the sweeper's requests per second to MinIO;
- the durability choices (bench.durability): MinIO's synchronous events and Redis'
  append-only file, their latency cost and what survives a SIGKILL right after the writes.

Run by `make bench` after the main benchmark; docs/design/sweeper.md and durability.md quote it (make docs).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import durability, sweeper
from bench.inputs import SIZES, photo_like_jpeg
from bench.report import cpu_busy_fraction, machine
from bench.stacks import PROJECT_ROOT, remove_stack, start_stack

ABANDONED = 10_000
FULL = {"heads": 1000, "lists": 100, "puts": 300, "enqueues": 1000, "kill_trials": 3, "kill_uploads": 60}
QUICK = {"heads": 200, "lists": 20, "puts": 60, "enqueues": 200, "kill_trials": 1, "kill_uploads": 30}


def say(message: str) -> None:
    print(f"[bench.recovery {time.strftime('%H:%M:%S')}] {message}", flush=True)


def measure_sweeper(plan: dict, image: bytes) -> dict:
    say("sweeper: a stack with the shipped sweep interval and minimum age")
    stack = start_stack(workers=1)
    try:
        say(f"sweeper: {ABANDONED} abandoned uploads, then one whose event is lost")
        lost = sweeper.lost_upload_among_abandoned(stack, image, abandoned=ABANDONED)
        say(f"  {lost['status']} {lost['seconds_to_final']} s after its PUT; sweeper {lost['idle_rps']} requests/s"
            f" to MinIO ({lost['idle_requests']} in {lost['idle_window_s']} s)")
        say(f"sweeper: {plan['heads']} HEADs of missing keys against {plan['lists']} LIST pages")
        costs = sweeper.request_costs(stack, plan["heads"], plan["lists"])
        say(f"  {costs}")
    finally:
        remove_stack(stack)
    return {"lost_upload": lost, "request_costs": costs}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (the 10,000 abandoned rows stay)")
    parser.add_argument("--results", type=Path, default=PROJECT_ROOT / "bench" / "recovery.json")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    began = time.monotonic()
    background_before = cpu_busy_fraction(1.0)
    image = photo_like_jpeg(*SIZES["1mp"], seed=2)
    results = {"sweeper": measure_sweeper(plan, image)}
    say("durability: four Redis + MinIO pairs, one per variant")
    results["durability"] = durability.measure(
        image, puts=plan["puts"], enqueues=plan["enqueues"], kill_trials=plan["kill_trials"],
        kill_uploads=plan["kill_uploads"], say=say)
    for name, variant in results["durability"]["variants"].items():
        kept = [(run["events"], run["jobs"], run["uploads"]) for run in variant["after_sigkill"]]
        say(f"  {name}: PUT 1 MP p50 {variant['put']['p50_ms']} ms (+{variant['put']['extra_p50_ms']}),"
            f" PUT 1 KiB p50 {variant['put_1kib']['p50_ms']} ms (+{variant['put_1kib']['extra_p50_ms']}),"
            f" enqueue p50 {variant['enqueue']['p50_ms']} ms (+{variant['enqueue']['extra_p50_ms']});"
            f" kept after SIGKILL (events, jobs, of uploads): {kept}")
    results.update(mode="quick" if args.quick else "full", plan=plan, seconds=round(time.monotonic() - began),
                   measured_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), machine=machine(),
                   background_cpu_busy={"before": background_before, "after": cpu_busy_fraction(1.0)})
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    say(f"wrote {args.results}")


if __name__ == "__main__":
    main()
