"""Guessing the content type a client declares for a file, from its first bytes, then its name.

The declared type only decides whether the API hands out an upload URL; the worker decides
what the bytes are. Sniffing first means a photo saved with the wrong extension still goes
through, and a file that is no image at all gets the API's own 415 explanation.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

_PREFIXES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
)
# ISO base media files (HEIF family) name their kind in the brand after "ftyp".
_BRANDS = {
    b"avif": "image/avif", b"avis": "image/avif",
    b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
    b"hevc": "image/heic", b"hevx": "image/heic",
    b"mif1": "image/heif", b"msf1": "image/heif",
}
_EXTRA_EXTENSIONS = {".heic": "image/heic", ".heif": "image/heif", ".avif": "image/avif", ".webp": "image/webp"}
UNKNOWN = "application/octet-stream"


def sniff(head: bytes) -> str | None:
    """The image type these leading bytes announce, or None."""
    for prefix, content_type in _PREFIXES:
        if head.startswith(prefix):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return _BRANDS.get(head[8:12])
    return None


def guess_content_type(path: Path) -> str:
    with open(path, "rb") as file:
        head = file.read(32)
    suffix = Path(path).suffix.lower()
    return sniff(head) or _EXTRA_EXTENSIONS.get(suffix) or mimetypes.guess_type(path.name)[0] or UNKNOWN
