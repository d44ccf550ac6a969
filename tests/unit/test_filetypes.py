"""The content type the CLI declares: the bytes first, then the name."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imgpipe.filetypes import UNKNOWN, guess_content_type, sniff


@pytest.mark.parametrize("pillow_format, expected", [
    ("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp"),
    ("TIFF", "image/tiff"), ("BMP", "image/bmp"),
])
def test_images_pillow_writes_are_recognised_by_their_bytes(pillow_format, expected):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, pillow_format)
    assert sniff(buffer.getvalue()[:32]) == expected


@pytest.mark.parametrize("brand, expected", [(b"heic", "image/heic"), (b"mif1", "image/heif"), (b"avif", "image/avif")])
def test_heif_family_files_are_told_apart_by_their_brand(brand, expected):
    assert sniff(b"\x00\x00\x00\x1cftyp" + brand + b"\x00" * 16) == expected


def test_the_bytes_win_over_a_wrong_extension(tmp_path):
    path = tmp_path / "really-a-png.jpg"
    Image.new("RGB", (4, 4)).save(path, "PNG")
    assert guess_content_type(path) == "image/png"


def test_without_a_known_signature_the_name_decides(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a picture")
    mystery = tmp_path / "mystery"
    mystery.write_bytes(b"\x00\x01")
    assert guess_content_type(notes) == "text/plain"
    assert guess_content_type(fake) == "image/jpeg"
    assert guess_content_type(mystery) == UNKNOWN
