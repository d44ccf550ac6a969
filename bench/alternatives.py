"""What imgpipe's derivative code is measured against, all run in the same process.

- naive: Pillow as a user of the old service would write it: decode, then make each
  derivative from the full image on its own (LANCZOS) and save it.
- vips: libvips through pyvips: `thumbnail_buffer` (shrink-on-load) for the two small
  derivatives, a full-size save at quality 60 for the compressed one.
- floor: one Pillow decode and one full-size quality-60 encode, which every correct
  implementation pays for the compressed derivative; the distance to it is what resizing
  and the small derivatives cost.

Each returns (resized, compressed, thumbnail) JPEG bytes, like imgpipe's own code.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

RESIZED_BOX = 1024
THUMBNAIL_BOX = 300
COMPRESSED_QUALITY = 60
DERIVED_QUALITY = 85


def fit_inside(size: tuple[int, int], box: int) -> tuple[int, int]:
    """The size that fits inside box x box with the aspect kept, never larger than size."""
    width, height = size
    scale = min(box / width, box / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def naive_derivatives(data: bytes) -> tuple[bytes, bytes, bytes]:
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if image.mode != "RGB":
        image = image.convert("RGB")
    resized = image.resize(fit_inside(image.size, RESIZED_BOX), Image.Resampling.LANCZOS)
    thumbnail = image.resize(fit_inside(image.size, THUMBNAIL_BOX), Image.Resampling.LANCZOS)
    return (jpeg_bytes(resized, DERIVED_QUALITY), jpeg_bytes(image, COMPRESSED_QUALITY),
            jpeg_bytes(thumbnail, DERIVED_QUALITY))


def floor_decode_encode(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Only the compressed derivative, the least any implementation spends."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return b"", jpeg_bytes(image, COMPRESSED_QUALITY), b""


def vips_derivatives(data: bytes) -> tuple[bytes, bytes, bytes]:
    import pyvips

    def small(box: int) -> bytes:
        image = pyvips.Image.thumbnail_buffer(data, box, height=box, size="down")
        return image.jpegsave_buffer(Q=DERIVED_QUALITY, strip=True)

    full = pyvips.Image.new_from_buffer(data, "", access="sequential").autorot()
    return small(RESIZED_BOX), full.jpegsave_buffer(Q=COMPRESSED_QUALITY, strip=True), small(THUMBNAIL_BOX)


def prepare_vips() -> str:
    """Turn off libvips' operation cache (a repeated call on the same buffer would otherwise
    be answered from it) and say which libvips this is and how many threads it uses."""
    import pyvips

    pyvips.cache_set_max(0)
    return f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, pyvips {pyvips.__version__}"
