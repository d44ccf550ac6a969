"""Which of a derivative's formats to send, from the request's `Accept` header.

The order of preference is AVIF, then WebP, then JPEG, then PNG: the smallest file a client
can show. A client's q-values come first (a format it rates higher wins; `q=0` refuses one),
the order of preference breaks ties.

AVIF and WebP are sent only to a client that names them (`image/avif`, `image/webp`). A
wildcard (`image/*`, `*/*`) stands for what every client can show, JPEG and PNG: tools and old
browsers send `*/*` without being able to decode AVIF. A client that accepts none of the
formats the upload has for the preset, or sends no `Accept` at all, gets the fallback, the
format a plain `<img>` has always had: JPEG, else PNG, else what there is. It is never
answered 406, which would leave an `<img>` empty.

Pure: strings in, a format name out; nothing happens on import.
"""

from __future__ import annotations

import functools
import re

from imgpipe.formats import content_type

PREFERENCE = ("avif", "webp", "jpeg", "png")
# What a client that states no usable preference gets, the most widely shown first.
FALLBACK = ("jpeg", "png", "webp", "avif")
# Formats a wildcard stands for; the others must be named.
UNIVERSAL = frozenset({"jpeg", "png"})
MAX_RANGES = 64  # an Accept header longer than this is read no further
_RANGE = re.compile(r"^([a-z0-9!#$&^_.+-]+|\*)/([a-z0-9!#$&^_.+-]+|\*)\Z")
_QVALUE = re.compile(r"^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)\Z")


def parse_accept(header: str | None) -> tuple[tuple[str, str, float], ...]:
    """(type, subtype, q) of each well-formed media range, in order. A malformed range, or one with
    a malformed q, is left out, as if the client had not sent it."""
    ranges = []
    for part in (header or "").lower().split(",")[:MAX_RANGES]:
        media_range, *params = [piece.strip() for piece in part.split(";")]
        match = _RANGE.match(media_range)
        if not match or (match.group(1) == "*" and match.group(2) != "*"):
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.match(value) else -1.0
        if quality >= 0:
            ranges.append((match.group(1), match.group(2), quality))
    return tuple(ranges)


def quality_of(ranges: tuple[tuple[str, str, float], ...], output_format: str) -> float:
    """The q the client gives a format: that of the most specific range matching it (RFC 9110,
    12.5.1), 0 when none does. Wildcards match only the UNIVERSAL formats."""
    kind, subtype = content_type(output_format).split("/")
    best, specificity = 0.0, -1
    for range_type, range_subtype, quality in ranges:
        if (range_type, range_subtype) == (kind, subtype):
            rank = 2
        elif output_format not in UNIVERSAL:
            continue
        elif range_type == kind and range_subtype == "*":
            rank = 1
        elif (range_type, range_subtype) == ("*", "*"):
            rank = 0
        else:
            continue
        if rank > specificity:
            best, specificity = quality, rank
    return best


@functools.lru_cache(maxsize=1024)
def choose(header: str | None, available: frozenset[str]) -> str:
    """The format to send of those `available` (not empty). Cached: a site's visitors send a few
    distinct headers, over and over."""
    ranges = parse_accept(header)
    ranked = [(quality_of(ranges, fmt), -PREFERENCE.index(fmt), fmt) for fmt in PREFERENCE if fmt in available]
    acceptable = [entry for entry in ranked if entry[0] > 0]
    if acceptable:
        return max(acceptable)[2]
    return next(fmt for fmt in FALLBACK if fmt in available)
