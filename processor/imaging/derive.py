"""The derivatives of one upload: the steps (load, orient, colour, resize, encode) run in
order over one decoded picture, with the work that can overlap put on a small thread pool.

Everything concurrent in the image code is here: the pool, what runs on it beside the
caller's own work, and what a forked child must forget. The step modules beside this one
run on whichever thread calls them.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from PIL import Image

from processor.imaging import loading
from processor.imaging.colour import strip_metadata, to_srgb_rgb, to_srgb_rgba
from processor.imaging.encoding import encode_as, encode_jpeg
from processor.imaging.loading import decode, open_accepted, open_checked, readable_accepted_formats
from processor.imaging.orientation import TRANSPOSED_ORIENTATIONS, exif_orientation, orient
from processor.imaging.resizing import band_edges, fit_size, join_bands, resize, resize_band

log = logging.getLogger(__name__)

RESIZED_BOX = (1024, 1024)
THUMBNAIL_BOX = (300, 300)
COMPRESSED_QUALITY = 60
RESIZED_QUALITY = 85
THUMBNAIL_QUALITY = 85

# Pictures at least this big are resized in RESIZE_BANDS horizontal bands at once, one per
# thread (Pillow lets go of the GIL while it resamples). Below this size the threads cost
# more than they save.
PARALLEL_RESIZE_MIN_PIXELS = 2_000_000
RESIZE_BANDS = 2


@dataclass(frozen=True)
class Derivatives:
    """The derivatives made from one upload, and what the upload was (an MPO is reported as JPEG)."""

    resized: bytes | None  # JPEG fits inside 1024x1024 (None when JPEG was not asked for)
    compressed: bytes | None  # JPEG full upright size, quality 60
    thumbnail: bytes | None  # JPEG fits inside 300x300
    width: int  # upright width of the original (after EXIF orientation)
    height: int
    format: str  # what the bytes are, as Pillow names it: "JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF", "AVIF"
    other_formats: dict[str, dict[str, bytes]] = field(default_factory=dict)  # "webp" -> {"resized": ...}, ...

    def by_format(self) -> dict[str, dict[str, bytes]]:
        """Every derivative made: output format -> derivative name -> encoded bytes."""
        jpeg = {"resized": self.resized, "compressed": self.compressed, "thumbnail": self.thumbnail}
        return {**({"jpeg": jpeg} if self.resized is not None else {}), **self.other_formats}


def make_derivatives(data: bytes, *, max_pixels: int, formats: tuple[str, ...] = ("jpeg",)) -> Derivatives:
    """Decode `data` and make resized, compressed and thumbnail from it.

    A JPEG at least twice the resized box in each direction is also decoded a second time,
    on a worker thread and at once, with libjpeg's DCT scaling (1/2, 1/4 or 1/8 of the
    size, whichever still covers the box): the two small derivatives come from that, while
    this thread decodes the full picture and encodes the compressed one. The scaled decode
    costs less than box-reducing and resampling the full picture would, so the two run side
    by side for no extra CPU. Any other picture is decoded once; its full-size encode runs
    on a worker thread while this thread resizes (Pillow lets go of the GIL while it resizes
    and encodes, so on two cores the two overlap).

    `max_pixels` is the largest picture accepted (Settings.max_pixels). `formats` names the
    output formats wanted ("jpeg", "png", "webp", "avif"); those besides JPEG are made after
    it from the same decode, with transparency kept.
    """
    opened, fmt = open_checked(data, max_pixels=max_pixels)
    small = _start_small_derivatives_from_scaled_jpeg(data, opened) if "jpeg" in formats else None
    decode(opened)
    upright = orient(opened)
    # Before to_srgb_rgb, which may convert an opaque picture in place.
    kept = to_srgb_rgba(upright) if upright.has_transparency_data and set(formats) - {"jpeg"} else None
    image = to_srgb_rgb(upright)
    strip_metadata(image)
    width, height = image.size
    resized = compressed = thumbnail = None
    if small is not None:
        compressed = encode_jpeg(image, COMPRESSED_QUALITY)
        resized, thumbnail = _scaled_result_or_none(small) or small_derivatives(image, image.size)
    elif "jpeg" in formats:
        pending = _encoder_pool().submit(encode_jpeg, image, COMPRESSED_QUALITY)
        try:
            resized, thumbnail = small_derivatives(image, image.size)
        finally:
            compressed = pending.result()
    others = other_format_derivatives(image if kept is None else kept, [f for f in formats if f != "jpeg"])
    return Derivatives(
        resized=resized, compressed=compressed, thumbnail=thumbnail,
        width=width, height=height, format=fmt, other_formats=others,
    )


def small_derivatives(image: Image.Image, upright_size: tuple[int, int], *, parallel: bool = True) -> tuple[bytes, bytes]:
    """The resized and thumbnail JPEGs from `image`, upright and sRGB, which may be a scaled-down
    decode of the original: both are sized from the original's upright size, so they keep
    exactly its aspect. The thumbnail comes from the resized picture (a small fraction of
    the pixels)."""
    resized_image = resize_to(image, fit_size(upright_size, RESIZED_BOX), parallel=parallel)
    thumbnail_image = resize_to(resized_image, fit_size(upright_size, THUMBNAIL_BOX), parallel=parallel)
    return encode_jpeg(resized_image, RESIZED_QUALITY), encode_jpeg(thumbnail_image, THUMBNAIL_QUALITY)


def _start_small_derivatives_from_scaled_jpeg(data: bytes, opened: Image.Image) -> Future | None:
    """Start making the small derivatives from a DCT-scaled decode, when `opened` is a JPEG
    big enough for one; None otherwise (they are then made from the full picture)."""
    if opened.format not in ("JPEG", "MPO"):
        return None
    orientation = exif_orientation(opened)
    upright = opened.size[::-1] if orientation in TRANSPOSED_ORIENTATIONS else opened.size
    target = fit_size(upright, RESIZED_BOX)
    stored_target = target[::-1] if orientation in TRANSPOSED_ORIENTATIONS else target
    if min(opened.size[0] // stored_target[0], opened.size[1] // stored_target[1]) < 2:
        return None
    return _encoder_pool().submit(_small_derivatives_from_scaled_jpeg, data, upright, stored_target)


def _small_derivatives_from_scaled_jpeg(data: bytes, upright: tuple[int, int],
                                        stored_target: tuple[int, int]) -> tuple[bytes, bytes]:
    scaled = open_accepted(data)
    scaled.draft(None, stored_target)
    decode(scaled)
    image = to_srgb_rgb(orient(scaled))
    strip_metadata(image)
    return small_derivatives(image, upright, parallel=False)


def _scaled_result_or_none(future: Future) -> tuple[bytes, bytes] | None:
    """The small derivatives from the scaled decode, or None if it failed: the caller then
    makes them from the full picture.

    Whatever damage makes the scaled decode fail also shows in the full decode, which has
    already succeeded here, so a failure is no fault of the upload but of this code or the
    decoder. The upload still gets its derivatives; the log says why the fast path was not
    taken.
    """
    try:
        return future.result()
    except Exception:
        log.warning("the scaled decode of a large JPEG failed after its full decode succeeded; "
                    "making the small derivatives from the full picture", exc_info=True)
        return None


def other_format_derivatives(picture: Image.Image, formats: list[str]) -> dict[str, dict[str, bytes]]:
    """The three derivatives of `picture` (upright, sRGB, RGB or RGBA) in each of `formats`.

    The full-size encodes run one after another on a worker thread (two saves of one Image
    at once would trample its encoder options) while this thread resizes and encodes the
    small ones.
    """
    if not formats:
        return {}
    pending = _encoder_pool().submit(lambda: {name: encode_as(picture, name, "compressed") for name in formats})
    try:
        resized = resize_to(picture, fit_size(picture.size, RESIZED_BOX))
        thumbnail = resize_to(resized, fit_size(picture.size, THUMBNAIL_BOX))
        small = {name: {"resized": encode_as(resized, name, "resized"), "thumbnail": encode_as(thumbnail, name, "thumbnail")}
                 for name in formats}
    finally:
        compressed = pending.result()
    return {name: {"resized": small[name]["resized"], "compressed": compressed[name], "thumbnail": small[name]["thumbnail"]}
            for name in formats}


def resize_to(image: Image.Image, size: tuple[int, int], *, parallel: bool = True) -> Image.Image:
    """`resize(image, size)`, in bands on the pool when the picture is big enough to gain.

    `parallel=False` keeps the work on this thread (a task already running on the
    pool must not wait for the pool).
    """
    if parallel and image.size != size and image.width * image.height >= PARALLEL_RESIZE_MIN_PIXELS:
        return resize_in_bands(image, size)
    return resize(image, size)


def resize_in_bands(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`resize(image, size)` (to within rounding) made in RESIZE_BANDS horizontal bands at
    once: all but the last on the pool, the last on this thread."""
    edges = band_edges(size[1], RESIZE_BANDS)
    spans = list(zip(edges, edges[1:]))
    pending = [_encoder_pool().submit(resize_band, image, size, top, bottom) for top, bottom in spans[:-1]]
    last = resize_band(image, size, *spans[-1])
    return join_bands(image.mode, size, edges, [future.result() for future in pending] + [last])


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _encoder_pool() -> ThreadPoolExecutor:
    """One small pool per process for the work that runs beside the caller's own: the
    scaled decode and small derivatives of a big JPEG, or the full-size encode, and resize
    bands (all but the one the caller resizes itself).

    Forgotten in a forked child (`imgpipe worker` forks its worker process): the
    parent's threads don't exist there, and a pool that believes they do never
    runs anything.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=RESIZE_BANDS, thread_name_prefix="imgpipe-encode")
        return _pool


def _forget_threads_after_fork() -> None:
    """A forked child starts with no pool and with fresh locks: a lock held by one of the
    parent's threads at the fork would stay held forever here."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()
    loading.warnings_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads_after_fork)

# Load Pillow's format plugins (and register the optional decoders) now, in whatever process
# imports this module: `imgpipe worker` imports it before it forks its worker process, so a
# replacement worker starts with them loaded rather than importing them all on its first
# open (about 35 ms here).
readable_accepted_formats()
