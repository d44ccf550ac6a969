"""The derivatives of one upload: the steps (load, orient, colour, resize, crop, encode) run in
order over one decoded picture, with the work that can overlap put on two threads beside the
caller's: one that resizes, one that encodes.

Everything concurrent in the image code is here: those threads, what runs on them beside the
caller's own work, and what a forked child must forget. The step modules beside this one
run on whichever thread calls them.

Which pictures are made comes from the presets (imgpipe.presets): every preset with a box is
resampled from the smallest picture already made that is big enough for it (so the built-in
thumbnail comes from the resized picture, a small fraction of the pixels), and a full-size
preset is the decoded picture itself. The built-in presets make exactly the bytes the three
fixed derivatives always did.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from PIL import Image

from imgpipe.formats import OUTPUT_FORMATS
from imgpipe.presets import BUILT_IN, Preset
from processor.imaging import heap, loading
from processor.imaging.colour import strip_metadata, to_srgb_rgb, to_srgb_rgba
from processor.imaging.cropping import CENTER, cover_size, cover_window, entropy_focus
from processor.imaging.encoding import encode
from processor.imaging.loading import decode, open_accepted, open_checked, readable_accepted_formats
from processor.imaging.orientation import TRANSPOSED_ORIENTATIONS, exif_orientation, orient
from processor.imaging.placeholder import placeholder
from processor.imaging.resizing import (band_edges, exact_column_split, fit_size, join_bands, join_columns, resize,
                                       resize_band, resize_columns, resize_window)

log = logging.getLogger(__name__)

# Pictures at least this big are resized in two horizontal bands at once, one on this thread
# and one on the RESIZING thread (Pillow lets go of the GIL while it resamples). Below this size
# the threads cost more than they save.
PARALLEL_RESIZE_MIN_PIXELS = 2_000_000
RESIZE_BANDS = 2
# Smaller pictures are resized in two column halves at once when the halves are exact
# (resizing.exact_column_split), which a 1 MP photo resized to 1024 wide always is.
PARALLEL_COLUMNS_MIN_PIXELS = 250_000
# A JPEG is decoded a second time with DCT scaling when that still leaves at least this many
# times the pixels its boxed presets need in each direction (libjpeg scales by 1/2, 1/4, 1/8).
SCALED_DECODE_MIN_FACTOR = 2


@dataclass(frozen=True)
class Derivatives:
    """What was made from one upload, and what the upload was (an MPO is reported as JPEG)."""

    made: dict[str, dict[str, bytes]]  # preset name -> output format -> encoded bytes
    width: int  # upright width of the original (after EXIF orientation)
    height: int
    format: str  # what the bytes are, as Pillow names it: "JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF", "AVIF"
    blurhash: str
    dominant_color: str  # "#rrggbb"

    @property
    def resized(self) -> bytes | None:
        return self.made.get("resized", {}).get("jpeg")

    @property
    def compressed(self) -> bytes | None:
        return self.made.get("compressed", {}).get("jpeg")

    @property
    def thumbnail(self) -> bytes | None:
        return self.made.get("thumbnail", {}).get("jpeg")

    def by_format(self) -> dict[str, dict[str, bytes]]:
        """The same bytes grouped the other way: output format -> preset name -> encoded bytes."""
        grouped = {fmt: {name: encoded[fmt] for name, encoded in self.made.items() if fmt in encoded}
                   for fmt in OUTPUT_FORMATS}
        return {fmt: by_preset for fmt, by_preset in grouped.items() if by_preset}


def make_derivatives(data: bytes, *, max_pixels: int, formats: tuple[str, ...] = ("jpeg",),
                     presets: tuple[Preset, ...] = BUILT_IN.presets) -> Derivatives:
    """Decode `data` once and make every preset's picture from it, in every format it takes.

    `max_pixels` is the largest picture accepted (Settings.max_pixels). `formats` are the
    upload's output formats ("jpeg", "png", "webp", "avif"), which a preset follows unless
    it names its own. JPEG comes first, flattened on white; the other formats are made
    after it from the same decode, with transparency kept.

    A JPEG at least SCALED_DECODE_MIN_FACTOR times what its boxed presets need in each
    direction is also decoded a second time, on a worker thread and at once, with libjpeg's
    DCT scaling: the boxed JPEG pictures come from that, while this thread decodes the full
    picture and encodes the full-size ones. The scaled decode costs less than box-reducing
    and resampling the full picture would, so the two run side by side for no extra CPU.
    Any other picture is decoded once, and this thread makes its boxed pictures one after
    another (resizing half of each on the RESIZING thread where that gives the same pixels)
    while the ENCODING thread encodes what is ready: the full-size picture first, then each
    boxed one as it is made (Pillow lets go of the GIL while it resizes and encodes, so on two
    cores they overlap).
    The placeholder is made here from the smallest picture while the last encodes finish.
    """
    wanted = {preset: preset.formats_for(formats) for preset in presets}
    jpeg = [preset for preset, fmts in wanted.items() if "jpeg" in fmts]
    others = {fmt: [preset for preset, fmts in wanted.items() if fmt in fmts] for fmt in OUTPUT_FORMATS if fmt != "jpeg"}
    others = {fmt: chosen for fmt, chosen in others.items() if chosen}
    opened, fmt = open_checked(data, max_pixels=max_pixels)
    scaled = _start_scaled_jpeg_pictures(data, opened, [preset for preset in jpeg if preset.box])
    decode(opened)
    upright = orient(opened)
    # Before to_srgb_rgb, which may convert an opaque picture in place.
    kept = to_srgb_rgba(upright) if upright.has_transparency_data and others else None
    image = to_srgb_rgb(upright)
    strip_metadata(image)
    pictures = Pictures(image, image.size)
    encoded: list[tuple[str, str, bytes]] = []
    placeholder_made = None
    if jpeg:
        if scaled is not None:
            encoded += _encode_full_size(image, {"jpeg": jpeg})
            boxed, smallest = _scaled_result_or_none(scaled) or _encode_boxed(pictures, {"jpeg": jpeg})
            encoded += boxed
            placeholder_made = placeholder(smallest)
        else:
            pending = _start_encodes(pictures, image, {"jpeg": jpeg})
            placeholder_made = placeholder(pictures.smallest())
            encoded += _results(pending)
    if others:
        source = pictures if kept is None else Pictures(kept, image.size)
        pending = _start_encodes(source, source.source, others)
        placeholder_made = placeholder_made or placeholder(source.smallest())
        encoded += _results(pending)
    blurhash, dominant = placeholder_made or placeholder(image)
    made: dict[str, dict[str, bytes]] = {preset.name: {} for preset in presets}
    for name, output_format, blob in sorted(encoded, key=lambda item: OUTPUT_FORMATS.index(item[1])):
        made[name][output_format] = blob
    return Derivatives(made={name: by_format for name, by_format in made.items() if by_format},
                       width=image.width, height=image.height, format=fmt, blurhash=blurhash, dominant_color=dominant)


class Pictures:
    """The pictures of one source at the presets' sizes, each resampled from the smallest
    uncropped picture already made that is big enough for it.

    `source` may be a DCT-scaled decode smaller than the upright picture: sizes come from
    `upright`, the original's upright size, so they keep exactly its aspect. `parallel=False`
    keeps resizing on the calling thread (a task already on the RESIZING thread must not wait for it).
    """

    def __init__(self, source: Image.Image, upright: tuple[int, int], *, parallel: bool = True):
        self.source = source
        self.upright = upright
        self.parallel = parallel
        self.uncropped = [source]
        self.made: dict[str, Image.Image] = {}

    def order(self, presets: list[Preset]) -> list[Preset]:
        """The order to make boxed presets in: fit ones first, largest first, so each smaller
        one can start from a bigger one; cover ones then, from the smallest that holds their window."""
        fits = sorted((preset for preset in presets if preset.mode == "fit"),
                      key=lambda preset: -_area(fit_size(self.upright, preset.box)))
        return fits + [preset for preset in presets if preset.mode == "cover"]

    def make(self, preset: Preset) -> Image.Image:
        """The boxed preset's picture, made once."""
        if preset.name not in self.made:
            if preset.mode == "fit":
                target = fit_size(self.upright, preset.box)
                picture = resize_to(self._smallest_holding(target), target, parallel=self.parallel)
                self.uncropped.append(picture)
            else:
                picture = self._cover(preset)
            self.made[preset.name] = picture
        return self.made[preset.name]

    def of(self, presets: list[Preset]) -> dict[str, Image.Image]:
        """Each boxed preset's picture."""
        for preset in self.order(presets):
            self.make(preset)
        return {preset.name: self.made[preset.name] for preset in presets}

    def smallest(self) -> Image.Image:
        return min(self.uncropped, key=lambda picture: _area(picture.size))

    def _smallest_holding(self, size: tuple[int, int]) -> Image.Image:
        """The smallest uncropped picture at least `size` in both directions (the first of equals)."""
        return min((picture for picture in self.uncropped if picture.width >= size[0] and picture.height >= size[1]),
                   key=lambda picture: _area(picture.size))

    def _cover(self, preset: Preset) -> Image.Image:
        out = cover_size(self.upright, preset.box)
        focus = entropy_focus(self.smallest(), out) if preset.crop == "entropy" else CENTER
        left, top, right, bottom = cover_window(self.upright, out, focus)
        base = self._smallest_holding(_source_needed(self.upright, preset))
        scale_x, scale_y = base.width / self.upright[0], base.height / self.upright[1]
        return resize_window(base, out, (left * scale_x, top * scale_y, right * scale_x, bottom * scale_y))


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


