"""Placeholder: what a page shows while an image loads, a BlurHash and the dominant colour.

BlurHash (Wolt's published algorithm, https://github.com/woltapp/blurhash, implemented
here): the picture's first few cosine components in linear light, quantised into a short
base-83 string that every web and mobile client has a decoder for. The record carries the
picture's width and height, so the hash need not (ThumbHash's one advantage); BlurHash was
chosen for its decoders on every platform.

Both come from a SAMPLE_SIDE-pixel copy of the smallest uncropped derivative already made,
so they cost about a millisecond: the cosine sums are separable, computed row by row with
the C loops of sum(map(...)).
"""

from __future__ import annotations

import math
import operator

from PIL import Image

from processor.imaging.colour import flatten_on_white

SAMPLE_SIDE = 32
COMPONENTS_ALONG_LONG_SIDE = 4
COMPONENTS_ALONG_SHORT_SIDE = 3
DOMINANT_PALETTE = 6
BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_TO_LINEAR = [(v / 12.92) if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in (i / 255 for i in range(256))]


def placeholder(picture: Image.Image) -> tuple[str, str]:
    """(BlurHash, dominant colour as #rrggbb) of `picture`, RGB or RGBA (shown on white)."""
    sample = sample_of(picture)
    if sample.width >= sample.height:
        components = (COMPONENTS_ALONG_LONG_SIDE, COMPONENTS_ALONG_SHORT_SIDE)
    else:
        components = (COMPONENTS_ALONG_SHORT_SIDE, COMPONENTS_ALONG_LONG_SIDE)
    return blurhash(sample, *components), dominant_color(sample)


def sample_of(picture: Image.Image) -> Image.Image:
    """An RGB copy at most SAMPLE_SIDE pixels on its long side, each pixel the mean of its area."""
    if picture.mode != "RGB":
        picture = (flatten_on_white(picture) if picture.has_transparency_data else picture).convert("RGB")
    scale = min(1.0, SAMPLE_SIDE / max(picture.size))
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.BOX) if size != picture.size else picture


def blurhash(image: Image.Image, x_components: int, y_components: int) -> str:
    """The BlurHash of an RGB `image` with x_components × y_components cosine components (1..9 each)."""
    width, height = image.size
    pixels = image.tobytes()
    channels = [[_TO_LINEAR[value] for value in pixels[offset::3]] for offset in range(3)]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]
    rows = range(0, width * height, width)
    # row_sums[i][c][y]: each row of channel c weighted by the i-th horizontal cosine.
    row_sums = [[[sum(map(operator.mul, cosines, channel[row:row + width])) for row in rows] for channel in channels]
                for cosines in cos_x]
    factors = [tuple((1 if i == j == 0 else 2) / (width * height) * sum(map(operator.mul, cos_y[j], sums))
                     for sums in row_sums[i])
               for j in range(y_components) for i in range(x_components)]
    dc, ac = factors[0], factors[1:]
    text = _base83((x_components - 1) + (y_components - 1) * 9, 1)
    if ac:
        largest = max(abs(value) for factor in ac for value in factor)
        quantised = max(0, min(82, math.floor(largest * 166 - 0.5)))
        maximum = (quantised + 1) / 166
        text += _base83(quantised, 1)
    else:
        maximum = 1.0
        text += _base83(0, 1)
    text += _base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for factor in ac:
        r, g, b = (max(0, min(18, math.floor(_signed_pow(value / maximum, 0.5) * 9 + 9.5))) for value in factor)
        text += _base83(r * 19 * 19 + g * 19 + b, 2)
    return text


def dominant_color(image: Image.Image) -> str:
    """The colour covering most of an RGB `image`: the largest of a few median-cut clusters."""
    palette_image = image.quantize(DOMINANT_PALETTE, method=Image.Quantize.MEDIANCUT)
    _, index = max(palette_image.getcolors(DOMINANT_PALETTE))
    r, g, b = palette_image.getpalette()[3 * index:3 * index + 3]
    return f"#{r:02x}{g:02x}{b:02x}"


def _to_srgb(linear: float) -> int:
    value = max(0.0, min(1.0, linear))
    if value <= 0.0031308:
        return int(value * 12.92 * 255 + 0.5)
    return int((1.055 * value ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _signed_pow(value: float, exponent: float) -> float:
    return math.copysign(abs(value) ** exponent, value)


def _base83(value: int, length: int) -> str:
    return "".join(BASE83[value // 83 ** (length - 1 - place) % 83] for place in range(length))
