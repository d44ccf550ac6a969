"""`python -m bench [--quick]`: run every measurement in one go on this machine and write
bench/results.json and the generated table in BENCHMARKS.md.

The order matters on a two-core machine: processing and memory are measured before any
server starts, the pipeline with the whole stack up, the API with the relay and workers
stopped (wrk's POSTs leave rows with no upload, which the relay's sweeper would otherwise
chase while wrk is running). The database engines are compared on two stacks alike but for
DATABASE_URL: idle latency one engine right after the other, and both shipped APIs in the
same round-robin of wrk runs.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import PIL

from bench import api_load, delivery, memory, moderation, multipart, pipeline, presign, processing, report
from bench import reprocess as reprocess_bench
from bench.alternatives import prepare_vips
from bench.inputs import LARGEST, SIZES, benchmark_inputs, photo_like_jpeg
from bench.old_design.measure import side_by_side as old_design_side_by_side
from bench.stacks import (PROJECT_ROOT, PostgresServer, remove_stack, start_api_variant, start_stack,
                          use_worker_variant)
from imgpipe import uploads

WORKERS = 2
BURST_DISTINCT_IMAGES = 4


@dataclass(frozen=True)
class Plan:
    rounds: dict[str, int]
    e2e_uploads: int
    burst_uploads: int
    worker_variants: dict[str, tuple[str, int]]
    api_seconds: int
    api_rounds: int
    gunicorn_variants: dict[str, tuple[list[str], str, dict[str, str]]]
    moderation_rounds: dict[str, int]
    reprocess_stored: int  # uploads stored and then reprocessed (10,000 would be the target's; scaled to the run's time)
    reprocess_fresh: int  # fresh uploads timed, alone and again during the reprocess
    multipart_rounds: int  # 100 MB uploads each way, one PUT and in parts


SHIPPED_WORKERS = "imgpipe worker × 2 (as shipped)"
# name: (kind in bench.worker_variants, or "shipped" for `imgpipe worker`; how many)
MODERATED_WORKERS = "imgpipe worker × 2, IMGPIPE_MODERATION=flag"
WORKER_VARIANTS = {
    "imgpipe worker × 3": ("shipped", 3),
    "RQ's forking Worker × 2": ("forking", 2),
    MODERATED_WORKERS: ("moderation", 2),
}
MODERATION_SIZES = ("1mp", "12mp")


SHIPPED_API = "sync, 2 workers (as shipped)"
SHIPPED_API_POSTGRESQL = "sync, 2 workers (as shipped), PostgreSQL"
MINIMAL_API = "minimal Flask app, sync, 2 workers (floor)"
CORS_API = "sync, 2 workers, CORS on for the requests' Origin"
# name: (gunicorn arguments, WSGI app, environment added to the stack's)
GUNICORN_VARIANTS = {
    CORS_API: (["--workers", "2"], "api.wsgi:app", {"IMGPIPE_CORS_ORIGINS": api_load.ORIGIN}),
    "sync, 3 workers": (["--workers", "3"], "api.wsgi:app", {}),
    "gthread, 2 workers × 4 threads": (["--workers", "2", "--worker-class", "gthread", "--threads", "4"],
                                       "api.wsgi:app", {}),
    MINIMAL_API: (["--workers", "2"], "bench.minimal_api:app", {}),
}
FULL = Plan(rounds={"1mp": 21, "12mp": 13, "24mp": 7}, e2e_uploads=40, burst_uploads=200,
            worker_variants=WORKER_VARIANTS, api_seconds=10, api_rounds=3, gunicorn_variants=GUNICORN_VARIANTS,
            moderation_rounds={"1mp": 21, "12mp": 13}, reprocess_stored=1000, reprocess_fresh=40,
            multipart_rounds=multipart.FULL_ROUNDS)
QUICK = Plan(rounds={"1mp": 5, "12mp": 3, "24mp": 2}, e2e_uploads=8, burst_uploads=30,
             worker_variants={name: WORKER_VARIANTS[name] for name in ("RQ's forking Worker × 2", MODERATED_WORKERS)},
             api_seconds=3, api_rounds=1, gunicorn_variants={name: GUNICORN_VARIANTS[name] for name in (CORS_API, MINIMAL_API)},
             moderation_rounds={"1mp": 5, "12mp": 3}, reprocess_stored=150, reprocess_fresh=8,
             multipart_rounds=multipart.QUICK_ROUNDS)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def measure_processing(plan: Plan, inputs: dict[str, bytes]) -> dict:
    say(f"processing: ours, naive, vips, floor round-robin, rounds {plan.rounds}")
    summary = processing.summarize(processing.time_round_robin(inputs, plan.rounds))
    for size, row in summary.items():
        width, height = SIZES[size]
        row.update(width=width, height=height, jpeg_mb=round(len(inputs[size]) / 1e6, 2))
        say(f"  {size}: ours {row['ours_ms']} ms, naive {row['naive_ms']}, vips {row['vips_ms']},"
            f" floor {row['floor_ms']}")
    rounds = 20 * plan.rounds["12mp"]
    placeholder_ms = processing.placeholder_ms(inputs["12mp"], rounds)
    summary["12mp"].update(placeholder_ms=round(placeholder_ms, 2),
                           placeholder_share=round(placeholder_ms / summary["12mp"]["ours_ms"], 4))
    say(f"  placeholder: {placeholder_ms:.2f} ms ({summary['12mp']['placeholder_share']:.1%} of a 12 MP derivation)")
    return summary


def measure_memory(data: bytes) -> tuple[dict, dict]:
    """The 12 MP input through every implementation, then the largest picture a worker
    accepts through ours alone (naive Pillow would need about a gigabyte for it)."""
    say("memory: one 12 MP derivation per implementation, each in a fresh process")
    work_dir = PROJECT_ROOT / "bench" / "tmp"
    work_dir.mkdir(parents=True, exist_ok=True)
    width, height = SIZES["12mp"]
    memory_12mp = memory.peak_rss(data, width, height, work_dir)
    width, height = LARGEST
    say(f"memory: ours on a {width}×{height} JPEG ({width * height / 1e6:.0f} MP)")
    largest = memory.peak_rss(photo_like_jpeg(width, height, seed=1), width, height, work_dir, ("ours",))
    return memory_12mp, {"width": width, "height": height, **largest["ours"]}


def measure_moderation(plan: Plan, inputs: dict[str, bytes]) -> dict:
    """Moderation off and on side by side: time per picture, then memory in fresh processes."""
    sized = {size: inputs[size] for size in MODERATION_SIZES}
    say(f"moderation: make_derivatives with and without the model's verdict, rounds {plan.moderation_rounds}")
    timing = moderation.time_round_robin(sized, plan.moderation_rounds)
    for size, row in timing.items():
        say(f"  {size}: off {row['off_ms']} ms, on {row['on_ms']} ms (+{row['added_ms']}), verdict alone"
            f" {row['verdict_ms']} ms; by CPU +{row['added_cpu_ms']} ms, verdict alone {row['verdict_cpu_ms']} ms")
    say("moderation: a worker's memory with it off and on, each in a fresh process")
    work_dir = PROJECT_ROOT / "bench" / "tmp"
    work_dir.mkdir(parents=True, exist_ok=True)
    used = moderation.memory(sized, work_dir)
    for size, row in used.items():
        say(f"  {size}: idle {row['off']['idle_mb']} → {row['on']['idle_mb']} MiB, peak {row['off']['peak_mb']}"
            f" → {row['on']['peak_mb']} MiB")
    return {"time": timing, "memory": used}


def burst_images(count: int) -> list[bytes]:
    width, height = SIZES["1mp"]
    distinct = [photo_like_jpeg(width, height, seed=seed) for seed in range(2, 2 + BURST_DISTINCT_IMAGES)]
    return [distinct[index % len(distinct)] for index in range(count)]


def measure_pipeline(stack, plan: Plan, single: bytes, images: list[bytes]) -> dict:
    """The shipped workers first, then each worker variant on the same stack.

    Each burst is bracketed by pure-processing runs of the same images, one just before and
    one just after, so the overhead compares measurements taken under the same background
    load. The CPU overhead (1 − CPU of make_derivatives alone / CPU of the whole pipeline per
    image) is the same comparison by CPU time, which the machine's other users disturb less.
    """
    variants = {}
    for name, (kind, count) in {SHIPPED_WORKERS: (None, WORKERS), **plan.worker_variants}.items():
        if kind is not None:
            use_worker_variant(stack, kind, count)
        pipeline.wait_for_workers(stack, count)
        pipeline.burst(stack, images[:2 * count])
        say(f"pipeline, {name}: {plan.e2e_uploads} single uploads on the idle stack")
        idle = pipeline.idle_latency(stack, single, plan.e2e_uploads)
        say(f"  p50 {idle['p50_ms']} ms, p95 {idle['p95_ms']} ms, stages {idle['stage_medians_ms']}")
        say(f"pipeline, {name}: pure processing, a burst of {len(images)}, pure processing again")
        before_rate, before_cpu_ms = processing.pure_throughput(images, WORKERS)
        burst = pipeline.burst(stack, images)
        after_rate, after_cpu_ms = processing.pure_throughput(images, WORKERS)
        pure_rate = 2 / (1 / before_rate + 1 / after_rate)
        pure_cpu_ms = (before_cpu_ms + after_cpu_ms) / 2
        overhead = round(1 - burst["images_per_s"] / pure_rate, 3)
        cpu_overhead = round(1 - pure_cpu_ms / sum(burst["cpu_ms_per_image"].values()), 3)
        say(f"  {burst['images_per_s']} images/s against {pure_rate:.1f} pure ({before_rate:.1f} before, "
            f"{after_rate:.1f} after): overhead {overhead}; CPU overhead {cpu_overhead},"
            f" CPU ms per image {burst['cpu_ms_per_image']}, alone {pure_cpu_ms:.1f}")
        variants[name] = {"idle": idle, "burst": burst, "pure_images_per_s": round(pure_rate, 2),
                          "pure_images_per_s_before_and_after": [round(before_rate, 2), round(after_rate, 2)],
                          "pure_cpu_ms_per_image": round(pure_cpu_ms, 1), "pipeline_overhead": overhead,
                          "pipeline_cpu_overhead": cpu_overhead}
    return variants


def measure_reprocess(stack, plan: Plan, single: bytes) -> dict:
    """Fresh uploads' latency alone and while `imgpipe reprocess` re-makes many stored uploads,
    on the shipped workers."""
    use_worker_variant(stack, "shipped", WORKERS)
    say(f"reprocess: {plan.reprocess_stored} uploads stored, then {plan.reprocess_fresh} fresh uploads timed"
        " alone and as many during their reprocess")
    stored = burst_images(plan.reprocess_stored)
    result = reprocess_bench.fresh_upload_latency_during_reprocess(stack, single, stored, plan.reprocess_fresh,
                                                                   WORKERS)
    say(f"  p50 {result['idle']['p50_ms']} ms alone, {result['during_reprocess']['p50_ms']} ms during"
        f" (×{result['p50_ratio']}), in {result['blocks']} alternating blocks of each;"
        f" {result['reprocessed_while_measured']} reprocessed meanwhile,"
        f" still running at the end: {result['reprocess_running_throughout']}")
    return result


def measure_databases(stacks: dict, plan: Plan, single: bytes, images: list[bytes]) -> dict:
    """Idle end-to-end latency with the shipped workers on each engine's stack, one right
    after the other."""
    latency = {}
    for engine, stack in stacks.items():
        use_worker_variant(stack, "shipped", WORKERS)
        pipeline.wait_for_workers(stack, WORKERS)
        pipeline.burst(stack, images[:2 * WORKERS])
        say(f"database {engine}: {plan.e2e_uploads} single uploads on the idle stack")
        latency[engine] = pipeline.idle_latency(stack, single, plan.e2e_uploads)
        say(f"  p50 {latency[engine]['p50_ms']} ms, p95 {latency[engine]['p95_ms']} ms,"
            f" stages {latency[engine]['stage_medians_ms']}")
    return latency


def measure_api(stack, plan: Plan, postgresql_stack=None) -> dict:
    """The shipped gunicorn, each variant and, when given, the shipped gunicorn of the
    PostgreSQL stack, round-robin when there are several rounds; the run with the median
    requests/s is kept for each."""
    for each in (stack, postgresql_stack):
        for name in [name for name in (each.processes if each else ()) if name.startswith(("worker", "relay"))]:
            each.stop_process(name)
    servers = {SHIPPED_API: (stack.api_url, stack, "api")}
    if postgresql_stack is not None:
        servers[SHIPPED_API_POSTGRESQL] = (postgresql_stack.api_url, postgresql_stack, "api")
    for index, (name, (args, app, env)) in enumerate(plan.gunicorn_variants.items()):
        servers[name] = (start_api_variant(stack, f"api-variant-{index}", args, app=app, env=env),
                         stack, f"api-variant-{index}")
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    for round_index in range(plan.api_rounds):
        for name, (url, owner, process_name) in servers.items():
            say(f"api: {name}, {plan.api_seconds} s (round {round_index + 1}/{plan.api_rounds})")
            cpu_before = pipeline.session_cpu_seconds(owner.processes[process_name].pid)
            run = api_load.run_wrk(url, plan.api_seconds, owner.settings.api_token)
            cpu_seconds = pipeline.session_cpu_seconds(owner.processes[process_name].pid) - cpu_before
            run["cpu_ms_per_request"] = round(cpu_seconds * 1000 / max(1, run["requests"]), 3)
            say(f"  {run['rps']} req/s, p99 {run['p99_ms']} ms, {run['failures']} failed,"
                f" {run['cpu_ms_per_request']} CPU ms per request in gunicorn")
            runs[name].append(run)
    return {name: {**sorted(results, key=lambda run: run["rps"])[(len(results) - 1) // 2],
                   "rps_of_rounds": [run["rps"] for run in results],
                   "cpu_ms_per_request_of_rounds": [run["cpu_ms_per_request"] for run in results]}
            for name, results in runs.items()}


def cors_cost(api_variants: dict) -> float:
    """The share of POST /uploads requests/s that switching CORS on costs, the two measured side by side."""
    return round(1 - api_variants[CORS_API]["rps"] / api_variants[SHIPPED_API]["rps"], 3)


def cors_cpu_cost(api_variants: dict) -> float:
    """The same by gunicorn's CPU time per request (median of the rounds), which the machine's
    other users disturb less than requests/s: CPU with CORS / CPU without − 1."""
    def median_cpu(name: str) -> float:
        values = sorted(api_variants[name]["cpu_ms_per_request_of_rounds"])
        return values[(len(values) - 1) // 2]

    return round(median_cpu(CORS_API) / median_cpu(SHIPPED_API) - 1, 3)


def run_api_only(plan: Plan) -> None:
    """POST /uploads alone, every gunicorn variant: quicker than a whole run when only the API
    changed. Printed; the results files are left as they are."""
    say(f"background CPU load before: {report.cpu_busy_fraction(1.0):.0%}")
    say("starting a stack on free ports")
    stack = start_stack(WORKERS)
    try:
        api_variants = measure_api(stack, plan)
    finally:
        remove_stack(stack)
    for line in report.api_table({"api_variants": api_variants}):
        print(line)
    say(f"CORS costs {cors_cost(api_variants):.1%} of POST /uploads requests/s and"
        f" {cors_cpu_cost(api_variants):.1%} more gunicorn CPU per request;"
        f" background CPU load after: {report.cpu_busy_fraction(1.0):.0%}")


def run(plan: Plan, mode: str) -> dict:
    began = time.monotonic()
    background_before = report.cpu_busy_fraction(1.0)
    versions = {"pillow": PIL.__version__, "vips": prepare_vips()}
    say("making the inputs")
    inputs = benchmark_inputs()
    processing_summary = measure_processing(plan, inputs)
    memory_12mp, memory_100mp = measure_memory(inputs["12mp"])
    say("presigning: µs per upload authorisation, PUT URLs and POST policies side by side")
    presign_us = presign.measure()
    for name, micros in presign_us.items():
        say(f"  {micros} µs  {name}")
    moderation_cost = measure_moderation(plan, inputs)
    uploads_in_parts = multipart.measure(plan.multipart_rounds)
    delivered = {**delivery.measure(plan.api_seconds, plan.api_rounds), "mode": mode}
    images = burst_images(plan.burst_uploads)
    say("starting a stack on free ports")
    stack = start_stack(WORKERS)
    postgres, postgresql_stack = PostgresServer(), None
    try:
        variants = measure_pipeline(stack, plan, inputs["1mp"], images)
        # on this stack alone, before the PostgreSQL one starts, as the pipeline figures above
        old_design = old_design_side_by_side(stack, inputs["1mp"], inputs["12mp"], images, plan.e2e_uploads,
                                             WORKERS, mode, say)
        say("starting PostgreSQL and a second stack on it")
        postgres.start()
        postgresql_stack = start_stack(WORKERS, database_url=postgres.create_database("bench"))
        database = uploads.connect(postgres.url())
        versions["postgresql"] = database.execute("SHOW server_version").fetchone()[0].split()[0]
        database.close()
        latency = measure_databases({"sqlite": stack, "postgresql": postgresql_stack}, plan, inputs["1mp"], images)
        reprocessing = measure_reprocess(stack, plan, inputs["1mp"])
        api_variants = measure_api(stack, plan, postgresql_stack)
    finally:
        remove_stack(stack)
        if postgresql_stack is not None:
            remove_stack(postgresql_stack)
        postgres.stop()
    background_after = report.cpu_busy_fraction(1.0)
    shipped = variants[SHIPPED_WORKERS]
    return {
        "ratio_vs_naive_12mp": processing_summary["12mp"]["ratio_vs_naive"],
        "ratio_vs_vips_12mp": processing_summary["12mp"]["ratio_vs_vips"],
        "ratio_vs_vips_1mp": processing_summary["1mp"]["ratio_vs_vips"],
        "placeholder_share_12mp": processing_summary["12mp"]["placeholder_share"],
        "reprocess_e2e_p50_ratio": reprocessing["p50_ratio"],
        "e2e_p50_ms": shipped["idle"]["p50_ms"],
        "e2e_p95_ms": shipped["idle"]["p95_ms"],
        "burst_images_per_s": shipped["burst"]["images_per_s"],
        "pipeline_overhead": shipped["pipeline_overhead"],
        "pipeline_cpu_overhead": shipped["pipeline_cpu_overhead"],
        "api_rps": api_variants[SHIPPED_API]["rps"],
        "api_p99_ms": api_variants[SHIPPED_API]["p99_ms"],
        "worker_peak_rss_mb_12mp": memory_12mp["ours"]["peak_delta_mb"],
        "worker_peak_rss_mb_100mp": memory_100mp["peak_delta_mb"],
        "moderation_added_ms_1mp": moderation_cost["time"]["1mp"]["added_ms"],
        "moderation_added_ms_12mp": moderation_cost["time"]["12mp"]["added_ms"],
        "moderation_added_idle_mb": moderation_cost["memory"]["12mp"]["added_idle_mb"],
        "moderation_added_peak_mb_12mp": moderation_cost["memory"]["12mp"]["added_peak_mb"],
        "api_rps_of_minimal_flask": api_variants[MINIMAL_API]["rps"],
        "cors_rps_cost": cors_cost(api_variants),
        "cors_cpu_cost": cors_cpu_cost(api_variants),
        "e2e_p50_ms_postgresql": latency["postgresql"]["p50_ms"],
        "api_rps_postgresql": api_variants[SHIPPED_API_POSTGRESQL]["rps"],
        "databases": {engine: {"idle": latency[engine],
                               "api": api_variants[SHIPPED_API if engine == "sqlite" else SHIPPED_API_POSTGRESQL]}
                      for engine in latency},
        "processing": processing_summary,
        "pure_images_per_s": shipped["pure_images_per_s"],
        "pipeline_variants": variants,
        "reprocess": reprocessing,
        "old_design": old_design,
        "api_variants": api_variants,
        "memory_12mp": memory_12mp,
        "memory_100mp": memory_100mp,
        "presign_us_per_upload": presign_us,
        "moderation": moderation_cost,
        "multipart": {**uploads_in_parts, "mode": mode},
        **delivery.headline(delivered),
        "delivery": delivered,
        "e2e_uploads": plan.e2e_uploads,
        "burst_uploads": plan.burst_uploads,
        "api_seconds": plan.api_seconds,
        "mode": mode,
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.monotonic() - began),
        "machine": report.machine(),
        "background_cpu_busy": {"before": background_before, "after": background_after},
        "versions": versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller version of the same run, under a minute")
    parser.add_argument("--api-only", action="store_true",
                        help="only POST /uploads under wrk, printed (the results files are left as they are)")
    parser.add_argument("--results", type=Path, default=PROJECT_ROOT / "bench" / "results.json")
    parser.add_argument("--markdown", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    if args.api_only:
        run_api_only(QUICK if args.quick else FULL)
        return
    mode = "quick" if args.quick else "full"
    results = run(QUICK if args.quick else FULL, mode)
    report.write_results(results, args.results)
    report.write_markdown(results, args.markdown)
    say(f"wrote {args.results} and {args.markdown}")
    for key in report.TARGETS:
        say(f"  {key} = {results[key]} {report.verdict(key, results)}")


if __name__ == "__main__":
    main()
