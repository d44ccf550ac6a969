"""Resize: sizes that fit a box with the aspect kept, and resampling to them, whole or one
horizontal band at a time (processor.imaging.derive puts the bands on threads)."""

from __future__ import annotations

import math
from fractions import Fraction

from PIL import Image

# Reducing by an integer factor first (box average, very fast) and finishing
# with Lanczos over the last 1.5x-3x gives the same picture as Lanczos all the
# way to within ~50 dB PSNR on photos, at under half the time.
RESIZE_FILTER = Image.Resampling.LANCZOS
RESIZE_REDUCING_GAP = 1.5

# A band resized with Pillow's `box` reads the same source rows, filter support included, as
# the whole resize would; only the band's edges, which Pillow keeps as 32-bit floats, round
# differently, by a level or two at most and with no seam.
RESIZE_FILTER_SUPPORT = 3.0  # Lanczos reaches 3 source pixels (times the scale) each way


def fit_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest size with `size`'s aspect that fits in `box`; `size` itself if it fits already.

    The limiting side gets the box exactly, the other side is rounded to the
    nearest pixel but never below one: 10000x500 in 1024 -> 1024x51,
    1x50000 -> 1x1024.
    """
    width, height = size
    box_width, box_height = box
    if width <= box_width and height <= box_height:
        return size
    if width * box_height >= height * box_width:
        return box_width, max(1, _round_div(height * box_width, width))
    return max(1, _round_div(width * box_height, height)), box_height


def _round_div(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` resampled to `size`; a copy when the size is already right.

    Always a new image, so the three encodes never share one Image object
    (saving stores its options on the image, which threads would trample).
    """
    if image.size == size:
        return image.copy()
    return image.resize(size, RESIZE_FILTER, reducing_gap=RESIZE_REDUCING_GAP)


def resize_band(image: Image.Image, size: tuple[int, int], top: int, bottom: int) -> Image.Image:
    """Rows top..bottom of what `resize(image, size)` returns (to within rounding).

    The band first box-reduces only the source rows its Lanczos step reads (its own rows
    plus the filter's reach), so bands share nothing and can be made at once.
    """
    factor_x = int(image.width / size[0] / RESIZE_REDUCING_GAP) or 1
    factor_y = int(image.height / size[1] / RESIZE_REDUCING_GAP) or 1
    reduced_height = image.height / factor_y
    scale = reduced_height / size[1]
    if factor_x == 1 and factor_y == 1:
        return image.resize((size[0], bottom - top), RESIZE_FILTER,
                            box=(0.0, top * scale, float(image.width), bottom * scale))
    reach = math.ceil(RESIZE_FILTER_SUPPORT * max(scale, 1.0)) + 1
    first = max(0, math.floor(top * scale) - reach)
    last = min(math.ceil(reduced_height), math.ceil(bottom * scale) + reach)
    rows = (0, first * factor_y, image.width, min(image.height, last * factor_y))
    source = image.reduce((factor_x, factor_y), box=rows)
    box = (0.0, top * scale - first, image.width / factor_x, bottom * scale - first)
    return source.resize((size[0], bottom - top), RESIZE_FILTER, box=box)


def exact_column_split(size: tuple[int, int], target: tuple[int, int]) -> int | None:
    """The output column at which resize(image of `size`, target) can be made in two parts, left
    and right, whose pixels are exactly those of the one resize; None when it cannot.

    Each part is resampled from a window of the source (Pillow's `box`), and its filter
    weights come out bit for bit as the whole resize's when every window edge and filter
    centre is exact in floating point: when the horizontal scale (source width / target width)
    is a fraction whose denominator is a power of two, as it is for any width resized to a box
    of 1024 (or any power of two), and no integer reduction comes first. Row parts are not
    exact (Pillow's vertical pass rounds a band's rows differently), nor is any other scale.
    """
    scale = Fraction(size[0], target[0])
    reduces = int(size[0] / target[0] / RESIZE_REDUCING_GAP) > 1 or int(size[1] / target[1] / RESIZE_REDUCING_GAP) > 1
    if target[0] < 2 or reduces or scale.denominator & (scale.denominator - 1):
        return None
    return target[0] // 2


def resize_columns(image: Image.Image, size: tuple[int, int], first: int, last: int) -> Image.Image:
    """Columns first..last of resize(image, size), made from the source window they read:
    exactly the whole resize's pixels where exact_column_split allows the cut."""
    scale = image.width / size[0]
    return image.resize((last - first, size[1]), RESIZE_FILTER, box=(first * scale, 0.0, last * scale, image.height),
                        reducing_gap=RESIZE_REDUCING_GAP)


def join_columns(mode: str, size: tuple[int, int], cut: int, left: Image.Image, right: Image.Image) -> Image.Image:
    joined = Image.new(mode, size, None)  # not cleared: the parts cover every pixel
    joined.paste(left, (0, 0))
    joined.paste(right, (cut, 0))
    return joined


def band_edges(length: int, bands: int) -> list[int]:
    """Cut points splitting 0..length into `bands` nearly equal parts (fewer when short)."""
    return sorted({length * index // bands for index in range(bands + 1)})


def join_bands(mode: str, size: tuple[int, int], edges: list[int], bands: list[Image.Image]) -> Image.Image:
    """One picture of `size` from the bands made between `edges`."""
    if len(bands) == 1:
        return bands[0]
    joined = Image.new(mode, size, None)  # not cleared: the parts cover every pixel
    for top, band in zip(edges, bands):
        joined.paste(band, (0, top))
    return joined


def resize_window(image: Image.Image, size: tuple[int, int], window: tuple[float, float, float, float]) -> Image.Image:
    """The part of `image` inside `window` (left, top, right, bottom; fractional) resampled to `size`."""
    return image.resize(size, RESIZE_FILTER, box=window, reducing_gap=RESIZE_REDUCING_GAP)