Encoded = list[tuple[str, str, bytes]]  # (preset name, output format, bytes)


def _start_encodes(pictures: Pictures, full: Image.Image, presets_by_format: dict[str, list[Preset]]) -> list[QueuedEncode]:
    """Make the boxed pictures here, one after another, and put their encodes on the ENCODING
    thread as each is ready. Each task encodes one picture in all its formats, one after
    another: two saves of one Image at once would trample its encoder options.

    The full-size encodes, the longest task from PARALLEL_RESIZE_MIN_PIXELS up, start first
    there. Below it they are short next to the first (largest) resize, whose two halves then
    have both cores to themselves, and start once that picture is made, while this thread
    makes the smaller ones.
    """
    pending = []
    if full.width * full.height >= PARALLEL_RESIZE_MIN_PIXELS:
        pending.append(_queue_encode(_encode_full_size, full, presets_by_format))
    boxed = {preset.name: preset for presets in presets_by_format.values() for preset in presets if preset.box}
    for preset in pictures.order(list(boxed.values())):
        formats = [fmt for fmt, presets in presets_by_format.items() if preset in presets]
        pending.append(_queue_encode(_encode_picture, pictures.make(preset), preset, formats))
        if len(pending) == 1:
            pending.append(_queue_encode(_encode_full_size, full, presets_by_format))
    if not pending:
        pending.append(_queue_encode(_encode_full_size, full, presets_by_format))
    return pending


