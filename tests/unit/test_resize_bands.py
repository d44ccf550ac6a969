"""Resizing in bands on threads gives the picture the single-threaded resize gives."""

import pytest
from PIL import Image, ImageChops

import imagegen
from processor import imaging


@pytest.mark.parametrize("size", [(2400, 1800), (1801, 2999), (3000, 700), (1100, 1100), (5000, 9)])
@pytest.mark.parametrize("box", [imaging.RESIZED_BOX, imaging.THUMBNAIL_BOX])
def test_bands_match_one_resize(size, box):
    picture = imagegen.photo_like(*size, seed=11)
    target = imaging.fit_size(size, box)
    whole = picture.resize(target, imaging.RESIZE_FILTER, reducing_gap=imaging.RESIZE_REDUCING_GAP)
    banded = imaging.resize_in_bands(picture, target)
    assert banded.size == whole.size and banded.mode == whole.mode
    difference = ImageChops.difference(banded, whole).convert("L").tobytes()
    assert max(difference) <= 2
    assert sum(difference) / len(difference) < 0.5


def test_grey_pictures_stay_grey():
    picture = imagegen.photo_like(2200, 1400, seed=2).convert("L")
    assert imaging.resize_in_bands(picture, (1024, 652)).mode == "L"
