"""Checking what clients send, before anything is recorded or signed.

Pure: no Flask, no storage. Each rejection carries the HTTP status and a stable code so
the API turns it into the same JSON error shape everywhere. The fields, their shapes and fixed
limits come from api/contract.py, which the OpenAPI document is built from too.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from api.contract import (BATCH, CALLBACK_URL, CONTENT_TYPE, FILENAME, FILES, FORMATS, MULTIPART, NEW_UPLOAD, PRESETS,
                          SIZE, Field)
from imgpipe.callback_addresses import CallbackRefused
from imgpipe.error_codes import ApiError
from imgpipe.formats import DEFAULT_FORMATS, OUTPUT_FORMATS
from imgpipe.refusal import Refused

MAX_FILENAME_LENGTH = 255
FALLBACK_FILENAME = "upload"
NEW_UPLOAD_FIELDS = {field.name for field in NEW_UPLOAD}
BATCH_FIELDS = {field.name for field in BATCH}
JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}
# The deepest body the contract has is three levels; this leaves room and keeps the parser,
# which recurses once per level, far from Python's recursion limit.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')

# An http(s) URI in RFC 3986's syntax, spelled out: ASCII only, percent-escapes well formed,
# brackets only around an IP literal host, one "#" at most.
_CHAR = r"[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2}"
_PCHAR = rf"{_CHAR}|[:@]"
HTTP_URI = re.compile(
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:(?:{_CHAR}|:)*@)?(?:\[[0-9A-Fa-f:.]+\]|(?:{_CHAR})+)(?::[0-9]*)?"
    rf"(?:/(?:{_PCHAR})*)*(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?\Z")


class RequestRejected(Refused):
    """A request body or query that is not what the contract describes."""


@dataclass(frozen=True)
class NewUpload:
    filename: str
    content_type: str
    extension: str
    size: int
    callback_url: str | None
    formats: tuple[str, ...]
    presets: tuple[str, ...] | None = None  # None: every preset
    multipart: bool | None = None  # None: as the size and the threshold decide


@dataclass(frozen=True)
class UploadRules:
    """What this server accepts, fixed for the life of a process."""

    accepted: dict[str, str]  # content type -> key extension
    max_bytes: int
    writable_formats: tuple[str, ...]  # output formats this Pillow can encode
    check_callback: Callable[[str], None]  # raises CallbackRefused for a URL webhooks must not go to
    presets: tuple[str, ...]  # this server's preset names, in the presets file's order


def parse_json_body(raw: bytes, refusal: str):
    """The request's JSON value, or 400 invalid_request: for a body that is not JSON, and for
    one nested deeper than MAX_JSON_DEPTH, which is refused before it is parsed at all."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, refusal) from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise RequestRejected(400, ApiError.INVALID_REQUEST,
                              f"the body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text)
    except ValueError:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, refusal) from None


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in `text`, brackets inside strings not counted."""
    depth = deepest = 0
    for char in _JSON_STRING.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_new_upload(body, rules: UploadRules) -> NewUpload:
    if not isinstance(body, dict):
        raise RequestRejected(400, ApiError.INVALID_REQUEST, "the body must be a JSON object")
    unknown = set(body) - NEW_UPLOAD_FIELDS
    if unknown:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, f"unknown field(s): {', '.join(sorted(unknown))}")
    filename = clean_filename(_value(body, FILENAME))
    content_type = _value(body, CONTENT_TYPE).split(";")[0].strip().lower()
    accepted = rules.accepted
    if content_type not in accepted:
        raise RequestRejected(
            415, ApiError.UNSUPPORTED_MEDIA_TYPE,
            f"{content_type!r} is not an accepted image type; use one of {', '.join(sorted(accepted))}")
    size = _value(body, SIZE)
    if size > rules.max_bytes:
        raise RequestRejected(400, ApiError.TOO_LARGE, f"size {size} is over the limit of {rules.max_bytes} bytes")
    formats = _formats(_value(body, FORMATS), rules.writable_formats)
    presets = _presets(_value(body, PRESETS), rules.presets)
    callback_url = _callback_url(_value(body, CALLBACK_URL), rules.check_callback)
    multipart = _value(body, MULTIPART)
    return NewUpload(filename, content_type, accepted[content_type], size, callback_url, formats, presets, multipart)


def parse_batch(body, max_files: int) -> list[dict]:
    """The entries of a batch, each still to be parsed on its own: one bad entry fails only itself."""
    if not isinstance(body, dict) or set(body) != BATCH_FIELDS:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, "the body must be a JSON object with only a files list")
    files = _value(body, FILES)
    if len(files) > max_files:
        raise RequestRejected(400, ApiError.TOO_MANY_FILES,
                              f"{len(files)} files is over the limit of {max_files} per request")
    return files


def clean_filename(name: str) -> str:
    """The client's filename, kept only as a label: no path, no control characters, bounded.
    A name with nothing left is labelled "upload" (it never becomes a key anyway)."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    name = re.sub(r"\s+", " ", name)[:MAX_FILENAME_LENGTH]
    return FALLBACK_FILENAME if name in ("", ".", "..") else name


def _value(body: dict, field: Field):
    """The field's value once its shape is the one the contract states; None for an optional one not given."""
    value = body.get(field.name)
    if value is None and not field.required:
        return None
    if field.type == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 1024.0 is a whole number
    if not _has_shape(value, field):
        raise RequestRejected(400, ApiError.INVALID_REQUEST, field.invalid)
    return value


def _has_shape(value, field: Field) -> bool:
    if not isinstance(value, JSON_TYPES[field.type]) or (isinstance(value, bool) and field.type != "boolean"):
        return False
    return ((field.minimum is None or value >= field.minimum)
            and (field.max_length is None or len(value) <= field.max_length)
            and (field.pattern is None or re.search(field.pattern, value) is not None)
            and (field.min_items is None or len(value) >= field.min_items)
            and (field.items is None or all(isinstance(item, JSON_TYPES[field.items]) for item in value)))


def _formats(value, writable: tuple[str, ...]) -> tuple[str, ...]:
    """The output formats asked for, each once, in OUTPUT_FORMATS order; JPEG when not given."""
    if value is None:
        return DEFAULT_FORMATS
    refused = sorted(set(value) - set(writable))
    if refused:
        raise RequestRejected(400, ApiError.UNSUPPORTED_OUTPUT_FORMAT,
                              f"cannot write {', '.join(refused)}; formats are {', '.join(writable)}")
    return tuple(name for name in OUTPUT_FORMATS if name in value)


def _presets(value, known: tuple[str, ...]) -> tuple[str, ...] | None:
    """The presets asked for, each once, in the server's order; None (every preset) when not given."""
    if value is None:
        return None
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise RequestRejected(400, ApiError.UNKNOWN_PRESET,
                              f"no preset named {', '.join(unknown)}; presets are {', '.join(known)}")
    return tuple(name for name in known if name in value)


def _callback_url(value, check_callback: Callable[[str], None]) -> str | None:
    if value is None:
        return None
    if not _is_http_url(value):
        raise RequestRejected(400, ApiError.INVALID_REQUEST, CALLBACK_URL.invalid)
    try:
        check_callback(value)
    except CallbackRefused as refused:
        raise RequestRejected(400, ApiError.CALLBACK_NOT_ALLOWED, str(refused)) from None
    return value


def _is_http_url(value: str) -> bool:
    if not HTTP_URI.match(value):
        return False
    try:
        parts = urlsplit(value)
        return bool(parts.hostname) and parts.port != 0
    except ValueError:  # a malformed IPv6 literal, or a port out of range
        return False
