"""Encode: a derivative's bytes in one output format at one quality, no metadata."""

from __future__ import annotations

import io

from PIL import Image

# Pillow's writer per output format. AVIF at speed 8 of 10 takes about as long as WebP's
# default effort; qualities come from the preset (imgpipe.presets).
PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}
AVIF_SPEED = 8


def encode(image: Image.Image, output_format: str, quality: int | None) -> bytes:
    """`image` as `output_format` ("jpeg", "png", "webp", "avif"); `quality` is None for PNG,
    which is lossless."""
    if output_format == "jpeg":
        return encode_jpeg(image, quality)
    options = {} if quality is None else {"quality": quality}
    if output_format == "avif":
        options["speed"] = AVIF_SPEED
    buffer = io.BytesIO()
    image.save(buffer, PILLOW_FORMATS[output_format], **options)
    return buffer.getvalue()


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG with libjpeg's standard tables scaled to `quality`, 4:2:0, no metadata.
    Not optimized: Huffman optimisation saves a few percent and costs a second pass."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()
