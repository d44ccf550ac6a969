"""Reading MinIO's bucket events as its Redis target (format "access") writes them.

Each list element is JSON: `[{"Event": [<S3 event record>], "EventTime": "..."}]`. Object keys
in the records are URL-query-escaped, so they are decoded before anything looks at them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus


class MalformedEvent(ValueError):
    """A list element that is not a MinIO event: kept aside, never retried."""


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int | None


def parse_event(raw: bytes | str) -> list[ObjectCreated]:
    """The object-created records in one list element (other event kinds are left out)."""
    try:
        document = json.loads(raw)
    except (TypeError, ValueError) as error:
        raise MalformedEvent(f"not JSON: {error}") from None
    entries = document if isinstance(document, list) else [document]
    created = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise MalformedEvent("an entry is not an object")
        records = entry.get("Event", entry.get("Records"))
        if not isinstance(records, list):
            raise MalformedEvent("an entry has no Event list")
        created.extend(_object_created(record) for record in records if _is_created(record))
    return created


def _is_created(record) -> bool:
    return isinstance(record, dict) and str(record.get("eventName", "")).startswith("s3:ObjectCreated:")


def _object_created(record: dict) -> ObjectCreated:
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        key = unquote_plus(s3["object"]["key"])
    except (KeyError, TypeError):
        raise MalformedEvent("an ObjectCreated record has no bucket name or object key") from None
    size = s3["object"].get("size")
    return ObjectCreated(bucket=bucket, key=key, size=size if isinstance(size, int) else None)
