"""The faster ways to the same derivatives: resizing in bands on threads, and the small
derivatives of a big JPEG from a second, DCT-scaled decode. Each must give the picture the
plain way gives, to within rounding."""

import io
import logging
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageChops

import imagegen
from imgpipe.presets import BUILT_IN
from imgpipe.settings import Settings
from processor import imaging
from processor.imaging import derive, make_derivatives
from processor.imaging.encoding import encode
from processor.imaging.loading import open_checked
from processor.imaging.plan import SCALED_DECODE, plan_derivatives
from processor.imaging.resizing import exact_column_split

MAX_PIXELS = Settings().max_pixels
RESIZED, THUMBNAIL = BUILT_IN.get("resized"), BUILT_IN.get("thumbnail")


def made_plainly(data: bytes, presets=(RESIZED, THUMBNAIL), formats=("jpeg",)) -> dict[tuple[str, str], bytes]:
    """The presets made the plain way, from the fully decoded picture: the plan without the scaled decode."""
    opened, _ = open_checked(data, max_pixels=MAX_PIXELS)
    plan = plan_derivatives(derive.header_of(opened), presets, formats, scaled_decode=False)
    encoded, _ = derive.run(plan, data, opened)
    return {(name, fmt): blob for name, fmt, blob, _ in encoded}


def from_full_decode(data: bytes) -> tuple[bytes, bytes]:
    """resized and thumbnail made the plain way: from the fully decoded picture."""
    made = made_plainly(data)
    return made["resized", "jpeg"], made["thumbnail", "jpeg"]


def mean_and_max_difference(a: Image.Image, b: Image.Image) -> tuple[float, int]:
    difference = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).tobytes()
    return sum(difference) / len(difference), max(difference)


def psnr(a: Image.Image, b: Image.Image) -> float:
    difference = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).tobytes()
    mse = sum(value * value for value in difference) / len(difference)
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


@pytest.mark.parametrize("size", [(2400, 1800), (1801, 2999), (3000, 700), (1100, 1100), (5000, 9)])
@pytest.mark.parametrize("box", [RESIZED.box, THUMBNAIL.box])
def test_bands_match_one_resize(size, box):
    picture = imagegen.photo_like(*size, seed=11)
    target = imaging.fit_size(size, box)
    whole = picture.resize(target, imaging.RESIZE_FILTER, reducing_gap=imaging.RESIZE_REDUCING_GAP)
    banded = imaging.resize_in_bands(picture, target)
    assert banded.size == whole.size and banded.mode == whole.mode
    mean, largest = mean_and_max_difference(banded, whole)
    assert largest <= 3 and mean < 0.5


def test_grey_pictures_stay_grey_in_bands():
    picture = imagegen.photo_like(2200, 1400, seed=2).convert("L")
    assert imaging.resize_in_bands(picture, (1024, 652)).mode == "L"


def test_small_derivatives_of_a_big_jpeg_match_those_from_the_full_decode():
    data = imagegen.photo_like_jpeg(4200, 2800, seed=3)
    made = make_derivatives(data, max_pixels=MAX_PIXELS)
    resized, thumbnail = from_full_decode(data)
    for name, ours, plain, size in (("resized", made.resized, resized, (1024, 683)),
                                    ("thumbnail", made.thumbnail, thumbnail, (300, 200))):
        ours_image, plain_image = Image.open(io.BytesIO(ours)), Image.open(io.BytesIO(plain))
        assert ours_image.size == plain_image.size == size, name
        assert psnr(ours_image, plain_image) > 38, name


def test_a_failed_scaled_decode_is_logged_and_the_full_decode_serves(monkeypatch, caplog):
    """The scaled decode is only a shortcut: when it fails, the small derivatives are made from
    the full picture instead, byte for byte what that path makes, and the log says why."""
    def broken(*args):
        raise RuntimeError("scaled decode broke")

    monkeypatch.setitem(derive._ACTIONS, SCALED_DECODE, broken)
    data = imagegen.photo_like_jpeg(4200, 2800, seed=3)
    with caplog.at_level(logging.WARNING, logger=derive.__name__):
        made = make_derivatives(data, max_pixels=MAX_PIXELS)
    assert (made.resized, made.thumbnail) == from_full_decode(data)
    assert "scaled decode broke" in caplog.text


