"""What moderation adds to a worker, side by side with it off, in the same run.

Time: per picture, make_derivatives alone (what a worker with IMGPIPE_MODERATION=off does
before it writes) and make_derivatives then the model's verdict on the thumbnail (what one with
flag or reject does), at 1 MP and 12 MP, interleaved round-robin in one process after one
untimed call of each; the verdict alone is timed too.

Memory: a fresh process per mode imports what a worker imports, loads the model when on (as a
worker does as it starts), reads the input, and does one picture's work. Reported: its RSS
before the picture (VmRSS: what the loaded model keeps resident) and its peak over its whole
life (VmHWM, the model's load included), off and on.

Run as `python -m bench.moderation off|on PATH` it is that child, printing one JSON line.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.stacks import PROJECT_ROOT
from imgpipe.processes import memory_kib
from imgpipe.settings import Settings

MAX_PIXELS = Settings().max_pixels  # the default a worker runs with

MODES = ("off", "on")


def moderator_settings(mode: str) -> Settings:
    return Settings(moderation="flag" if mode == "on" else "off")


def time_round_robin(inputs: dict[str, bytes], rounds: dict[str, int]) -> dict[str, dict[str, float]]:
    """Median ms per picture with moderation off and on, the verdict alone, and the time added:
    the median of each round's on − off, so a slow spell of the shared machine that spans a
    round lands on both sides of the difference. The same by this process's CPU time, which
    other users of the machine disturb less."""
    from processor.imaging import make_derivatives, prepare_process
    from processor.moderation import load_moderator

    prepare_process()  # as a worker does at start
    moderator = load_moderator(moderator_settings("on"))

    def off(data: bytes) -> None:
        make_derivatives(data, max_pixels=MAX_PIXELS)

    def on(data: bytes) -> None:
        moderator.judge(make_derivatives(data, max_pixels=MAX_PIXELS).by_format())

    summary = {}
    for size, data in inputs.items():
        made = make_derivatives(data, max_pixels=MAX_PIXELS).by_format()
        steps = {"off": lambda: off(data), "on": lambda: on(data), "verdict": lambda: moderator.judge(made)}
        wall: dict[str, list[float]] = {name: [] for name in steps}
        cpu: dict[str, list[float]] = {name: [] for name in steps}
        for step in steps.values():
            step()
        for round_index in range(rounds[size]):
            order = ["off", "on"] if round_index % 2 == 0 else ["on", "off"]
            for name in [*order, "verdict"]:
                began, began_cpu = time.perf_counter(), time.process_time()
                steps[name]()
                wall[name].append((time.perf_counter() - began) * 1000)
                cpu[name].append((time.process_time() - began_cpu) * 1000)
        summary[size] = {
            "off_ms": round(statistics.median(wall["off"]), 1),
            "on_ms": round(statistics.median(wall["on"]), 1),
            "added_ms": _median_difference(wall),
            "verdict_ms": round(statistics.median(wall["verdict"]), 1),
            "added_cpu_ms": _median_difference(cpu),
            "verdict_cpu_ms": round(statistics.median(cpu["verdict"]), 1),
            "rounds": rounds[size],
        }
    return summary


def _median_difference(timings: dict[str, list[float]]) -> float:
    return round(statistics.median(on - off for on, off in zip(timings["on"], timings["off"])), 1)


def memory(inputs: dict[str, bytes], work_dir: Path) -> dict[str, dict]:
    """Per input: each mode's child's RSS before the picture and peak, and what `on` adds."""
    report = {}
    for size, data in inputs.items():
        path = work_dir / f"moderation-input-{size}.jpg"
        path.write_bytes(data)
        measured = {mode: _measure_in_child(mode, path) for mode in MODES}
        report[size] = {
            **measured,
            "added_idle_mb": round(measured["on"]["idle_mb"] - measured["off"]["idle_mb"], 1),
            "added_peak_mb": round(measured["on"]["peak_mb"] - measured["off"]["peak_mb"], 1),
        }
    return report


def _measure_in_child(mode: str, path: Path) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-m", "bench.moderation", mode, str(path)],
                            capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def status_mb(field: str) -> float:
    return memory_kib()[field] / 1024


def _child(mode: str, path: str) -> None:
    import processor.tasks  # noqa: F401  what a worker has loaded before its first job
    from processor.imaging import make_derivatives, prepare_process
    from processor.moderation import load_moderator

    prepare_process()  # and set up, as a worker is at start

    moderator = load_moderator(moderator_settings(mode))
    data = Path(path).read_bytes()
    idle = status_mb("VmRSS")
    made = make_derivatives(data, max_pixels=MAX_PIXELS)
    if moderator is not None:
        moderator.judge(made.by_format())
    print(json.dumps({"idle_mb": round(idle, 1), "peak_mb": round(status_mb("VmHWM"), 1)}))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
