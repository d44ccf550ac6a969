"""Checking what clients send, before anything is recorded or signed.

Pure: no Flask, no storage. Each rejection carries the HTTP status and a stable code so
the API turns it into the same JSON error shape everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

BASE_CONTENT_TYPES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/tiff": "tiff",
    "image/bmp": "bmp",
}
OPTIONAL_CONTENT_TYPES = {"image/heic": ("heic", "heif"), "image/heif": ("heif", "heif"), "image/avif": ("avif", "avif")}
MAX_FILENAME_LENGTH = 255
MAX_URL_LENGTH = 2048
FALLBACK_FILENAME = "upload"


class RequestRejected(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class NewUpload:
    filename: str
    content_type: str
    extension: str
    size: int | None
    callback_url: str | None


def accepted_content_types(readable_formats: set[str]) -> dict[str, str]:
    """Content type -> key extension, with HEIC/HEIF/AVIF only where the decoder is installed."""
    types = dict(BASE_CONTENT_TYPES)
    for content_type, (extension, needed) in OPTIONAL_CONTENT_TYPES.items():
        if needed in readable_formats:
            types[content_type] = extension
    return types


def parse_new_upload(body, *, accepted: dict[str, str], max_bytes: int) -> NewUpload:
    if not isinstance(body, dict):
        raise RequestRejected(400, "invalid_request", "the body must be a JSON object")
    unknown = set(body) - {"filename", "content_type", "size", "callback_url"}
    if unknown:
        raise RequestRejected(400, "invalid_request", f"unknown field(s): {', '.join(sorted(unknown))}")
    filename = clean_filename(_required_string(body, "filename"))
    content_type = _required_string(body, "content_type").split(";")[0].strip().lower()
    if content_type not in accepted:
        raise RequestRejected(
            415, "unsupported_media_type",
            f"{content_type!r} is not an accepted image type; use one of {', '.join(sorted(accepted))}")
    size = body.get("size")
    if isinstance(size, float) and size.is_integer():
        size = int(size)  # JSON has one number type: 1024.0 is a whole number of bytes
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RequestRejected(400, "invalid_request", "size must be a non-negative integer (bytes)")
        if size > max_bytes:
            raise RequestRejected(400, "too_large", f"size {size} is over the limit of {max_bytes} bytes")
    return NewUpload(filename, content_type, accepted[content_type], size, _callback_url(body.get("callback_url")))


def clean_filename(name: str) -> str:
    """The client's filename, kept only as a label: no path, no control characters, bounded.
    A name with nothing left is labelled "upload" (it never becomes a key anyway)."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    name = re.sub(r"\s+", " ", name)[:MAX_FILENAME_LENGTH]
    return FALLBACK_FILENAME if name in ("", ".", "..") else name


def _required_string(body: dict, field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise RequestRejected(400, "invalid_request", f"{field} is required and must be a string")
    return value


def _callback_url(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        raise RequestRejected(400, "invalid_request", "callback_url must be an http(s) URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RequestRejected(400, "invalid_request", "callback_url must be an http(s) URL")
    return value
