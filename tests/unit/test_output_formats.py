"""Derivatives in PNG, WebP and AVIF beside (or instead of) JPEG: sizes, modes, transparency kept."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops

import imagegen
from imgpipe.formats import writable_formats
from imgpipe.settings import Settings
from processor.imaging import make_derivatives

MAX_PIXELS = Settings().max_pixels
OTHERS = [name for name in writable_formats() if name != "jpeg"]
SIZES = {"resized": (1024, 768), "compressed": (1600, 1200), "thumbnail": (300, 225)}


def opened(encoded: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(encoded))
    image.load()
    return image


def test_png_webp_and_avif_are_writable_here():
    assert OTHERS == ["png", "webp", "avif"]


def test_every_format_gets_all_three_derivatives_at_the_right_size():
    data = imagegen.encode(imagegen.photo_like(1600, 1200, seed=3), "JPEG", quality=90)
    made = make_derivatives(data, formats=("jpeg", *OTHERS), max_pixels=MAX_PIXELS)
    assert list(made.by_format()) == ["jpeg", *OTHERS]
    for name, derivatives in made.by_format().items():
        for kind, size in SIZES.items():
            image = opened(derivatives[kind])
            assert (image.format, image.size, image.mode) == (name.upper(), size, "RGB"), (name, kind)


def test_jpeg_alone_is_what_it_always_was():
    data = imagegen.encode(imagegen.photo_like(400, 300, seed=4), "PNG")
    made = make_derivatives(data, max_pixels=MAX_PIXELS)
    assert made == make_derivatives(data, formats=("jpeg",), max_pixels=MAX_PIXELS)
    assert list(made.by_format()) == ["jpeg"]
    assert all(list(by_format) == ["jpeg"] for by_format in made.made.values())


def test_without_jpeg_no_jpeg_is_made():
    made = make_derivatives(imagegen.photo_like_jpeg(400, 300), formats=("webp",), max_pixels=MAX_PIXELS)
    assert (made.resized, made.compressed, made.thumbnail) == (None, None, None)
    assert list(made.by_format()) == ["webp"]
    assert opened(made.by_format()["webp"]["thumbnail"]).size == (300, 225)


@pytest.mark.parametrize("kind", ["RGBA", "LA", "P_index", "P_alpha", "L_key", "RGB_key", "I16_key"])
@pytest.mark.parametrize("name", OTHERS)
def test_transparency_is_kept_where_the_format_has_it(kind, name):
    data = imagegen.encode(imagegen.transparent_corner(kind, size=(640, 480)), "PNG")
    made = make_derivatives(data, formats=("jpeg", name), max_pixels=MAX_PIXELS)
    for derivative, encoded in made.by_format()[name].items():
        image = opened(encoded).convert("RGBA")
        width, height = image.size
        assert image.getpixel((width // 8, height // 8))[3] == 0, (derivative, "the corner stays transparent")
        red, green, blue, alpha = image.getpixel((width * 7 // 8, height * 7 // 8))
        assert alpha == 255, derivative
        expected = imagegen.OPAQUE_COLOUR if kind in ("RGBA", "P_index", "P_alpha", "RGB_key") else (imagegen.OPAQUE_GREY,) * 3
        assert max(abs(a - b) for a, b in zip((red, green, blue), expected)) <= 4, derivative
    flat = opened(made.compressed)
    assert (flat.mode, flat.getpixel((8, 8))) == ("RGB", (255, 255, 255)), "JPEG is still flattened on white"


def test_png_of_an_opaque_picture_is_lossless_rgb():
    picture = imagegen.photo_like(500, 400, seed=5)
    made = make_derivatives(imagegen.encode(picture, "PNG"), formats=("png",), max_pixels=MAX_PIXELS)
    compressed = opened(made.by_format()["png"]["compressed"])
    assert compressed.mode == "RGB"
    assert ImageChops.difference(compressed, picture).getbbox() is None


def test_webp_and_avif_compressed_are_smaller_than_jpeg_for_a_photo():
    made = make_derivatives(imagegen.photo_like_jpeg(1200, 900, seed=6), max_pixels=MAX_PIXELS,
                            formats=("jpeg", "webp", "avif"))
    for name in ("webp", "avif"):
        assert len(made.by_format()[name]["compressed"]) < len(made.compressed), name


def test_transparent_edges_keep_their_colour_when_resized():
    """Resampling weighs colours by their alpha: the colour of invisible pixels (black here) does
    not bleed into the visible edge, also when the picture is box-reduced first."""
    image = Image.new("RGBA", (3201, 3201), (0, 0, 0, 0))
    image.paste((250, 250, 250, 255), (0, 0, 1601, 3201))
    made = make_derivatives(imagegen.encode(image, "PNG"), formats=("png",), max_pixels=MAX_PIXELS)
    resized = opened(made.by_format()["png"]["resized"])
    edge = [resized.getpixel((x, 500)) for x in range(508, 516)]
    assert any(0 < pixel[3] < 255 for pixel in edge), edge
    assert all(min(pixel[:3]) >= 240 for pixel in edge if pixel[3] >= 32), edge  # fainter ones round coarsely
