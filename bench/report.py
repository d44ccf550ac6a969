"""bench/results.json and the generated table in BENCHMARKS.md.

Only the part of BENCHMARKS.md between the two markers below is rewritten; everything around
it is prose kept by hand (what the figures mean, where targets are missed and why).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

from bench.old_design.summary import lines as old_design_lines

BEGIN = "<!-- bench:begin (written by `make bench`; edit outside these markers) -->"
END = "<!-- bench:end -->"

# key: (what it measures, target as text, check of the value against the target)
TARGETS = {
    "ratio_vs_naive_12mp": ("processing 12 MP, ours / naive Pillow", "≤ 0.35", lambda v: v <= 0.35),
    "ratio_vs_vips_12mp": ("processing 12 MP, ours / pyvips", "≤ 0.8", lambda v: v <= 0.8),
    "ratio_vs_vips_1mp": ("processing 1 MP, ours / pyvips", "≤ 0.6", lambda v: v <= 0.6),
    "placeholder_share_12mp": ("placeholder (BlurHash + dominant colour) / 12 MP derivation", "≤ 0.03",
                               lambda v: v <= 0.03),
    "e2e_p50_ms": ("end-to-end 1 MP, idle stack, p50 (ms)", "≤ 150", lambda v: v <= 150),
    "e2e_p95_ms": ("end-to-end 1 MP, idle stack, p95 (ms)", "≤ 300", lambda v: v <= 300),
    "burst_images_per_s": ("burst of 1 MP uploads, two workers (images/s)", "—", None),
    "pipeline_overhead": ("pipeline overhead at saturation, 1 − burst/pure", "≤ 0.10", lambda v: v <= 0.10),
    "pipeline_cpu_overhead": ("the same by CPU time, 1 − CPU alone/CPU in the pipeline", "—", None),
    "reprocess_e2e_p50_ratio": ("end-to-end 1 MP p50 during `imgpipe reprocess` / alone", "≤ 1.2",
                                lambda v: v <= 1.2),
    "api_rps": ("POST /uploads, 32 connections (requests/s)", "≥ 2500", lambda v: v >= 2500),
    "api_p99_ms": ("POST /uploads, 32 connections, p99 (ms)", "≤ 30", lambda v: v <= 30),
    "cors_rps_cost": ("POST /uploads requests/s lost with CORS on, 1 − with/without", "—", None),
    "cors_cpu_cost": ("gunicorn CPU per POST /uploads added by CORS, with/without − 1", "—", None),
    "e2e_p50_ms_postgresql": ("end-to-end 1 MP, idle stack, p50, on PostgreSQL (ms)", "—", None),
    "api_rps_postgresql": ("POST /uploads, 32 connections, on PostgreSQL (requests/s)", "—", None),
    "worker_peak_rss_mb_12mp": ("worker peak RSS over idle, 12 MP (MiB)", "≤ 3 × decoded", None),
    "worker_peak_rss_mb_100mp": ("worker peak RSS over idle, 100 MP (MiB)", "—", None),
    "moderation_added_ms_1mp": ("moderation on: worker time added per 1 MP picture (ms)", "—", None),
    "moderation_added_ms_12mp": ("moderation on: worker time added per 12 MP picture (ms)", "—", None),
    "moderation_added_idle_mb": ("moderation on: worker RSS added before any picture (MiB)", "—", None),
    "moderation_added_peak_mb_12mp": ("moderation on: worker peak RSS added, 12 MP (MiB)", "—", None),
    "delivery_redirect_rps": ("`GET /uploads/<id>/<preset>`, private mode, signed URL: 302s/s, 32 connections", "—", None),
    "delivery_redirect_p99_ms": ("the same, p99 (ms)", "—", None),
    "delivery_cache_hit_rps": ("the same address, hits of the caching proxy (nginx) per second", "—", None),
    "delivery_cache_hit_p99_ms": ("the same hits, p99 (ms)", "—", None),
    "negotiation_us": ("format negotiation from a browser's Accept, three formats (µs per request)", "—", None),
}


def machine() -> dict:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}",
            "stacks_filesystem": filesystem_of(tempfile.gettempdir())}


def filesystem_of(path: str) -> str:
    """The type of the filesystem holding `path`, and for ext4 whether it keeps a journal: the
    benchmark's stacks keep MinIO's drive there, and without a journal ext4 makes MinIO's files
    cost it much more (docs/design/cost-per-image.md, inside MinIO)."""
    device = os.stat(path).st_dev
    wanted = f"{os.major(device)}:{os.minor(device)}"
    fstype, source = "unknown", ""
    with open("/proc/self/mountinfo") as mounts:  # proc(5): ... major:minor ... - type source options
        for line in mounts:
            fields = line.split()
            if fields[2] == wanted:
                fstype, source = fields[fields.index("-") + 1:][:2]
    journal = Path("/sys/fs/ext4", Path(source).name, "journal_task")
    if fstype == "ext4" and journal.exists():
        return "ext4 without a journal" if journal.read_text().strip() == "<none>" else "ext4 with a journal"
    return fstype


def cpu_busy_fraction(seconds: float = 1.0) -> float:
    """How busy the whole machine's CPUs are over `seconds` while the benchmark itself sleeps:
    the background load its figures were measured under (other users of a shared machine)."""
    def busy_and_total() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            values = [int(value) for value in stat.readline().split()[1:]]
        idle = values[3] + values[4]
        return sum(values) - idle, sum(values)

    busy_before, total_before = busy_and_total()
    time.sleep(seconds)
    busy_after, total_after = busy_and_total()
    return round((busy_after - busy_before) / max(1, total_after - total_before), 3)


def write_results(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")


def verdict(key: str, results: dict) -> str:
    value = results[key]
    if key == "worker_peak_rss_mb_12mp":
        limit = 3 * results["memory_12mp"]["ours"]["decoded_mb"]
        return "met" if value <= limit else "missed"
    check = TARGETS[key][2]
    if check is None:
        return ""
    return "met" if check(value) else "missed"


def headline_table(results: dict) -> list[str]:
    lines = ["| key | measures | result | target | |", "| --- | --- | ---: | --- | --- |"]
    for key, (what, target, _) in TARGETS.items():
        if key == "worker_peak_rss_mb_12mp":
            target = f"≤ {3 * results['memory_12mp']['ours']['decoded_mb']:.0f} (3 × {results['memory_12mp']['ours']['decoded_mb']})"
        lines.append(f"| `{key}` | {what} | {results[key]} | {target} | {verdict(key, results)} |")
    return lines


def processing_table(results: dict) -> list[str]:
    lines = ["| input | ours ms | naive ms | pyvips ms | floor ms | ours/naive | ours/vips | ours/floor | rounds |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for size, row in results["processing"].items():
        label = f"{size} ({row['width']}×{row['height']}, {row['jpeg_mb']} MB)"
        lines.append(f"| {label} | {row['ours_ms']} | {row['naive_ms']} | {row['vips_ms']} | {row['floor_ms']} |"
                     f" {row['ratio_vs_naive']} | {row['ratio_vs_vips']} | {row['ratio_vs_floor']} | {row['rounds']} |")
    return lines


def pipeline_table(results: dict) -> list[str]:
    lines = ["| workers | e2e p50 ms | e2e p95 ms | polled p50 ms | PUT→enqueued | enqueued→started |"
             " started→claimed | claimed→completed | burst images/s | pure images/s | overhead | CPU overhead |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, variant in results["pipeline_variants"].items():
        idle, stages = variant["idle"], variant["idle"]["stage_medians_ms"]
        lines.append(
            f"| {name} | {idle['p50_ms']} | {idle['p95_ms']} | {idle['observed_by_polling_p50_ms']} |"
            f" {stages.get('put_to_enqueued', '')} | {stages.get('enqueued_to_started', '')} |"
            f" {stages.get('started_to_claimed', '')} | {stages['claim_to_completed']} |"
            f" {variant['burst']['images_per_s']} | {variant['pure_images_per_s']} | {variant['pipeline_overhead']} |"
            f" {variant['pipeline_cpu_overhead']} |")
    return lines


def cpu_table(results: dict) -> list[str]:
    kinds = list(next(iter(results["pipeline_variants"].values()))["burst"]["cpu_ms_per_image"])
    lines = ["| workers | " + " | ".join(kinds) + " | total | make_derivatives alone |",
             "| --- |" + " ---: |" * (len(kinds) + 2)]
    for name, variant in results["pipeline_variants"].items():
        cpu = variant["burst"]["cpu_ms_per_image"]
        lines.append(f"| {name} | " + " | ".join(str(cpu.get(kind, "")) for kind in kinds)
                     + f" | {round(sum(cpu.values()), 1)} | {variant['pure_cpu_ms_per_image']} |")
    return lines


def reprocess_table(results: dict) -> list[str]:
    run = results["reprocess"]
    lines = ["| fresh 1 MP uploads | p50 ms | p95 ms | claimed→completed ms |", "| --- | ---: | ---: | ---: |"]
    for label, key in (("alone", "idle"), ("during the reprocess", "during_reprocess")):
        latency = run[key]
        lines.append(f"| {label} | {latency['p50_ms']} | {latency['p95_ms']} |"
                     f" {latency['stage_medians_ms']['claim_to_completed']} |")
    return lines


def api_table(results: dict) -> list[str]:
    lines = ["| gunicorn | requests/s | p50 ms | p99 ms | max ms | failed requests | requests/s of every round |"
             " gunicorn CPU ms per request, every round |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for name, run in results["api_variants"].items():
        rounds = ", ".join(str(value) for value in run["rps_of_rounds"])
        cpu = ", ".join(str(value) for value in run["cpu_ms_per_request_of_rounds"])
        lines.append(f"| {name} | {run['rps']} | {run['p50_ms']} | {run['p99_ms']} | {run['max_ms']} |"
                     f" {run['failures']} | {rounds} | {cpu} |")
    return lines


def database_table(results: dict) -> list[str]:
    lines = ["| database | e2e p50 ms | e2e p95 ms | POST /uploads requests/s | p99 ms | requests/s of every round |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    labels = {"sqlite": "SQLite (a file, WAL, synchronous=NORMAL)",
              "postgresql": f"PostgreSQL {results['versions']['postgresql']} (loopback, synchronous_commit=off)"}
    for engine, row in results["databases"].items():
        idle, api = row["idle"], row["api"]
        rounds = ", ".join(str(value) for value in api["rps_of_rounds"])
        lines.append(f"| {labels[engine]} | {idle['p50_ms']} | {idle['p95_ms']} | {api['rps']} | {api['p99_ms']} |"
                     f" {rounds} |")
    return lines


def memory_table(results: dict) -> list[str]:
    lines = ["| implementation | idle MiB | peak MiB | peak − idle MiB | ÷ decoded (w×h×3) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    rows = [(f"{name}, 12 MP", row) for name, row in results["memory_12mp"].items()]
    largest = results["memory_100mp"]
    rows.append((f"ours, {largest['width']}×{largest['height']}", largest))
    for label, row in rows:
        lines.append(f"| {label} | {row['baseline_mb']} | {row['peak_mb']} | {row['peak_delta_mb']} |"
                     f" {row['peak_over_decoded']} |")
    return lines


def moderation_table(results: dict) -> list[str]:
    lines = ["| input | off ms | on ms | added ms | verdict alone ms | added CPU ms | verdict alone CPU ms |"
             " idle MiB off / on | peak MiB off / on | rounds |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for size, row in results["moderation"]["time"].items():
        used = results["moderation"]["memory"][size]
        lines.append(f"| {size} | {row['off_ms']} | {row['on_ms']} | {row['added_ms']} | {row['verdict_ms']} |"
                     f" {row['added_cpu_ms']} | {row['verdict_cpu_ms']} |"
                     f" {used['off']['idle_mb']} / {used['on']['idle_mb']} | {used['off']['peak_mb']} /"
                     f" {used['on']['peak_mb']} | {row['rounds']} |")
    return lines


def delivery_table(results: dict) -> list[str]:
    lines = ["| `GET /uploads/<id>/thumbnail` | requests/s | p50 ms | p99 ms | failed | API CPU ms per request |"
             " share the proxy hit | requests/s of every round |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, run in results["delivery"]["runs"].items():
        rounds = ", ".join(str(value) for value in run["rps_of_rounds"])
        lines.append(f"| {name} | {run['rps']} | {run['p50_ms']} | {run['p99_ms']} | {run['failures']} |"
                     f" {run['api_cpu_ms_per_request']} | {run.get('hit_share', '—')} | {rounds} |")
    return lines


def generated_section(results: dict) -> str:
    info = results["machine"]
    parts = [
        BEGIN,
        f"Measured {results['measured_at']} ({results['mode']} run, {results['seconds']} s) on "
        f"**{info['cpu_model']}, {info['cores']} cores**, {info['system']}, Python {info['python']}, "
        f"Pillow {results['versions']['pillow']}, {results['versions']['vips']}. Background CPU load "
        f"(other users of the machine) {results['background_cpu_busy']['before']:.0%} before the run, "
        f"{results['background_cpu_busy']['after']:.0%} after."
        + (f" The stacks' files, MinIO's drive among them, on {info['stacks_filesystem']}."
           if "stacks_filesystem" in info else ""),
        "",
        *headline_table(results),
        "",
        "Processing, median ms per image (all three derivatives), implementations interleaved round-robin:",
        "",
        *processing_table(results),
        "",
        f"The placeholder (BlurHash and dominant colour, from the thumbnail a derivation has made by then), "
        f"timed apart: {results['processing']['12mp']['placeholder_ms']} ms, "
        f"{results['processing']['12mp']['placeholder_share']:.1%} of the 12 MP derivation (which includes it).",
        "",
        f"Pipeline: {results['e2e_uploads']} single 1 MP uploads on the idle stack (stage medians in ms), "
        f"then a burst of {results['burst_uploads']}, each burst between two runs of pure processing of the "
        f"same images in two processes:",
        "",
        *pipeline_table(results),
        "",
        "CPU ms per image during each burst, by process:",
        "",
        *cpu_table(results),
        "",
        f"Reprocessing: {results['reprocess']['stored_uploads']} stored 1 MP uploads to re-make by `imgpipe reprocess` "
        f"(one job out at a time, as shipped) after a presets change, on the same two workers as "
        f"{results['reprocess']['fresh_uploads']} fresh uploads timed alone and as many during it, in "
        f"{results['reprocess']['blocks']} alternating blocks of each (the command stopped with Ctrl-C after each "
        f"busy block and started again before the next). "
        f"It re-made {results['reprocess']['reprocessed_while_measured']} "
        f"({results['reprocess']['reprocess_uploads_per_s']}/s) while measured; still running at the end: "
        f"{'yes' if results['reprocess']['reprocess_running_throughout'] else 'no'}.",
        "",
        *reprocess_table(results),
        "",
        f"API, `wrk -t2 -c32 -d{results['api_seconds']}s --latency`, POST /uploads, each configuration's "
        f"median round by requests/s (rounds interleaved):",
        "",
        *api_table(results),
        "",
        "Database engines, stacks alike but for DATABASE_URL: idle latency one engine right after the other "
        "(shipped workers), POST /uploads from the round-robin above:",
        "",
        *database_table(results),
        "",
        "Memory, one derivation in a fresh process (the 12 MP input, and the largest picture a worker accepts by default):",
        "",
        *memory_table(results),
        "",
        "Moderation off and on (`IMGPIPE_MODERATION=flag`): ms per picture for make_derivatives alone and then "
        "with the model's verdict, interleaved in one process; a fresh process's RSS before the picture and its "
        "peak, with the model loaded when on:",
        "",
        *moderation_table(results),
        *old_design_lines(results),
        "",
        f"Delivery ({results['delivery']['mode']} run, background CPU load "
        f"{results['delivery']['background_cpu_busy']:.0%}), `wrk -t2 -c{results['delivery']['connections']} "
        f"-d{results['delivery']['seconds']}s`, the Accept header Chromium sends for an `<img>`, signed delivery "
        f"URLs on a private-mode stack, each row's median round of {results['delivery']['rounds']}; the proxy's "
        f"hits never reach the API. Negotiation alone: "
        f"{results['delivery']['negotiation_us']['three_formats']} µs to parse the header and choose among three "
        f"formats ({results['delivery']['negotiation_us']['one_format']} µs for one, "
        f"{results['delivery']['negotiation_us']['cached']} µs for a header seen before), "
        f"{results['delivery']['negotiation_share_of_redirect_cpu']:.2%} of the API's CPU per redirect:",
        "",
        *delivery_table(results),
        END,
    ]
    return "\n".join(parts)


def write_markdown(results: dict, path: Path) -> None:
    section = generated_section(results)
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    path.write_text(before + section + after)
