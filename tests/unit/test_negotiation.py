"""Accept negotiation among a derivative's formats (imgpipe.negotiation)."""

from __future__ import annotations

import pytest

from imgpipe.formats import OUTPUT_FORMATS
from imgpipe.negotiation import PREFERENCE, choose, parse_accept

ALL = frozenset({"avif", "webp", "jpeg"})
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FIREFOX = "image/avif,image/webp,*/*"
OLD_SAFARI = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"


@pytest.mark.parametrize("accept, expected", [
    ("image/avif,image/webp,*/*", "avif"),
    ("image/webp,*/*", "webp"),
    ("image/jpeg", "jpeg"),
    (None, "jpeg"),
    ("", "jpeg"),
    (CHROME, "avif"),
    (FIREFOX, "avif"),
    (OLD_SAFARI, "webp"),
    ("*/*", "jpeg"),  # a wildcard names no modern format: curl, old browsers
    ("image/*", "jpeg"),
    ("image/avif;q=0.5, image/webp;q=0.9, image/jpeg;q=0.1", "webp"),  # q-values before preference
    ("image/avif;q=0, image/webp", "webp"),  # q=0 refuses
    ("image/avif;q=0.7, image/jpeg;q=0.7", "avif"),  # a tie goes by preference
    ("IMAGE/AVIF", "avif"),  # media types are case-insensitive
    ("image/avif;q=0.9,image/*;q=1", "jpeg"),
    ("text/html", "jpeg"),  # accepts none of them: the fallback, never a 406
    ("image/jpeg;q=0", "jpeg"),
])
def test_the_best_format_the_client_accepts(accept, expected):
    assert choose(accept, ALL) == expected


def test_only_formats_the_upload_has_are_chosen():
    assert choose(FIREFOX, frozenset({"jpeg"})) == "jpeg"
    assert choose(FIREFOX, frozenset({"webp", "jpeg"})) == "webp"
    assert choose("image/avif", frozenset({"webp", "png"})) == "png"  # png is the fallback without jpeg
    assert choose("image/*", frozenset({"png", "jpeg"})) == "jpeg"
    assert choose("image/png,image/jpeg;q=0.5", frozenset({"png", "jpeg"})) == "png"


def test_a_preset_without_jpeg_or_png_still_answers():
    assert choose("*/*", frozenset({"webp"})) == "webp"
    assert choose(None, frozenset({"avif", "webp"})) == "webp"


def test_the_most_specific_range_sets_the_quality():
    assert choose("image/jpeg;q=0, */*", frozenset({"jpeg", "png"})) == "png"
    assert choose("image/*;q=0, image/png", frozenset({"jpeg", "png"})) == "png"


@pytest.mark.parametrize("accept", [
    "image/avif;q=2", "image/avif;q=abc", "image/avif;q=0.1234", "image/avif;q=-1", "/avif", "image", "*/avif",
    ";;;", ",,,", "image/avif;;q", "\u00e9/\u00e9",
])
def test_malformed_ranges_count_for_nothing(accept):
    assert choose(f"{accept}", ALL) == "jpeg"
    assert choose(f"{accept},image/webp", ALL) == "webp"


def test_parameters_besides_q_are_ignored():
    assert parse_accept('image/webp;foo="bar";q=0.5') == (("image", "webp", 0.5),)


def test_a_long_header_is_read_only_so_far():
    assert choose("text/plain," * 100 + "image/avif", ALL) == "jpeg"


def test_every_output_format_has_its_place():
    assert sorted(PREFERENCE) == sorted(OUTPUT_FORMATS)
