"""A gzip bomb through the whole stack: a 10 MB stream that a reader which undoes the encoding would
expand to 10 GiB. Stored with the Content-Encoding its URL did not sign, it must fail at once, and
the worker's memory must stay where it was: it reads raw bytes, and only after its checks."""

from __future__ import annotations

import gzip
import struct
import time
import zlib
from pathlib import Path

import pytest
import requests

import imagegen
from imgpipe.processes import memory_kib, process_stat
from pipeline_client import Api
from stacks import process_tree, running_stack

MIB = 1 << 20
EXPANDED = 10 * 1024 * MIB
MAX_PIXELS = 12_000_000  # this stack's limit: one decoded picture is at most this many RGBA pixels
ONE_DECODED_PICTURE = MAX_PIXELS * 4


def _zeros_crc(length: int, crc: int = 0) -> int:
    """zlib.crc32 of `length` zero bytes after `crc`, without running over them: appending zeros is
    an affine map of the CRC, so the map of 1 MiB is squared up to the length (zlib's crc32_combine)."""
    def measured(block: bytes):
        base = zlib.crc32(block, 0)
        return [zlib.crc32(block, 1 << bit) ^ base for bit in range(32)], base

    def apply(step, value):
        columns, constant = step
        for bit in range(32):
            if value >> bit & 1:
                constant ^= columns[bit]
        return constant

    def then(first, second):  # second after first
        constant = apply(second, first[1])
        return [apply(second, first[1] ^ column) ^ constant for column in first[0]], constant

    assert length % MIB == 0
    step, blocks = measured(bytes(MIB)), length // MIB
    while blocks:
        if blocks & 1:
            crc = apply(step, crc)
        step, blocks = then(step, step), blocks >> 1
    return crc


def gzip_bomb(expanded: int) -> bytes:
    """A valid gzip stream of `expanded` zero bytes (a multiple of 1 MiB), about a thousandth its size."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert again == block  # after a full flush each block stands alone, so repeating it is the same stream
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", _zeros_crc(expanded), expanded & 0xFFFFFFFF)
    return header + block * (expanded // MIB) + compressor.flush() + trailer


def test_the_bomb_builder_makes_a_valid_stream():
    assert gzip.decompress(gzip_bomb(64 * MIB)) == bytes(64 * MIB)  # CRC and length checked by gzip itself
    assert _zeros_crc(3 * MIB, 12345) == zlib.crc32(bytes(3 * MIB), 12345)


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    fields = memory_kib(pid)
    return {name: fields[name] * 1024 for name in ("VmRSS", "VmHWM")}


def worker_process(stack) -> int:
    """The process that runs jobs: the worker supervisor's own child (RQ's scheduler is below it)."""
    supervisor = stack.processes["worker"].pid
    children = [pid for pid in process_tree(supervisor)
                if pid != supervisor and process_stat(pid).ppid == supervisor]
    assert len(children) == 1, children
    return children[0]


@pytest.fixture(scope="module")
def bomb_stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("bomb-stack"), max_pixels=MAX_PIXELS) as stack:
        yield stack


def test_a_gzip_bomb_fails_at_once_and_the_worker_memory_stays_put(bomb_stack, tmp_path):
    api = Api.of(bomb_stack)
    api.http.headers["Authorization"] = f"Bearer {bomb_stack.settings.api_token}"
    warm = imagegen.encode(imagegen.photo_like(800, 600, seed=3), "JPEG", quality=85)
    created = api.create("warm.jpg", "image/jpeg", len(warm))  # its first job makes the worker's resources
    assert requests.put(created["upload"]["url"], data=warm, headers=created["upload"]["headers"], timeout=30).ok
    assert api.wait_final(created["id"], 60)["status"] == "completed"

    bomb = gzip_bomb(EXPANDED)
    assert len(bomb) < 11 * 1000 * 1000
    worker = worker_process(bomb_stack)
    idle = memory(worker)["VmRSS"]
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # the peak from here on
    created = api.create("bomb.jpg", "image/jpeg", len(bomb))
    put = requests.put(created["upload"]["url"], data=bomb, timeout=60,
                       headers={**created["upload"]["headers"], "Content-Encoding": "gzip"})
    assert put.status_code == 200, put.text
    stored_at = time.monotonic()
    status = api.wait_final(created["id"], 30)
    took = time.monotonic() - stored_at
    peak = memory(worker)["VmHWM"]
    print(f"\ngzip bomb {len(bomb)} bytes -> {EXPANDED} expanded: {status['status']} {status['error']['code']}"
          f" {took:.2f} s after the PUT; worker idle RSS {idle / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB"
          f" (bound {(2 * idle + ONE_DECODED_PICTURE) / MIB:.1f} MiB)")
    assert (status["status"], status["error"]["code"]) == ("failed", "encoded_original")
    assert took < 10
    assert peak < 2 * idle + ONE_DECODED_PICTURE