@dataclass(frozen=True)
class QueuedEncode:
    """An encode put on the ENCODING thread, with the call itself, so that the caller can make
    it instead if the thread has not begun it."""

    future: Future
    call: functools.partial


def _queue_encode(encode_call, *args) -> QueuedEncode:
    call = functools.partial(encode_call, *args)
    return QueuedEncode(_pool(ENCODING).submit(call), call)


def _results(pending: list[QueuedEncode]) -> Encoded:
    """Every encode's bytes. Those at the end of the queue that the ENCODING thread has not
    begun are made here rather than waited for, so both threads end at about the same time;
    the thread's are waited for, all of them even when one failed, so none is left running."""
    taken = 0
    while taken < len(pending) and pending[-1 - taken].future.cancel():
        taken += 1
    begun, mine = pending[:len(pending) - taken], pending[len(pending) - taken:]
    try:
        made_here = [item for queued in mine for item in queued.call()]
    finally:
        wait([queued.future for queued in begun])
    return [item for queued in begun for item in queued.future.result()] + made_here


def _encode_picture(picture: Image.Image, preset: Preset, formats: list[str]) -> Encoded:
    return [(preset.name, fmt, encode(picture, fmt, preset.quality_for(fmt))) for fmt in formats]


def _encode_full_size(image: Image.Image, presets_by_format: dict[str, list[Preset]]) -> Encoded:
    return [(preset.name, fmt, encode(image, fmt, preset.quality_for(fmt)))
            for fmt, presets in presets_by_format.items() for preset in presets if not preset.box]


def _encode_boxed(pictures: Pictures, presets_by_format: dict[str, list[Preset]]) -> tuple[Encoded, Image.Image]:
    """(the boxed presets' encodes, made on this thread, and the smallest uncropped picture)."""
    encoded = []
    for fmt, presets in presets_by_format.items():
        boxed = [preset for preset in presets if preset.box]
        made = pictures.of(boxed)
        encoded += [(preset.name, fmt, encode(made[preset.name], fmt, preset.quality_for(fmt))) for preset in boxed]
    return encoded, pictures.smallest()


