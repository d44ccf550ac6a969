"""`python -m bench.profile_minio`: what MinIO spends on one upload's requests, seen from inside MinIO.

A 1 MP upload asks five requests of MinIO: the client's PUT, the worker's GET of the original and
one PUT per derivative. This replays exactly those, through imgpipe's own code (the API presigns
the client's PUT; imgpipe.storage reads and writes as the worker does, with the worker's
identity and the derivatives' headers, the three PUTs at once on writer threads), against one
MinIO per --drive. Each MinIO runs on a stack of its own (Redis, the bucket's notification and
identities as `imgpipe setup` makes them, the API; no relay or worker, so nothing but these
requests reaches it), and the drives take turns batch by batch, so every drive is measured in
the same minutes of a noisy machine; --churn first gives each drive the removed files a busy
MinIO leaves behind.

It reports MinIO's CPU per upload, user and kernel apart (/proc), the requests it counted (its
own metrics), and, where `perf` may sample MinIO (root, or kernel.perf_event_paranoid ≤ 1), where
the first drive's time goes: each sample is charged to the part nearest its leaf (CATEGORIES), so
kernel time is split by the system call it serves. Writes bench/tmp/profile/minio.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import pipeline
from bench.minio_requests import request_counts
from bench.profile_worker import images
from bench.stacks import PROJECT_ROOT, new_stack, remove_stack
from cli.stack import Stack
from imgpipe.formats import content_type
from imgpipe.keys import DERIVATIVES, content_version, derivative_key
from imgpipe.processes import process_stat
from imgpipe.storage import Storage
from imgpipe.store_identities import WORKER
from processor.imaging import make_derivatives
from processor.tasks import IMMUTABLE

BATCH = 10  # uploads a drive gets before the next one's turn
SAMPLE_RATE = 1999  # per second
# The part of MinIO a sample's time goes to, by the frame nearest its leaf that matches one of
# these (kernel frames come first on a stack, so kernel time goes by the system call it serves).
CATEGORIES = [
    ("kernel: making and removing files and directories",
     r"^(__x64_sys|__do_sys|ksys)_(mkdirat|openat|unlinkat|renameat2?|close|lsetxattr|faccessat2?)$"),
    ("kernel: fdatasync", r"^(__x64_sys|__do_sys|ksys)_f(data)?sync$"),
    ("kernel: reads and writes (files and sockets)",
     r"^(__x64_sys|__do_sys|ksys)_(read|write|pread64|pwrite64|readv|writev|sendto|recvfrom|sendfile64)$"),
    ("kernel: threads sleeping and waking (futex, nanosleep, epoll)",
     r"^(__x64_sys|__do_sys|ksys)_(futex|nanosleep|epoll_pwait2?|sched_yield|tgkill|rt_sigreturn)$"),
    ("kernel: other system calls", r"^(__x64_sys|__do_sys|ksys)_"),
    ("hashing (MD5 for the ETag, SHA-256 of signed payloads, bitrot)",
     r"^(crypto/md5|crypto/sha256|crypto/internal/fips140/sha256|github\.com/minio/(highwayhash|md5-simd|sha256-simd))\."),
    ("Go runtime: allocation and garbage collection",
     r"^runtime\.(mallocgc|gcBgMarkWorker|gcDrain|gcAssist|bgsweep|bgscavenge|newobject|makeslice|growslice)"),
    ("Go runtime: scheduler and sysmon", r"^runtime\.(sysmon|schedule|findRunnable|mcall|park_m|goexit)"),
    ("signature check and access policy",
     r"minio/cmd\.(reqSignatureV4Verify|doesSignatureMatch|doesPresignedSignatureMatch|isPutActionAllowed|"
     r"checkRequestAuthType|authenticateRequest|getRequestAuthType|globalIAMSys|.*IAMSys|.*PolicySys)"),
    ("event notification", r"minio/(cmd\.(sendEvent|.*EventNotifier)|internal/event)"),
    ("storage layer (erasure coding, xl.meta, the drive)", r"minio/cmd\.(\(\*?xlStorage|\(\*?erasure|erasure|xlMeta|"
                                                           r"\(\*?xlStorageDiskIDCheck|renameData|readAllFileInfo)"),
    ("request routing (minio/mux, its regular expressions)", r"^github\.com/minio/mux\."),
    ("S3 handlers and HTTP", r"minio/cmd\.|^net/http\.|^net\.|^bufio\."),
]
KERNEL_OTHER = "kernel: interrupts, faults, scheduling"
OTHER = "other (Go runtime, libraries)"


def category(frames: list[tuple[str, bool]]) -> str:
    """The part a sample goes to: frames are (symbol, in the kernel), leaf first."""
    for symbol, _ in frames:
        for name, pattern in CATEGORIES:
            if re.search(pattern, symbol):
                return name
    return KERNEL_OTHER if frames and frames[0][1] else OTHER


def samples(script: str) -> Counter:
    """Samples per category from `perf script -F ip,sym,dso` output: one block per sample, a frame
    per line (address, symbol, (dso)), blocks parted by a blank line."""
    counts: Counter = Counter()
    frames: list[tuple[str, bool]] = []
    for line in [*script.splitlines(), ""]:
        parts = line.split(None, 1)
        if len(parts) == 2:
            symbol, _, dso = parts[1].rpartition(" (")
            frames.append((symbol.strip(), dso.startswith("[kernel")))
        elif frames:
            counts[category(frames)] += 1
            frames = []
    return counts


def upload_mix(count: int) -> list[tuple[bytes, dict[str, dict[str, bytes]]]]:
    """bench.profile_worker's 1 MP originals, each with the derivatives make_derivatives makes of it."""
    originals = images(count)
    made = {original: make_derivatives(original, max_pixels=50_000_000).made for original in set(originals)}
    return [(original, made[original]) for original in originals]


