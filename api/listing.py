"""GET /uploads' query (status, flagged, limit, cursor) and its cursor.

The cursor is the (created_at, id) of the last upload of a page: the creation time's 20 digits
then the id's 32 hex digits. Clients hand it back as it is. Every string of that shape is a
position in the order (a made-up one only starts the page somewhere), so the one check is the
shape, which the OpenAPI document states exactly. Pure: no Flask, no storage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from api.validation import RequestRejected
from imgpipe.error_codes import ApiError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
LIST_PARAMETERS = {"status", "flagged", "limit", "cursor"}
CURSOR_PATTERN = "^[0-9]{20}[0-9a-f]{32}$"
_CURSOR = re.compile(CURSOR_PATTERN)
# Where the separators of an ISO timestamp (2026-01-02T03:04:05.678901Z) go back into its digits.
_TIMESTAMP_PARTS = ((0, 4, ""), (4, 6, "-"), (6, 8, "-"), (8, 10, "T"), (10, 12, ":"), (12, 14, ":"), (14, 20, "."))


@dataclass(frozen=True)
class ListQuery:
    status: str | None  # None: every upload but the deleted ones
    flagged: bool  # only the uploads the moderation model flagged
    limit: int
    after: tuple[str, str] | None  # (created_at, id) of the last upload of the page before


def parse_list_query(args: dict[str, list[str]], statuses: tuple[str, ...]) -> ListQuery:
    """The query string as a dict of lists (a parameter given twice is refused)."""
    unknown = set(args) - LIST_PARAMETERS
    if unknown:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, f"unknown parameter(s): {', '.join(sorted(unknown))}")
    repeated = sorted(name for name, values in args.items() if len(values) != 1)
    if repeated:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, f"give each parameter once: {', '.join(repeated)}")
    values = {name: found[0] for name, found in args.items()}
    status = values.get("status")
    if status is not None and status not in statuses:
        raise RequestRejected(400, ApiError.INVALID_REQUEST, f"status must be one of {', '.join(statuses)}")
    flagged = values.get("flagged", "false")
    if flagged not in ("true", "false"):
        raise RequestRejected(400, ApiError.INVALID_REQUEST, "flagged must be true or false")
    limit = values.get("limit", str(DEFAULT_LIMIT))
    if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT):
        raise RequestRejected(400, ApiError.INVALID_REQUEST, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    cursor = values.get("cursor")
    return ListQuery(status, flagged == "true", int(limit), decode_cursor(cursor) if cursor is not None else None)


def encode_cursor(row: dict) -> str:
    return "".join(ch for ch in row["created_at"] if ch.isdigit()) + row["id"]


def decode_cursor(cursor: str) -> tuple[str, str]:
    if not _CURSOR.fullmatch(cursor):
        raise RequestRejected(400, ApiError.INVALID_REQUEST, "cursor must be a next_cursor this server answered")
    digits, upload_id = cursor[:20], cursor[20:]
    return "".join(separator + digits[start:end] for start, end, separator in _TIMESTAMP_PARTS) + "Z", upload_id
