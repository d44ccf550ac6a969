"""`python -m bench.multipart [--quick]`: a 100 MB upload over loopback, one PUT against parts sent
four at a time, and what the parts cost the API (part of `make bench`; alone, it sets the
"multipart" entry of bench/results.json and leaves the rest as it is).

Both ways go from POST /uploads to the store's last answer, on the same stack, in turn. The
relay and the workers are stopped first: the 100 MB of noise is no picture, and only the transfer
is measured. The parts cost one API call each (its URL) and one more for the complete; their
time is taken apart from the transfer's.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.stacks import PROJECT_ROOT, remove_stack, start_stack

SIZE = 100_000_000
PARTS_AT_ONCE = 4
FULL_ROUNDS, QUICK_ROUNDS = 5, 2
RESULTS = PROJECT_ROOT / "bench" / "results.json"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Client:
    """The API as a client sees it, timing each call to it."""

    def __init__(self, stack):
        self.base = stack.api_url
        self.headers = {"Authorization": f"Bearer {stack.settings.api_token}"}
        self.local = threading.local()
        self.lock = threading.Lock()
        self.timings: dict[str, list[float]] = {"sign": [], "complete": []}

    @property
    def http(self) -> requests.Session:
        if getattr(self.local, "session", None) is None:
            self.local.session = requests.Session()
            self.local.session.headers.update(self.headers)
        return self.local.session

    @property
    def store(self) -> requests.Session:
        """Connections to the store, kept as a browser keeps them; no API token goes there."""
        if getattr(self.local, "store", None) is None:
            self.local.store = requests.Session()
        return self.local.store

    def call(self, method: str, path: str, timed: str | None = None, **kwargs) -> dict:
        began = time.perf_counter()
        answer = self.http.request(method, self.base + path, timeout=60, **kwargs)
        if timed:
            with self.lock:
                self.timings[timed].append(time.perf_counter() - began)
        answer.raise_for_status()
        return answer.json()

    def create(self, multipart: bool) -> dict:
        return self.call("POST", "/uploads", json={"filename": "big.jpg", "content_type": "image/jpeg", "size": SIZE,
                                                   "multipart": multipart})


def one_put(client: Client, data: bytes) -> float:
    began = time.perf_counter()
    upload = client.create(multipart=False)["upload"]
    client.store.put(upload["url"], data=data, headers=upload["headers"], timeout=120).raise_for_status()
    return time.perf_counter() - began


def in_parts(client: Client, data: bytes) -> tuple[float, int]:
    began = time.perf_counter()
    created = client.create(multipart=True)
    plan = created["multipart"]

    def send(number: int) -> dict:
        part = client.call("GET", f"/uploads/{created['id']}/multipart/parts/{number}", timed="sign")
        start = (number - 1) * plan["part_size"]
        answer = client.store.put(part["url"], data=data[start:start + part["size"]], headers=part["headers"],
                                 timeout=120)
        answer.raise_for_status()
        return {"part_number": number, "etag": answer.headers["ETag"]}

    with ThreadPoolExecutor(PARTS_AT_ONCE) as pool:
        parts = list(pool.map(send, range(1, plan["part_count"] + 1)))
    client.call("POST", f"/uploads/{created['id']}/multipart/complete", timed="complete", json={"parts": parts})
    return time.perf_counter() - began, plan["part_count"]


def measure(rounds: int) -> dict:
    say(f"multipart: a {SIZE // 1_000_000} MB upload, one PUT against parts {PARTS_AT_ONCE} at a time, {rounds} round(s)")
    stack = start_stack(workers=1, max_upload_bytes=2 * SIZE)
    try:
        for name in [name for name in stack.processes if name == "relay" or name.startswith("worker")]:
            stack.stop_process(name)
        client = Client(stack)
        data = os.urandom(SIZE)
        one_put(client, data), in_parts(client, data)  # a round to warm connections and caches
        client.timings = {"sign": [], "complete": []}
        single, parts, part_count = [], [], 0
        for _ in range(rounds):
            single.append(one_put(client, data))
            seconds, part_count = in_parts(client, data)
            parts.append(seconds)
    finally:
        remove_stack(stack)
    sign_ms = statistics.median(client.timings["sign"]) * 1000
    complete_ms = statistics.median(client.timings["complete"]) * 1000
    api_ms = (sum(client.timings["sign"]) + sum(client.timings["complete"])) * 1000 / rounds
    return {
        "size_mb": SIZE // 1_000_000,
        "parts": part_count,
        "parts_at_once": PARTS_AT_ONCE,
        "rounds": rounds,
        "single_put_s": round(statistics.median(single), 3),
        "single_put_mb_per_s": round(SIZE / 1e6 / statistics.median(single), 1),
        "parts_s": round(statistics.median(parts), 3),
        "parts_mb_per_s": round(SIZE / 1e6 / statistics.median(parts), 1),
        "extra_api_calls": part_count + 1,
        "sign_part_ms_p50": round(sign_ms, 2),
        "complete_ms_p50": round(complete_ms, 2),
        "api_ms_per_part": round(api_ms / part_count, 2),
    }


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    figures = {**measure(QUICK_ROUNDS if quick else FULL_ROUNDS), "mode": "quick" if quick else "full"}
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["multipart"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for name, value in figures.items():
        say(f"  {name} = {value}")


if __name__ == "__main__":
    main()
