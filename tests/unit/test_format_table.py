"""imgpipe.formats, the one table of image formats, against Pillow and against each place that
asks it: if two of them disagreed again about a format, one of these fails."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from imgpipe import formats
from imgpipe.decoders import readable_formats
from imgpipe.formats import FORMATS, ORIGINALS, OUTPUTS, UNKNOWN, guess_content_type, sniff
from imgpipe.keys import derivative_key, output_format_of

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAD = formats.SNIFF_BYTES


def written(pillow_format: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (8, 8), "teal").save(buffer, pillow_format)
    return buffer.getvalue()


def test_names_content_types_and_extensions_each_belong_to_one_format():
    assert len({fmt.name for fmt in FORMATS}) == len(FORMATS)
    assert len({fmt.content_type for fmt in FORMATS}) == len(FORMATS)
    extensions = [extension for fmt in FORMATS for extension in fmt.extensions]
    assert len(set(extensions)) == len(extensions)
    assert all(fmt.content_type.startswith("image/") and fmt.extensions for fmt in FORMATS)


def test_every_format_is_accepted_made_or_both():
    assert all(fmt.original or fmt.output for fmt in FORMATS)
    assert formats.OUTPUT_FORMATS == ("jpeg", "png", "webp", "avif")
    assert set(formats.DEFAULT_FORMATS) <= set(formats.OUTPUT_FORMATS)


def test_every_original_is_readable_here_and_so_accepted_by_the_api():
    assert {fmt.pillow for fmt in ORIGINALS} <= readable_formats()
    assert set(formats.accepted_content_types(readable_formats())) == set(formats.ALL_CONTENT_TYPES)


# Pillow (with pillow_heif) writes every original; its HEIF files have the "heic" brand, so the
# "mif1" one, image/heif, is left to the brand test below.
@pytest.mark.parametrize("fmt", [fmt for fmt in ORIGINALS if fmt.name != "heif"], ids=lambda fmt: fmt.name)
def test_every_accepted_format_pillow_writes_sniffs_as_itself(fmt):
    readable_formats()  # registers the HEIF writer with its reader
    data = written(fmt.pillow)
    assert sniff(data[:HEAD]) == fmt
    with Image.open(io.BytesIO(data)) as image:
        assert image.format in fmt.pillow_names


@pytest.mark.parametrize("brand, name", [(b"heic", "heic"), (b"heix", "heic"), (b"mif1", "heif"),
                                         (b"avif", "avif"), (b"avis", "avif")])
def test_heif_family_files_are_told_apart_by_their_brand(brand, name):
    assert sniff(b"\x00\x00\x00\x1cftyp" + brand + b"\x00" * 16).name == name


@pytest.mark.parametrize("fmt", OUTPUTS, ids=lambda fmt: fmt.name)
def test_every_output_has_an_extension_a_writer_and_reads_back_as_itself(fmt):
    Image.init()
    assert fmt.pillow in Image.SAVE
    assert derivative_key("square", "0" * 32, fmt.name) == f"square/{'0' * 32}.{fmt.extension}"
    assert output_format_of(derivative_key("square", "0" * 32, fmt.name)) == fmt.name
    assert formats.content_type(fmt.name) == fmt.content_type
    assert sniff(written(fmt.pillow)) == fmt


def test_every_output_this_pillow_writes_is_writable():
    assert formats.writable_formats() == formats.OUTPUT_FORMATS


def test_a_few_letters_are_not_a_format():
    assert sniff(b"BMW is a car\n") is None
    assert sniff(b"") is None
    assert sniff(b"\x00\x00\x00\x1cftypmp42" + b"\x00" * 16) is None


def test_the_bytes_win_over_a_wrong_extension():
    assert guess_content_type(written("PNG")[:HEAD], "really-a-png.jpg") == "image/png"


def test_without_a_known_signature_the_name_decides():
    assert guess_content_type(b"hello", "notes.txt") == "text/plain"
    assert guess_content_type(b"not a picture", "fake.JPG") == "image/jpeg"
    assert guess_content_type(b"II", "scan.tif") == "image/tiff"
    assert guess_content_type(b"\x00\x01", "mystery") == UNKNOWN


def test_the_upload_page_guesses_the_types_the_api_accepts():
    """api/static/upload.js names a content type by extension when the browser gives none."""
    script = (REPO_ROOT / "api" / "static" / "upload.js").read_text()
    table = re.search(r"const TYPES_BY_EXTENSION = (\{.*?\});", script, re.S)[1]
    by_extension = json.loads(re.sub(r"(\w+):", r'"\1":', table).replace(",\n}", "\n}"))
    assert all(formats.by_extension(f"x.{extension}").content_type == content_type
               for extension, content_type in by_extension.items())
    assert set(by_extension.values()) == set(formats.ALL_CONTENT_TYPES)


def test_the_workers_open_exactly_the_accepted_originals():
    from processor.imaging import readable_accepted_formats

    assert {fmt.pillow for fmt in ORIGINALS} <= set(readable_accepted_formats()) <= set(formats.ORIGINAL_PILLOW_NAMES)


def test_every_output_with_a_quality_has_default_qualities():
    from imgpipe.presets import BOXED_QUALITY, FULL_SIZE_QUALITY

    with_quality = {fmt.name for fmt in OUTPUTS if not fmt.lossless}
    assert set(BOXED_QUALITY) == set(FULL_SIZE_QUALITY) == with_quality and formats.LOSSLESS == ("png",)
