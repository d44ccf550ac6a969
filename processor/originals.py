"""Reading an original the worker can trust: only bytes it checked, never more than were declared.

A presigned PUT honours headers its signature does not list, so what the store holds may not be
what the upload URL allowed. The worker asks for the original once (a GET); from the headers of
the answer, before it reads any of the body, it refuses an original stored with anything the URL
did not sign, or larger than a worker takes; then it reads the raw stored bytes, with no transfer
decoding (a gzip bomb stays ten megabytes), and at most the size the store gave. The checks thus
cost no request of their own (a HEAD before the GET was one in six of an upload's requests), and
they hold for the very bytes read.
"""

from __future__ import annotations

from imgpipe.error_codes import UploadFailure
from imgpipe.storage import Storage, TooLarge
from processor.imaging import ImageRejected

_SSE_C = "x-amz-server-side-encryption-customer-algorithm"
_STANDARD_CLASS = ("", "STANDARD")


def refusal(headers: dict[str, str], size: int, declared_size: int | None, declared_type: str) -> ImageRejected | None:
    """Why a stored original (the headers the store answers for it, lower-case names, and its
    size) is not the one its upload URL signed, or None when it is. Pure."""
    if headers.get(_SSE_C):
        return _refused(UploadFailure.ENCRYPTED_ORIGINAL,
                        f"it was stored encrypted with a customer key ({headers[_SSE_C]})")
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        return _refused(UploadFailure.ENCODED_ORIGINAL, f"it was stored with Content-Encoding: {encoding}")
    stored_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if stored_type != declared_type.lower():
        return _refused(UploadFailure.COPIED_ORIGINAL,
                        f"it is stored as {stored_type or 'no type'}, declared {declared_type}")
    if declared_size is not None and size != declared_size:
        return _refused(UploadFailure.SIZE_MISMATCH, f"it is stored as {size} bytes, declared {declared_size}")
    unsigned = sorted(name for name in headers if name.startswith("x-amz-meta-") or name == "x-amz-tagging-count")
    if headers.get("x-amz-storage-class", "") not in _STANDARD_CLASS:
        unsigned.append("x-amz-storage-class")
    if unsigned:
        return _refused(UploadFailure.UNSIGNED_METADATA, f"it was stored with {', '.join(unsigned)}")
    return None


def _refused(code: UploadFailure, detail: str) -> ImageRejected:
    return ImageRejected(code, f"the original is {code.meaning}: {detail}")


def read_original(storage: Storage, row: dict, max_bytes: int) -> bytes | None:
    """The original's bytes once checked against what its upload URL signed; None when it is not
    in the bucket. Raises ImageRejected for an original refused for how it was stored, or one
    over `max_bytes`."""
    with storage.fetch(row["key"]) as original:
        if original is None:
            return None
        stored = original.stored
        if stored.size > max_bytes:
            raise ImageRejected(UploadFailure.TOO_LARGE, f"the upload is {stored.size} bytes; the limit is {max_bytes}")
        refused = refusal(stored.headers, stored.size, row["declared_size"], row["content_type"])
        if refused is not None:
            raise refused
        try:
            return original.read(stored.size)
        except TooLarge:
            raise ImageRejected(UploadFailure.SIZE_MISMATCH,
                                f"the original held more than the {stored.size} bytes it was stored as")
