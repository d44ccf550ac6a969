"""Object key layout in the bucket.

Keys are made from server-issued ids only, never from a client's filename, so a client
cannot name or overwrite an object it was not handed.
"""

from __future__ import annotations

import re
import secrets

DERIVATIVES = ("resized", "compressed", "thumbnail")

_PREFIX = {"resized": "resized", "compressed": "compressed", "thumbnail": "thumbnails"}
ORIGINALS_PREFIX = "originals/"
_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_ORIGINAL_KEY = re.compile(r"^originals/([0-9a-f]{32})\.[a-z0-9]{1,5}$")


def new_upload_id() -> str:
    return secrets.token_hex(16)


def is_upload_id(value: str) -> bool:
    return bool(_ID_PATTERN.match(value))


def original_key(upload_id: str, extension: str) -> str:
    return f"{ORIGINALS_PREFIX}{upload_id}.{extension}"


def derivative_key(kind: str, upload_id: str) -> str:
    return f"{_PREFIX[kind]}/{upload_id}.jpg"


def upload_id_from_key(key: str) -> str | None:
    """The id an original's key belongs to, or None for any object imgpipe did not name."""
    match = _ORIGINAL_KEY.match(key)
    return match.group(1) if match else None
