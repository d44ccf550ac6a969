"""Multipart uploads as rules: when a file goes in parts, how big each part is, and whether the
parts the store holds make exactly the declared file.

S3's limits: every part but the last at least 5 MiB, at most 5 GiB each, at most 10,000 parts.
Parts are 8 MiB, doubled until the file fits in 10,000 of them, so a part count never grows past
S3's and a small part never makes a big file slow. The part size follows from the declared size
alone, so the API, the CLI and a browser all agree on part n's length without asking.

Pure: no storage, no clock. The API lists the parts at the store and hands them here.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgpipe.error_codes import ApiError
from imgpipe.refusal import Refused

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
DEFAULT_PART_SIZE = 8 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000


class PartsRefused(Refused):
    """The parts asked for, or those at the store, do not make the declared file."""


@dataclass(frozen=True)
class Part:
    """One part as the store lists it (or as a client names it, size then unknown: -1)."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class PartPlan:
    """How a file of `size` bytes is cut: `count` parts of `part_size`, the last one shorter."""

    size: int
    part_size: int
    count: int

    def length(self, number: int) -> int:
        """Bytes of part `number` (1-based); ValueError outside 1..count."""
        if not 1 <= number <= self.count:
            raise ValueError(f"part {number} is not one of 1..{self.count}")
        return self.part_size if number < self.count else self.size - self.part_size * (self.count - 1)


def plan_parts(size: int, part_size: int = DEFAULT_PART_SIZE) -> PartPlan:
    """The parts of a file of `size` bytes (at least 1): `part_size`, doubled until they are few enough."""
    if size < 1:
        raise ValueError("a multipart upload holds at least one byte")
    if size > MAX_PART_SIZE * MAX_PARTS:
        raise ValueError(f"{size} bytes is more than {MAX_PARTS} parts of {MAX_PART_SIZE} bytes")
    part_size = max(part_size, MIN_PART_SIZE)
    while -(-size // part_size) > MAX_PARTS:
        part_size *= 2
    part_size = min(part_size, MAX_PART_SIZE)
    return PartPlan(size=size, part_size=part_size, count=-(-size // part_size))


def wants_multipart(asked: bool | None, size: int, threshold_bytes: int) -> bool:
    """Parts when the client asks for them, or, when it does not say, from the threshold on.
    An empty file always goes in one PUT: S3 has no multipart object of no bytes."""
    if size < 1:
        return False
    return asked if asked is not None else size >= threshold_bytes


def check_parts(plan: PartPlan, stored: list[Part], asked: list[Part]) -> list[Part]:
    """The parts to complete with, 1..count in order, once the store's parts are exactly the plan's
    and the client's list names the same parts with the same ETags. PartsRefused otherwise, with
    a code saying which rule failed."""
    by_number = {part.number: part for part in stored}
    missing = [number for number in range(1, plan.count + 1) if number not in by_number]
    if missing:
        raise PartsRefused(409, ApiError.MULTIPART_PARTS_MISSING,
                           f"the store has no part {_numbers(missing)} of {plan.count}; upload it, then complete")
    chosen = [by_number[number] for number in range(1, plan.count + 1)]
    wrong = [part for part in chosen if part.size != plan.length(part.number)]
    if wrong:
        part = wrong[0]
        raise PartsRefused(409, ApiError.MULTIPART_PART_SIZE,
                           f"part {part.number} holds {part.size} bytes, not {plan.length(part.number)}")
    total = sum(part.size for part in chosen)
    if total != plan.size:
        raise PartsRefused(409, ApiError.MULTIPART_SIZE_MISMATCH,
                           f"the parts hold {total} bytes, not the declared {plan.size}")
    named = {part.number: _bare(part.etag) for part in asked}
    if len(named) != len(asked) or set(named) != set(range(1, plan.count + 1)):
        raise PartsRefused(400, ApiError.MULTIPART_PARTS_INVALID,
                           f"parts must name each of parts 1..{plan.count} once, with its ETag")
    differ = [part.number for part in chosen if named[part.number] != _bare(part.etag)]
    if differ:
        raise PartsRefused(409, ApiError.MULTIPART_ETAG_MISMATCH,
                           f"part {_numbers(differ)} at the store is not the one named (another ETag)")
    return chosen


def _bare(etag: str) -> str:
    """An ETag without the quotes some clients keep and some strip."""
    return etag.strip().strip('"')


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    return shown + (f" (and {len(numbers) - 10} more)" if len(numbers) > 10 else "")