class Drive:
    """A MinIO on its own stack, its data under `parent`, its environment plus `minio_env`, and
    the two sides that talk to it."""

    def __init__(self, name: str, parent: str, minio_env: dict[str, str]):
        self.name = name
        self.stack: Stack = new_stack(workers=0, parent=parent)
        stack = self.stack
        try:
            stack.migrate_database()
            stack.start_redis()
            with extra_environment(minio_env):  # the stack's processes inherit what is not a setting
                stack.start_minio()
            stack.apply_config()
            stack.start_api()
        except BaseException:
            self.remove()
            raise
        self.client = pipeline.Client(stack.api_url, stack.settings.api_token)
        self.worker = Storage(stack.settings, WORKER)
        self.writers = ThreadPoolExecutor(max_workers=len(DERIVATIVES))  # as processor.resources has them
        self.pid = stack.processes["minio"].pid

    def upload(self, original: bytes, derivatives: dict[str, dict[str, bytes]]) -> None:
        created = self.client.create(len(original))
        self.client.put(created, original)
        with self.worker.fetch(created["key"]) as fetched:
            fetched.read(len(original))
        writes = [self.writers.submit(self.worker.write, derivative_key(name, created["id"], fmt, content_version(encoded)),
                                      encoded, content_type(fmt), IMMUTABLE)
                  for name, by_format in derivatives.items() for fmt, encoded in by_format.items()]
        for write in writes:
            write.result()

    def cpu_seconds(self) -> tuple[float, float]:
        """MinIO's user and kernel CPU seconds so far."""
        stat = process_stat(self.pid)
        tick = os.sysconf("SC_CLK_TCK")
        return stat.utime / tick, stat.stime / tick

    def remove(self) -> None:
        if hasattr(self, "writers"):
            self.writers.shutdown()
        remove_stack(self.stack)


