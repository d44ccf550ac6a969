"""Object key layout in the bucket.

Keys are made from server-issued ids only, never from a client's filename, so a client
cannot name or overwrite an object it was not handed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import datetime

from imgpipe import formats

DERIVATIVES = ("resized", "compressed", "thumbnail")  # the built-in presets, named at the top of /results

# A preset's objects go under its name, but for the built-in thumbnail's, whose prefix was
# always plural; imgpipe.presets reserves "thumbnails" (and "originals") as preset names.
_PREFIX = {"thumbnail": "thumbnails"}
ORIGINALS_PREFIX = "originals/"
UPLOAD_ID_REGEX = "[0-9a-f]{32}"
_ID_PATTERN = re.compile(rf"^{UPLOAD_ID_REGEX}$")
_ORIGINAL_KEY = re.compile(r"^originals/([0-9a-f]{32})\.[a-z0-9]{1,5}$")


def new_upload_id() -> str:
    """The creation time in milliseconds (12 hex digits), then 80 random bits (20 hex digits).

    Still unguessable, and originals/ keys now sort by when their upload was made, so the
    sweeper finds the recent originals with one LIST instead of a request per row."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def originals_made_from(moment: datetime) -> str:
    """A key that sorts just before the original of every upload made at or after `moment`:
    listing the bucket after it (S3's start-after) yields exactly those originals."""
    return f"{ORIGINALS_PREFIX}{int(moment.timestamp() * 1000):012x}"


def is_upload_id(value: str) -> bool:
    return bool(_ID_PATTERN.match(value))


def original_key(upload_id: str, extension: str) -> str:
    return f"{ORIGINALS_PREFIX}{upload_id}.{extension}"


def derivative_prefix(preset: str) -> str:
    """Where a preset's objects go: its name, but for the built-in thumbnail's (thumbnails/)."""
    return f"{_PREFIX.get(preset, preset)}/"


def content_version(encoded: bytes) -> str:
    """The version a derivative's key carries: the first 64 bits of the SHA-256 of its bytes.

    A digest of what was encoded, not of the recipe that made it, because only the bytes are
    what a URL promises. A recipe's version stays the same when a Pillow or libavif upgrade
    changes the output; a digest changes whenever one byte does, so a key handed out as
    immutable can never be given other bytes, by a reprocess or by anything else. The same
    bytes made again (a retried job, a reprocess that changes nothing visible) get the same
    key, so nothing is written twice and the URL a cache holds stays good. 64 bits keep keys
    short; a collision would have to happen between two encodings of one upload's one preset
    and format.
    """
    return hashlib.sha256(encoded).hexdigest()[:16]


def derivative_key(preset: str, upload_id: str, output_format: str = "jpeg", version: str | None = None) -> str:
    """<preset>/<id>.<version>.<ext>: resized/<id>.3f9c0a1d2b4e5f60.jpg, the built-in thumbnail's
    under thumbnails/. Without a version, the key derivatives had before keys carried one
    (resized/<id>.jpg), which rows stored then still name."""
    infix = f".{version}" if version else ""
    return f"{derivative_prefix(preset)}{upload_id}{infix}.{formats.extension(output_format)}"


def derivative_key_prefix(preset: str, upload_id: str) -> str:
    """What every key of an upload's objects of a preset begins with, whatever their version and format."""
    return f"{derivative_prefix(preset)}{upload_id}."


def output_format_of(key: str) -> str | None:
    """The output format a derivative's key was made for, or None for a key of no output format."""
    suffix = key.rsplit(".", 1)[-1]
    return next((fmt for fmt in formats.OUTPUT_FORMATS if formats.extension(fmt) == suffix), None)


def upload_id_from_key(key: str) -> str | None:
    """The id an original's key belongs to, or None for any object imgpipe did not name."""
    match = _ORIGINAL_KEY.match(key)
    return match.group(1) if match else None
