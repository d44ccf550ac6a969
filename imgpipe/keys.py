"""Object key layout in the bucket.

Keys are made from server-issued ids only, never from a client's filename, so a client
cannot name or overwrite an object it was not handed.
"""

from __future__ import annotations

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


def derivative_key(preset: str, upload_id: str, output_format: str = "jpeg") -> str:
    """<preset>/<id>.<ext>: resized/<id>.jpg, square/<id>.webp; the built-in thumbnail's are thumbnails/<id>.jpg."""
    return f"{_PREFIX.get(preset, preset)}/{upload_id}.{formats.extension(output_format)}"


def output_format_of(key: str) -> str | None:
    """The output format a derivative's key was made for, or None for a key of no output format."""
    suffix = key.rsplit(".", 1)[-1]
    return next((fmt for fmt in formats.OUTPUT_FORMATS if formats.extension(fmt) == suffix), None)


def upload_id_from_key(key: str) -> str | None:
    """The id an original's key belongs to, or None for any object imgpipe did not name."""
    match = _ORIGINAL_KEY.match(key)
    return match.group(1) if match else None


def derivative_keys(upload_id: str, presets=DERIVATIVES) -> list[str]:
    """Every derivative key an upload can have of these presets (by name), in every output format,
    whether it was asked for or not."""
    return [derivative_key(preset, upload_id, fmt) for fmt in formats.OUTPUT_FORMATS for preset in presets]
