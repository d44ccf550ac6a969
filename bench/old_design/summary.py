"""The old design's part of BENCHMARKS.md's generated section, from results["old_design"]: nothing
when a results file has none."""

from __future__ import annotations

LABELS = {"imgpipe": "imgpipe (presigned PUT, MinIO event, RQ, `imgpipe worker` × 2)",
          "old": "the replaced service (form post through the app, Celery prefork × 2, a decode per derivative)"}


def lines(results: dict) -> list[str]:
    run = results.get("old_design")
    if run is None:
        return []
    kinds = list(dict.fromkeys(kind for design in LABELS for kind in run[design]["burst"]["cpu_ms_per_image"]))
    busy = run["background_cpu_busy"]
    table = [
        "",
        f"The service imgpipe replaced, side by side ({run['mode']} run, {run['measured_at']}, background CPU load"
        f" {busy['before']:.0%} before, {busy['after']:.0%} after): {run['uploads']} single 1 MP uploads on each"
        f" (and {run['uploads_12mp']} at 12 MP), taking turns, from the client's first request to the row completed;"
        f" then bursts of {run['burst_uploads']} on {run['workers']} workers each, imgpipe, old, old, imgpipe"
        " (`python -m bench.old_design`, bench/old_design):",
        "",
        "| design | upload→completed p50 ms | p95 ms | upload requests p50 ms | 12 MP upload→completed p50 ms |"
        " burst images/s | burst images/s, timed whole | " + " | ".join(f"{kind} CPU ms" for kind in kinds)
        + " | CPU ms per image | derivation alone, CPU ms |",
        "| --- |" + " ---: |" * (6 + len(kinds) + 2),
    ]
    for design, label in LABELS.items():
        idle, burst = run[design]["idle"], run[design]["burst"]
        cpu = burst["cpu_ms_per_image"]
        table.append(f"| {label} | {idle['p50_ms']} | {idle['p95_ms']} | {idle['upload_requests_p50_ms']} |"
                     f" {run[design]['idle_12mp']['p50_ms']} |"
                     f" {burst['images_per_s']} | {burst['whole_call_images_per_s']} | "
                     + " | ".join(str(cpu.get(kind, "")) for kind in kinds)
                     + f" | {burst['cpu_ms_per_image_total']} | {run[design]['derivation_cpu_ms']} |")
    table += ["", f"Worker CPU per image beyond the derivation: {run['old']['worker_cpu_ms_beyond_derivation']} ms in"
                  " the old worker, of which its task's row and store requests timed alone"
                  f" {run['old_task_io_cpu_ms']} ms; {run['imgpipe']['worker_cpu_ms_beyond_derivation']} ms in"
                  " imgpipe's.",
              "", f"Old over imgpipe: p50 × {run['p50_ratio']} (× {run['p50_ratio_12mp']} at 12 MP), CPU per image"
                  f" × {run['cpu_ratio']}; imgpipe over old: burst images/s × {run['burst_ratio']}"
                  f" (× {run['whole_call_burst_ratio']} timed whole)."]
    return table