def _start_scaled_jpeg_pictures(data: bytes, opened: Image.Image, boxed: list[Preset]) -> Future | None:
    """Start making the boxed JPEG presets from a DCT-scaled decode, when `opened` is a JPEG big
    enough for one; None otherwise (they are then made from the full picture)."""
    if not boxed or opened.format not in ("JPEG", "MPO"):
        return None
    orientation = exif_orientation(opened)
    upright = opened.size[::-1] if orientation in TRANSPOSED_ORIENTATIONS else opened.size
    needs = [_source_needed(upright, preset) for preset in boxed]
    target = (max(width for width, _ in needs), max(height for _, height in needs))
    stored_target = target[::-1] if orientation in TRANSPOSED_ORIENTATIONS else target
    if min(opened.size[0] // stored_target[0], opened.size[1] // stored_target[1]) < SCALED_DECODE_MIN_FACTOR:
        return None
    return _pool(RESIZING).submit(_scaled_jpeg_pictures, data, upright, stored_target, boxed)


def _source_needed(upright: tuple[int, int], preset: Preset) -> tuple[int, int]:
    """The smallest picture, in whole pixels, a boxed preset's picture can be resampled from
    without upscaling: its own size for a fit preset; for a cover preset, the picture scaled
    so that the window it keeps has the box's pixels."""
    if preset.mode == "fit":
        return fit_size(upright, preset.box)
    out = cover_size(upright, preset.box)
    scale = max(out[0] / upright[0], out[1] / upright[1])
    return tuple(min(side, math.ceil(side * scale - 1e-9)) for side in upright)


def _scaled_jpeg_pictures(data: bytes, upright: tuple[int, int], stored_target: tuple[int, int],
                          boxed: list[Preset]):
    scaled = open_accepted(data)
    scaled.draft(None, stored_target)
    decode(scaled)
    image = to_srgb_rgb(orient(scaled))
    strip_metadata(image)
    return _encode_boxed(Pictures(image, upright, parallel=False), {"jpeg": boxed})


def _scaled_result_or_none(future: Future):
    """The boxed pictures' encodes from the scaled decode, or None if it failed: the caller then
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


def resize_to(image: Image.Image, size: tuple[int, int], *, parallel: bool = True) -> Image.Image:
    """`resize(image, size)`, in two parts at once when the picture is big enough to gain: in
    bands (to within rounding) from PARALLEL_RESIZE_MIN_PIXELS up, in two exact column halves
    from PARALLEL_COLUMNS_MIN_PIXELS up where exact_column_split allows.

    `parallel=False` keeps the work on this thread (a task already running on the
    RESIZING thread must not wait for it).
    """
    pixels = image.width * image.height
    if not parallel or image.size == size or pixels < PARALLEL_COLUMNS_MIN_PIXELS:
        return resize(image, size)
    if pixels >= PARALLEL_RESIZE_MIN_PIXELS:
        return resize_in_bands(image, size)
    cut = exact_column_split(image.size, size)
    if cut is None:
        return resize(image, size)
    right = _pool(RESIZING).submit(resize_columns, image, size, cut, size[0])
    left = resize_columns(image, size, 0, cut)
    return join_columns(image.mode, size, cut, left, right.result())


def resize_in_bands(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`resize(image, size)` (to within rounding) made in RESIZE_BANDS horizontal bands at
    once: all but the last on the RESIZING thread, the last on this thread."""
    edges = band_edges(size[1], RESIZE_BANDS)
    spans = list(zip(edges, edges[1:]))
    pending = [_pool(RESIZING).submit(resize_band, image, size, top, bottom) for top, bottom in spans[:-1]]
    last = resize_band(image, size, *spans[-1])
    return join_bands(image.mode, size, edges, [future.result() for future in pending] + [last])


# The threads beside the caller's own, one per kind of work, so the other half of a resize,
# which the caller waits for, never queues behind encodes that nobody waits for yet.
RESIZING, ENCODING = "resize", "encode"
_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(kind: str) -> ThreadPoolExecutor:
    """The one thread for RESIZING (the other half or band of a resize, or the scaled decode
    and boxed pictures of a big JPEG) or for ENCODING (the encodes that run while the caller
    makes the next picture).

    Forgotten in a forked child (`imgpipe worker` forks its worker process): the
    parent's threads don't exist there, and a pool that believes they do never
    runs anything.
    """
    with _pools_lock:
        if kind not in _pools:
            _pools[kind] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imgpipe-{kind}")
        return _pools[kind]


def _forget_threads_after_fork() -> None:
    """A forked child starts with no pools and with fresh locks: a lock held by one of the
    parent's threads at the fork would stay held forever here."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()
    loading.warnings_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads_after_fork)

# Keep freed picture buffers for the next picture (processor.imaging.heap) in whatever process
# imports this module, as a worker does before it forks its worker process.
heap.keep_freed_buffers()

# Load Pillow's format plugins (and register the optional decoders) now, in whatever process
# imports this module: `imgpipe worker` imports it before it forks its worker process, so a
# replacement worker starts with them loaded rather than importing them all on its first
# open (about 35 ms here).
readable_accepted_formats()
