"""The old service's derivatives, each from a decode of its own: open, convert to RGB,
thumbnail into the box (none for compressed), save as JPEG. Pure: bytes in, bytes out."""

from __future__ import annotations

import io

from PIL import Image

from bench.alternatives import COMPRESSED_QUALITY, DERIVED_QUALITY, RESIZED_BOX, THUMBNAIL_BOX

# (box or None for full size, JPEG quality) of resized, compressed and thumbnail, stored under PREFIXES
DERIVATIVES = ((RESIZED_BOX, DERIVED_QUALITY), (None, COMPRESSED_QUALITY), (THUMBNAIL_BOX, DERIVED_QUALITY))
PREFIXES = ("resized", "compressed", "thumbnails")


def derivative(original: bytes, box: int | None, quality: int) -> bytes:
    image = Image.open(io.BytesIO(original)).convert("RGB")
    if box is not None:
        image.thumbnail((box, box), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def old_derivatives(original: bytes) -> tuple[bytes, bytes, bytes]:
    """(resized, compressed, thumbnail), as bench.processing's implementations answer."""
    resized, compressed, thumbnail = (derivative(original, box, quality) for box, quality in DERIVATIVES)
    return resized, compressed, thumbnail
