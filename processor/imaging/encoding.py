"""Encode: the derivatives' bytes, JPEG or one of the other output formats, no metadata."""

from __future__ import annotations

import io

from PIL import Image

# The output formats besides JPEG: Pillow's writer, and its options per derivative. WebP 85 and
# AVIF 70 give about the PSNR of JPEG 85 on photographs, WebP 50 and AVIF 50 that of JPEG 60,
# in fewer bytes; AVIF speed 8 of 10 takes about as long as WebP's default effort.
OTHER_FORMATS = {
    "png": ("PNG", {"resized": {}, "compressed": {}, "thumbnail": {}}),
    "webp": ("WEBP", {"resized": {"quality": 85}, "compressed": {"quality": 50}, "thumbnail": {"quality": 85}}),
    "avif": ("AVIF", {"resized": {"quality": 70, "speed": 8}, "compressed": {"quality": 50, "speed": 8},
                      "thumbnail": {"quality": 70, "speed": 8}}),
}


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG with libjpeg's standard tables scaled to `quality`; no metadata written."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()


def encode_as(image: Image.Image, output_format: str, derivative: str) -> bytes:
    """`image` in one of OTHER_FORMATS, with that derivative's options; no metadata written."""
    pillow_format, options = OTHER_FORMATS[output_format]
    buffer = io.BytesIO()
    image.save(buffer, pillow_format, **options[derivative])
    return buffer.getvalue()
