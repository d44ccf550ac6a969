"""The old service's derivatives, each from a decode of its own: open, convert to RGB,
thumbnail into the box (none for compressed), save as JPEG. Pure: bytes in, bytes out."""

from __future__ import annotations

import io

from PIL import Image

from bench.alternatives import COMPRESSED_QUALITY, DERIVED_QUALITY, RESIZED_BOX, THUMBNAIL_BOX

# (key prefix, box or None for full size, JPEG quality)
DERIVATIVES = (("resized", RESIZED_BOX, DERIVED_QUALITY), ("compressed", None, COMPRESSED_QUALITY),
               ("thumbnails", THUMBNAIL_BOX, DERIVED_QUALITY))


def derivative(original: bytes, box: int | None, quality: int) -> bytes:
    image = Image.open(io.BytesIO(original)).convert("RGB")
    if box is not None:
        image.thumbnail((box, box), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def old_derivatives(original: bytes) -> tuple[bytes, bytes, bytes]:
    """(resized, compressed, thumbnail), as bench.processing's implementations answer."""
    resized, compressed, thumbnail = (derivative(original, box, quality) for _, box, quality in DERIVATIVES)
    return resized, compressed, thumbnail
