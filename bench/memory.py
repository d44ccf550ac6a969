"""Peak memory of one derivation, measured in a fresh process so nothing else has touched
its high-water mark.

The child imports what a worker imports (processor.tasks pulls in Pillow, minio, redis,
sqlite-utils) and reads the input, records its peak RSS, derives once and records the peak
again. The difference is what the image costs on top of an idle worker holding the upload's
bytes; it is compared with the decoded picture, width x height x 3 bytes.

The peak is VmHWM from /proc/self/status, not getrusage's ru_maxrss: Linux carries the
parent's high-water mark into ru_maxrss across fork and exec, so a child started by a big
parent would report the parent's peak.

Run as `python -m bench.memory IMPLEMENTATION PATH` it is that child, printing one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.stacks import PROJECT_ROOT
from imgpipe.processes import memory_kib


def max_rss_mb() -> float:
    return memory_kib()["VmHWM"] / 1024


def measure_in_child(implementation: str, data: bytes, work_dir: Path) -> dict[str, float]:
    path = work_dir / f"memory-input-{implementation}.jpg"
    path.write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "bench.memory", implementation, str(path)],
                            capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss(data: bytes, width: int, height: int, work_dir: Path,
             implementations=("ours", "naive", "vips")) -> dict[str, dict[str, float]]:
    decoded_mb = width * height * 3 / 2**20
    report = {}
    for implementation in implementations:
        measured = measure_in_child(implementation, data, work_dir)
        measured["decoded_mb"] = round(decoded_mb, 1)
        measured["peak_over_decoded"] = round(measured["peak_delta_mb"] / decoded_mb, 2)
        report[implementation] = measured
    return report


def _child(implementation: str, path: str) -> None:
    import processor.tasks  # noqa: F401  what a worker has loaded before its first job
    from bench.alternatives import prepare_vips
    from bench.processing import IMPLEMENTATIONS

    if implementation == "vips":
        prepare_vips()
    derive = IMPLEMENTATIONS[implementation]
    data = Path(path).read_bytes()
    baseline = max_rss_mb()
    derive(data)
    peak = max_rss_mb()
    print(json.dumps({"baseline_mb": round(baseline, 1), "peak_mb": round(peak, 1),
                      "peak_delta_mb": round(peak - baseline, 1)}))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
