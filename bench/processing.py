"""Processing cost per image: imgpipe's code, the naive Pillow version, libvips and the
decode+encode floor, timed in one process, round-robin.

Interleaving means a burst of noise from the shared machine lands on every implementation
alike instead of on whichever happened to run during it; the starting implementation rotates
each round so none always runs right after another's allocations.
"""

from __future__ import annotations

import io
import multiprocessing
import statistics
import time
from collections.abc import Callable

from PIL import Image

from bench.alternatives import (RESIZED_BOX, THUMBNAIL_BOX, fit_inside, floor_decode_encode,
                                naive_derivatives, vips_derivatives)
from imgpipe.settings import Settings

Implementation = Callable[[bytes], tuple[bytes, bytes, bytes]]
MAX_PIXELS = Settings().max_pixels  # the default a worker runs with


def ours(data: bytes) -> tuple[bytes, bytes, bytes]:
    from processor.imaging import make_derivatives, prepare_process

    prepare_process()  # as a worker does at start; once per process

    made = make_derivatives(data, max_pixels=MAX_PIXELS)
    return made.resized, made.compressed, made.thumbnail


IMPLEMENTATIONS: dict[str, Implementation] = {
    "ours": ours,
    "naive": naive_derivatives,
    "vips": vips_derivatives,
    "floor": floor_decode_encode,
}


def check_outputs(name: str, data: bytes, outputs: tuple[bytes, bytes, bytes]) -> None:
    """Refuse to time an implementation whose derivatives have the wrong sizes."""
    source_size = Image.open(io.BytesIO(data)).size
    expected = (fit_inside(source_size, RESIZED_BOX), source_size, fit_inside(source_size, THUMBNAIL_BOX))
    for label, blob, size in zip(("resized", "compressed", "thumbnail"), outputs, expected):
        if not blob:
            continue
        got = Image.open(io.BytesIO(blob)).size
        if abs(got[0] - size[0]) > 1 or abs(got[1] - size[1]) > 1:
            raise RuntimeError(f"{name} made a {label} of {got}, expected {size}")


def time_round_robin(inputs: dict[str, bytes], rounds: dict[str, int]) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per call, per input and implementation, after one untimed warm-up call each."""
    names = list(IMPLEMENTATIONS)
    timings: dict[str, dict[str, list[float]]] = {}
    for size_name, data in inputs.items():
        for name in names:
            check_outputs(name, data, IMPLEMENTATIONS[name](data))
        per_impl = {name: [] for name in names}
        for round_index in range(rounds[size_name]):
            start = round_index % len(names)
            for name in names[start:] + names[:start]:
                began = time.perf_counter()
                IMPLEMENTATIONS[name](data)
                per_impl[name].append((time.perf_counter() - began) * 1000)
        timings[size_name] = per_impl
    return timings


def summarize(timings: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Median ms per implementation per input, and ours/naive, ours/vips, ours/floor."""
    summary = {}
    for size_name, per_impl in timings.items():
        medians = {name: statistics.median(values) for name, values in per_impl.items()}
        summary[size_name] = {
            **{f"{name}_ms": round(value, 1) for name, value in medians.items()},
            "ratio_vs_naive": round(medians["ours"] / medians["naive"], 3),
            "ratio_vs_vips": round(medians["ours"] / medians["vips"], 3),
            "ratio_vs_floor": round(medians["ours"] / medians["floor"], 3),
            "rounds": len(per_impl["ours"]),
        }
    return summary


def placeholder_ms(data: bytes, rounds: int) -> float:
    """Median ms to make the placeholder (BlurHash and dominant colour) as a derivation does: from
    the picture's thumbnail, the smallest uncropped picture it has made by then. Timed apart,
    since inside make_derivatives it is too small to see in the noise of the whole."""
    from imgpipe.presets import BUILT_IN
    from processor.imaging import fit_size, load, orient, resize_to, to_srgb_rgb
    from processor.imaging.placeholder import placeholder

    image, _ = load(data, max_pixels=100_000_000)
    image = to_srgb_rgb(orient(image))
    resized = resize_to(image, fit_size(image.size, BUILT_IN.get("resized").box))
    thumbnail = resize_to(resized, fit_size(image.size, BUILT_IN.get("thumbnail").box))
    placeholder(thumbnail)
    timings = []
    for _ in range(rounds):
        began = time.perf_counter()
        placeholder(thumbnail)
        timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings)


def _derive_in_pool(data: bytes) -> float:
    """Derive once; the CPU seconds it took in this process (all its threads)."""
    began = time.process_time()
    ours(data)
    return time.process_time() - began


def pure_throughput(images: list[bytes], processes: int = 2) -> tuple[float, float]:
    """Images per second through make_derivatives alone, in `processes` warm processes, and
    the CPU ms each image took: what the pipeline could reach if storage, queueing and
    bookkeeping cost nothing."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        pool.map(_derive_in_pool, images[:processes * 2], chunksize=1)
        began = time.perf_counter()
        cpu_seconds = pool.map(_derive_in_pool, images, chunksize=1)
        elapsed = time.perf_counter() - began
    return len(images) / elapsed, sum(cpu_seconds) * 1000 / len(images)