@pytest.mark.parametrize("orientation", range(1, 9))
def test_scaled_decode_shows_every_orientation_upright(orientation):
    upright = imagegen.quadrant_marker(2400, 1800)
    exif = Image.Exif()
    exif[imagegen.EXIF_ORIENTATION] = orientation
    stored = imagegen.stored_for_orientation(upright, orientation)
    made = make_derivatives(imagegen.encode(stored, "JPEG", quality=90, exif=exif.tobytes()), max_pixels=MAX_PIXELS)
    assert (made.width, made.height) == (2400, 1800)
    for name, blob, size in (("resized", made.resized, (1024, 768)), ("thumbnail", made.thumbnail, (300, 225))):
        image = Image.open(io.BytesIO(blob))
        assert image.size == size, name
        width, height = size
        for quadrant, (x, y) in {"top_left": (width // 4, height // 4), "top_right": (3 * width // 4, height // 4),
                                 "bottom_left": (width // 4, 3 * height // 4),
                                 "bottom_right": (3 * width // 4, 3 * height // 4)}.items():
            expected = imagegen.QUADRANTS[quadrant]
            assert all(abs(a - b) <= 40 for a, b in zip(image.getpixel((x, y)), expected)), (name, quadrant)


def test_corrupt_big_jpeg_is_still_rejected_as_corrupt():
    data = imagegen.truncated(imagegen.photo_like_jpeg(3000, 2000, seed=4), keep=0.5)
    with pytest.raises(imaging.ImageRejected) as caught:
        make_derivatives(data, max_pixels=MAX_PIXELS)
    assert caught.value.code == "corrupt_image"


@pytest.mark.parametrize("size", [(1224, 816), (1600, 1200), (1100, 1100), (1500, 400), (1030, 1000)])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_column_halves_are_exactly_one_resize(size, mode):
    """Where exact_column_split allows the cut (a width resized to a power of two), the two halves
    made at once are the one resize's pixels, bit for bit: the built-in presets' bytes stay the same."""
    picture = imagegen.photo_like(*size, seed=5).convert(mode)
    target = imaging.fit_size(size, RESIZED.box)
    assert exact_column_split(size, target) == target[0] // 2
    assert imaging.resize_to(picture, target).tobytes() == picture.resize(
        target, imaging.RESIZE_FILTER, reducing_gap=imaging.RESIZE_REDUCING_GAP).tobytes()


@pytest.mark.parametrize("size, target", [((1000, 1200), (853, 1024)), ((1224, 816), (640, 427)),
                                          ((3600, 1500), (1024, 427)), ((1224, 816), (1, 1))])
def test_no_cut_where_the_halves_would_differ(size, target):
    """A scale that is no fraction over a power of two, an integer reduction first, or one column."""
    assert exact_column_split(size, target) is None


def _ran_beside(call, tries: int = 20) -> bool:
    """Whether this thread got to run while another was inside `call` (made up to `tries` times,
    until this thread has had its turn), when no thread is ever made to give up the GIL: only a
    call that lets go of it on its own lets another run. Many tries, so that a busy machine's
    scheduler has time to give this thread its turn; no figure of how many turns it got."""
    began, turned, done = threading.Event(), threading.Event(), threading.Event()

    def calls():
        began.set()
        for _ in range(tries):
            call()
            if turned.is_set():
                break
        done.set()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(300.0)  # longer than all the tries: the GIL changes hands only when let go
    try:
        other = threading.Thread(target=calls)
        other.start()
        began.wait()
        ran_beside = not done.is_set()
        turned.set()
        other.join()
    finally:
        sys.setswitchinterval(previous)
    return ran_beside


def test_a_jpeg_encode_lets_other_threads_run():
    """The thread that makes the next picture runs while another encodes. Into a Python buffer,
    Pillow's JPEG writer holds the GIL through the whole encode, and this thread gets no turn;
    nor does it beside Python code that never lets go (the probe can tell the two apart)."""
    picture = imagegen.photo_like(2400, 1600, seed=8)
    encode(picture, "jpeg", 60)
    assert _ran_beside(lambda: encode(picture, "jpeg", 60))
    assert not _ran_beside(lambda: sum(range(200_000)), tries=5)


def test_encodes_the_encoding_thread_has_not_begun_are_made_by_the_caller():
    """The caller makes the queued encodes itself rather than wait behind the thread's work:
    with the ENCODING thread held, a derivation still ends, with the same bytes."""
    data = imagegen.photo_like_jpeg(640, 480, seed=9)
    expected = made_plainly(data, formats=("jpeg", "webp"))
    release = threading.Event()
    blocker = derive._pool(derive.ENCODING).submit(release.wait, 30)
    results = []
    caller = threading.Thread(target=lambda: results.append(made_plainly(data, formats=("jpeg", "webp"))))
    caller.start()
    caller.join(timeout=20)
    release.set()
    blocker.result()
    assert not caller.is_alive(), "the caller waited for encodes it could have made"
    assert results == [expected]
    assert sorted(expected) == [(name, fmt) for name in ("resized", "thumbnail") for fmt in ("jpeg", "webp")]


HEAP_CHILD = """
import resource
from processor.imaging import heap, make_derivatives, prepare_process
import imagegen
prepare_process()
data = imagegen.photo_like_jpeg(1224, 816, seed=1)
faults = []
for _ in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    make_derivatives(data, max_pixels=100_000_000)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(heap.keep_freed_buffers(), *faults)
"""


def test_a_second_picture_reuses_the_first_ones_memory():
    """The first 1 MP derivation faults in its buffers' pages (thousands); with the freed buffers
    kept, the second finds them in the heap and faults in next to none. Judged against the first
    derivation of the same process, not against a count of this machine's."""
    tests_dir = Path(__file__).resolve().parents[1]
    child = subprocess.run([sys.executable, "-c", HEAP_CHILD], capture_output=True, text=True, check=True,
                           cwd=tests_dir.parent, env={**os.environ, "PYTHONPATH": f"{tests_dir}:{tests_dir.parent}"})
    kept, first, second = child.stdout.split()
    assert kept == "True"
    assert int(second) * 10 < int(first), (first, second)
