"""Without a presets file the derivatives are byte for byte what they were before presets existed.

EXPECTED holds the first 16 hex digits of each derivative's SHA-256 as the three fixed
derivatives' code made them (Pillow 13.0.0 with its bundled libjpeg-turbo, libwebp and zlib);
the pictures are generated, so nothing binary is committed. A new Pillow may change encoder
output: record the digests again with the version in use before changing any image code.
"""

from __future__ import annotations

import hashlib

import pytest
from PIL import Image

import imagegen
from imagegen import encode
from processor.imaging import make_derivatives


def _photo(width, height, seed, orientation=None):
    image = imagegen.photo_like(width, height, seed=seed)
    if orientation is None:
        return encode(image, "JPEG", quality=90)
    tags = Image.Exif()
    tags[imagegen.EXIF_ORIENTATION] = orientation
    return encode(image, "JPEG", quality=90, exif=tags.tobytes())


def _transparent_png():
    grey = Image.radial_gradient("L").resize((1200, 800))
    image = Image.merge("RGBA", (grey, grey.transpose(Image.Transpose.ROTATE_180), Image.new("L", grey.size, 90),
                                 Image.new("L", grey.size, 255)))
    image.paste((0, 0, 0, 0), (0, 0, 400, 300))
    return encode(image, "PNG")


# name: (make the upload, formats asked for)
CASES = {
    "1mp_jpeg": (lambda: _photo(1224, 816, 1), ("jpeg",)),
    "large_jpeg_scaled_decode": (lambda: _photo(2600, 1700, 2), ("jpeg",)),
    "rotated_jpeg_scaled_decode": (lambda: _photo(2400, 1500, 3, orientation=6), ("jpeg",)),
    "transparent_png_three_formats": (_transparent_png, ("jpeg", "png", "webp")),
    "large_png_banded_resize": (lambda: encode(imagegen.photo_like(2000, 1300, seed=5), "PNG"), ("jpeg", "webp")),
    "small_grey_png": (lambda: encode(imagegen.photo_like(200, 150, seed=6).convert("L"), "PNG"), ("jpeg", "png")),
    "webp_only": (lambda: _photo(1300, 900, 7), ("webp",)),
    "avif_and_jpeg": (lambda: _photo(640, 480, 9), ("jpeg", "avif")),
}

EXPECTED = {
    '1mp_jpeg': {
        "jpeg/resized": "8d3841bc7ad7f569",
        "jpeg/compressed": "23837a82376857ff",
        "jpeg/thumbnail": "3bdba670d959cb28",
    },
    'large_jpeg_scaled_decode': {
        "jpeg/resized": "9b0aca4b872f1580",
        "jpeg/compressed": "63267c148138fe07",
        "jpeg/thumbnail": "dbead16beba7747e",
    },
    'rotated_jpeg_scaled_decode': {
        "jpeg/resized": "9af7879d7e98101d",
        "jpeg/compressed": "d4c46f87493f329d",
        "jpeg/thumbnail": "f2119233219320c7",
    },
    'transparent_png_three_formats': {
        "jpeg/resized": "7f528620f66a0ed9",
        "jpeg/compressed": "e87309e3de2b9d58",
        "jpeg/thumbnail": "2960779ad56cdb37",
        "png/resized": "64e92f63f1088f82",
        "png/compressed": "cb50fb5566954edf",
        "png/thumbnail": "63da5844296603d1",
        "webp/resized": "7bb8c89ce200b6f4",
        "webp/compressed": "129af21bfb33631a",
        "webp/thumbnail": "4e9bc2c193d82e45",
    },
    'large_png_banded_resize': {
        "jpeg/resized": "d56f0484ae02400c",
        "jpeg/compressed": "291e8b3e4ddc1615",
        "jpeg/thumbnail": "ed6520031b7538fd",
        "webp/resized": "2d0603406c99cbfb",
        "webp/compressed": "f217dcaab55e341d",
        "webp/thumbnail": "4971432d80676df0",
    },
    'small_grey_png': {
        "jpeg/resized": "c682e9021ca8a84b",
        "jpeg/compressed": "cb20fca7badfaf39",
        "jpeg/thumbnail": "c682e9021ca8a84b",
        "png/resized": "dfc400f624399fd6",
        "png/compressed": "dfc400f624399fd6",
        "png/thumbnail": "dfc400f624399fd6",
    },
    'webp_only': {
        "webp/resized": "943c7ac2bfdb71e4",
        "webp/compressed": "4b03c13402c4b775",
        "webp/thumbnail": "1aac7f17febb87e3",
    },
    'avif_and_jpeg': {
        "jpeg/resized": "8b84910769ecd595",
        "jpeg/compressed": "ea45a15e53e31e04",
        "jpeg/thumbnail": "4e5851601944d013",
        "avif/resized": "9bd6784d90dcecdc",
        "avif/compressed": "86093ad466206092",
        "avif/thumbnail": "69fb6740bcdb9ae5",
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_default_presets_make_the_bytes_the_fixed_derivatives_made(case):
    make, formats = CASES[case]
    made = make_derivatives(make(), max_pixels=100_000_000, formats=formats)
    digests = {f"{fmt}/{name}": hashlib.sha256(blob).hexdigest()[:16]
               for fmt, by_name in made.by_format().items() for name, blob in by_name.items()}
    assert digests == EXPECTED[case]
