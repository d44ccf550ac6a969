"""The benchmark's pictures, made from a seed so every run measures the same bytes.

A flat or purely random image would be unrealistically cheap or expensive to decode,
resample and encode; smooth colour fields with mid-scale texture and a fine grain compress
like a camera photo (about 4 MB at 12 MP, quality 90, 4:2:0).
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageChops

SIZES = {
    "1mp": (1224, 816),
    "12mp": (4240, 2832),
    "24mp": (6000, 4000),
}
# Just under the default IMGPIPE_MAX_PIXELS (100 MP): the largest picture a worker accepts.
LARGEST = (12240, 8160)
GRAIN_DIVISOR = 10


def photo_like(width: int, height: int, *, seed: int = 0) -> Image.Image:
    rnd = random.Random(seed)
    fields = _noise_rgb(rnd, 6, 4).resize((width, height), Image.Resampling.BICUBIC)
    texture = _noise_rgb(rnd, max(2, width // 40), max(2, height // 40)).resize(
        (width, height), Image.Resampling.BICUBIC)
    picture = Image.blend(fields, texture, 0.3)
    grain = Image.frombytes("L", (width, height), rnd.randbytes(width * height))
    grain = grain.point(lambda value: 128 + (value - 128) // GRAIN_DIVISOR)
    return ImageChops.add(picture, Image.merge("RGB", (grain,) * 3), scale=1.0, offset=-128)


def photo_like_jpeg(width: int, height: int, *, seed: int = 0, quality: int = 90) -> bytes:
    """A JPEG as a camera or phone uploads it: baseline, 4:2:0, no metadata."""
    buffer = io.BytesIO()
    photo_like(width, height, seed=seed).save(buffer, "JPEG", quality=quality, subsampling="4:2:0")
    return buffer.getvalue()


def benchmark_inputs(seed: int = 1) -> dict[str, bytes]:
    """One JPEG per size in SIZES, keyed by the size's name."""
    return {name: photo_like_jpeg(width, height, seed=seed) for name, (width, height) in SIZES.items()}


def _noise_rgb(rnd: random.Random, width: int, height: int) -> Image.Image:
    return Image.frombytes("RGB", (width, height), rnd.randbytes(width * height * 3))
