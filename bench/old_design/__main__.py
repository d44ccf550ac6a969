"""`python -m bench.old_design [--quick]`: the old design and imgpipe side by side alone, on a
fresh stack, without the rest of `make bench`. Its figures replace results["old_design"] in
bench/results.json (the rest is kept as the last whole run left it) and BENCHMARKS.md is
written again from that file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import report
from bench.__main__ import FULL, QUICK, WORKERS, burst_images, say
from bench.inputs import SIZES, photo_like_jpeg
from bench.old_design.measure import side_by_side
from bench.old_design.summary import lines
from bench.stacks import PROJECT_ROOT, remove_stack, start_stack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.old_design", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer uploads and a smaller burst")
    parser.add_argument("--results", type=Path, default=PROJECT_ROOT / "bench" / "results.json")
    parser.add_argument("--markdown", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    plan, mode = (QUICK, "quick") if args.quick else (FULL, "full")
    single, large = (photo_like_jpeg(*SIZES[size], seed=1) for size in ("1mp", "12mp"))  # as benchmark_inputs()
    say("starting a stack on free ports")
    stack = start_stack(WORKERS)
    try:
        measured = side_by_side(stack, single, large, burst_images(plan.burst_uploads), plan.e2e_uploads, WORKERS,
                                mode, say)
    finally:
        remove_stack(stack)
    results = json.loads(args.results.read_text())
    results["old_design"] = measured
    report.write_results(results, args.results)
    report.write_markdown(results, args.markdown)
    say(f"wrote {args.results} and {args.markdown}")
    say(lines(results)[-1])


if __name__ == "__main__":
    main()