@contextlib.contextmanager
def extra_environment(variables: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def perf_record(pid: int, output: Path) -> subprocess.Popen | None:
    """perf sampling MinIO with its call stacks, or None where it cannot (no perf, no permission)."""
    perf = shutil.which("perf")
    if perf is None:
        return None
    process = subprocess.Popen([perf, "record", "-F", str(SAMPLE_RATE), "-g", "-p", str(pid), "-o", str(output)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    return process if process.poll() is None else None


def perf_categories(perf: subprocess.Popen, output: Path) -> Counter:
    perf.send_signal(signal.SIGINT)
    perf.wait(timeout=60)
    script = subprocess.run(["perf", "script", "-i", str(output), "-F", "ip,sym,dso"],
                            capture_output=True, text=True, check=True).stdout
    return samples(script)


def churn(directory: str, count: int) -> None:
    """Make and remove `count` directories holding a file each, under `directory`: what a drive
    that has served a steady flow of uploads has just been through, since MinIO makes and removes
    temporary ones for every PUT. Some filesystems (ext4 without a journal) make each new file
    cost more for a while after many were removed."""
    base = Path(tempfile.mkdtemp(prefix="churn-", dir=directory))
    for index in range(count):
        (base / str(index)).mkdir()
        (base / str(index) / "part").touch()
    for index in range(count):
        (base / str(index) / "part").unlink()
        (base / str(index)).rmdir()
    base.rmdir()


def measure(drives: dict[str, tuple[str, dict[str, str]]], uploads: int, out: Path, churned: int = 0) -> dict:
    """The drives in turns, timed with nothing else sampling them; then the first drive again
    under perf, whose samples share out its unsampled CPU per upload (perf costs the process it
    samples some CPU of its own)."""
    mix = upload_mix(uploads)
    started: list[Drive] = []
    try:
        for name, (parent, minio_env) in drives.items():
            churn(parent, churned)
            started.append(Drive(name, parent, minio_env))
        for drive in started:  # warm: connections, MinIO's caches, the first objects of a prefix
            for original, derivatives in mix[:BATCH]:
                drive.upload(original, derivatives)
        cpu = {drive.name: [0.0, 0.0] for drive in started}
        requests_before = {drive.name: request_counts(drive.stack.settings) for drive in started}
        for first in range(0, uploads, BATCH):
            for drive in started:
                before = drive.cpu_seconds()
                for original, derivatives in mix[first:first + BATCH]:
                    drive.upload(original, derivatives)
                after = drive.cpu_seconds()
                cpu[drive.name][0] += after[0] - before[0]
                cpu[drive.name][1] += after[1] - before[1]
        result = {"uploads": uploads, "churned": churned, "drives": {}}
        for drive in started:
            requests = request_counts(drive.stack.settings) - requests_before[drive.name]
            user, kernel = (seconds * 1000 / uploads for seconds in cpu[drive.name])
            result["drives"][drive.name] = {
                "directory": drives[drive.name][0], "minio_env": drives[drive.name][1],
                "user_ms_per_upload": round(user, 2), "kernel_ms_per_upload": round(kernel, 2),
                "cpu_ms_per_upload": round(user + kernel, 2),
                "requests_per_upload": {api: round(count / uploads, 2) for api, count in sorted(requests.items())},
            }
        profiled = started[0]
        perf = perf_record(profiled.pid, out / "minio.perf.data")
        if perf is not None:
            try:
                for original, derivatives in mix:
                    profiled.upload(original, derivatives)
            except BaseException:
                perf.kill()
                perf.wait()
                raise
            parts = perf_categories(perf, out / "minio.perf.data")
            total = sum(parts.values())
            unsampled = result["drives"][profiled.name]["cpu_ms_per_upload"]
            result["parts"] = {"drive": profiled.name, "samples": total,
                               "ms_per_upload": {name: round(unsampled * count / total, 2)
                                                 for name, count in parts.most_common()}}
        return result
    finally:
        for drive in started:
            drive.remove()


def show(result: dict) -> None:
    churned = (f", {result['churned']} directories (a file in each) made and removed on each drive first"
               if result["churned"] else "")
    print(f"\nMinIO, {result['uploads']} uploads (1 MP) per drive{churned}, drives taking turns every {BATCH}:")
    print("| drive | directory, environment | user | kernel | CPU ms per upload | requests per upload |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for name, drive in result["drives"].items():
        requests = ", ".join(f"{api} {count:g}" for api, count in drive["requests_per_upload"].items())
        where = " ".join([drive["directory"], *(f"{key}={value}" for key, value in drive["minio_env"].items())])
        print(f"| {name} | {where} | {drive['user_ms_per_upload']} | {drive['kernel_ms_per_upload']} "
              f"| {drive['cpu_ms_per_upload']} | {requests} |")
    if result.get("parts", {}).get("samples"):
        parts = result["parts"]
        print(f"\nWhere drive {parts['drive']}'s time goes ({parts['samples']} perf samples):")
        print("| part | CPU ms per upload |\n| --- | ---: |")
        for name, ms in parts["ms_per_upload"].items():
            print(f"| {name} | {ms} |")
    else:
        print("\n(no perf samples: perf is missing or may not sample MinIO here)")


def drive_argument(text: str) -> tuple[str, tuple[str, dict[str, str]]]:
    """NAME=DIRECTORY[,VARIABLE=VALUE...]: a drive, and what MinIO's environment gets besides."""
    name, _, rest = text.partition("=")
    directory, *assignments = rest.split(",")
    minio_env = dict(assignment.partition("=")[::2] for assignment in assignments)
    if not name or not Path(directory).is_dir() or not all(minio_env) or not all(minio_env.values()):
        raise argparse.ArgumentTypeError(f"{text!r}: want NAME=DIRECTORY[,VARIABLE=VALUE...], an existing directory")
    return name, (directory, minio_env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=300, help="1 MP uploads per drive")
    parser.add_argument("--drive", type=drive_argument, action="append", default=[],
                        metavar="NAME=DIRECTORY[,VARIABLE=VALUE...]",
                        help="a MinIO with its data under DIRECTORY and these variables besides in its environment "
                             "(repeat to compare filesystems or settings); default: one in the system's temporary directory")
    parser.add_argument("--churn", type=int, default=0, metavar="N",
                        help="first make and remove N directories holding a file each on every drive, "
                             "as a drive that has served a steady flow of uploads has lately")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "tmp" / "profile")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    drives = dict(args.drive) or {"temp": (tempfile.gettempdir(), {})}
    result = measure(drives, args.uploads, args.out, args.churn)
    (args.out / "minio.json").write_text(json.dumps(result, indent=2) + "\n")
    show(result)
    print(f"\nwritten: {args.out}/minio.json")


if __name__ == "__main__":
    main()
