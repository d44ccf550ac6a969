"""Object key layout in the bucket.

Keys are made from server-issued ids only, never from a client's filename, so a client
cannot name or overwrite an object it was not handed.
"""

from __future__ import annotations

import re
import secrets

DERIVATIVES = ("resized", "compressed", "thumbnail")

_PREFIX = {"resized": "resized", "compressed": "compressed", "thumbnail": "thumbnails"}
_EXTENSION = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
ORIGINALS_PREFIX = "originals/"
UPLOAD_ID_REGEX = "[0-9a-f]{32}"
_ID_PATTERN = re.compile(rf"^{UPLOAD_ID_REGEX}$")
_ORIGINAL_KEY = re.compile(r"^originals/([0-9a-f]{32})\.[a-z0-9]{1,5}$")


def new_upload_id() -> str:
    return secrets.token_hex(16)


def is_upload_id(value: str) -> bool:
    return bool(_ID_PATTERN.match(value))


def original_key(upload_id: str, extension: str) -> str:
    return f"{ORIGINALS_PREFIX}{upload_id}.{extension}"


def derivative_key(kind: str, upload_id: str, output_format: str = "jpeg") -> str:
    """resized/<id>.jpg for the JPEG derivatives; the other output formats differ only in extension."""
    return f"{_PREFIX[kind]}/{upload_id}.{_EXTENSION[output_format]}"


def upload_id_from_key(key: str) -> str | None:
    """The id an original's key belongs to, or None for any object imgpipe did not name."""
    match = _ORIGINAL_KEY.match(key)
    return match.group(1) if match else None


def derivative_keys(upload_id: str) -> list[str]:
    """Every derivative key an upload can have, in every output format, whether it was asked for or not."""
    return [derivative_key(kind, upload_id, fmt) for fmt in _EXTENSION for kind in DERIVATIVES]
