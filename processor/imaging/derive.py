"""The derivatives of one upload: its plan (processor.imaging.plan) run by one short loop.

Which pictures are made, from which source, in what order and on which thread is the plan's
business; this module only carries it out, and holds everything concurrent in the image code:
the two threads beside the caller's (one that resizes, one that encodes), and what a forked
child must forget of them (forget_threads_after_fork, which processor.imaging.process_setup
registers). The step modules beside this one run on whichever thread calls them.

The built-in presets make exactly the bytes the three fixed derivatives always did.
"""

from __future__ import annotations

import functools
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from PIL import Image

from imgpipe.formats import OUTPUT_FORMATS
from imgpipe.presets import BUILT_IN, Preset
from processor.imaging import loading
from processor.imaging import plan as plans
from processor.imaging.colour import strip_metadata, to_srgb_rgb, to_srgb_rgba
from processor.imaging.cropping import CENTER, cover_window, entropy_focus
from processor.imaging.encoding import encode
from processor.imaging.loading import decode, open_accepted, open_checked
from processor.imaging.orientation import exif_orientation, orient
from processor.imaging.placeholder import placeholder
from processor.imaging.plan import BANDS, CALLER, COLUMNS, ENCODING, RESIZING, Header, Plan, Step, plan_derivatives
from processor.imaging.resizing import (band_edges, exact_column_split, join_bands, join_columns, resize,
                                       resize_band, resize_columns, resize_window)

log = logging.getLogger(__name__)

RESIZE_BANDS = 2


@dataclass(frozen=True)
class Derivatives:
    """What was made from one upload, and what the upload was (an MPO is reported as JPEG)."""

    made: dict[str, dict[str, bytes]]  # preset name -> output format -> encoded bytes
    width: int  # upright width of the original (after EXIF orientation)
    height: int
    format: str  # what the bytes are, as Pillow names it: "JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF", "AVIF"
    blurhash: str
    dominant_color: str  # "#rrggbb"
    sizes: dict[str, tuple[int, int]]  # preset name -> (width, height) of its picture, the same in every format

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
    """Decode `data` and make every preset's picture from it, in every format it takes.

    `max_pixels` is the largest picture accepted (Settings.max_pixels). `formats` are the
    upload's output formats ("jpeg", "png", "webp", "avif"), which a preset follows unless
    it names its own.

    Whatever makes the scaled decode of a big JPEG fail also shows in its full decode, which has
    succeeded by the time that failure is seen, so it is no fault of the upload but of this code
    or the decoder: the upload still gets its derivatives, from the plan without the shortcut,
    and the log says why the fast path was not taken.
    """
    opened, fmt = open_checked(data, max_pixels=max_pixels)
    header = header_of(opened)
    try:
        encoded, (blurhash, dominant) = run(plan_derivatives(header, presets, formats), data, opened)
    except PlanOutdated as outdated:
        header = outdated.found
        encoded, (blurhash, dominant) = run(plan_derivatives(header, presets, formats, scaled_decode=False),
                                            data, opened)
    except ShortcutFailed:
        log.warning("the scaled decode of a large JPEG failed after its full decode succeeded; "
                    "making the small derivatives from the full picture", exc_info=True)
        opened, fmt = open_checked(data, max_pixels=max_pixels)
        encoded, (blurhash, dominant) = run(plan_derivatives(header, presets, formats, scaled_decode=False),
                                            data, opened)
    made: dict[str, dict[str, bytes]] = {preset.name: {} for preset in presets}
    sizes = {}
    for name, output_format, blob, size in sorted(encoded, key=lambda item: OUTPUT_FORMATS.index(item[1])):
        made[name][output_format] = blob
        sizes[name] = size
    width, height = header.upright
    return Derivatives(made={name: by_format for name, by_format in made.items() if by_format},
                       width=width, height=height, format=fmt, blurhash=blurhash, dominant_color=dominant,
                       sizes=sizes)


def header_of(opened: Image.Image) -> Header:
    return Header(size=opened.size, format=opened.format, orientation=exif_orientation(opened),
                  transparent=opened.has_transparency_data)


class PlanOutdated(Exception):
    """The decoded picture is not what its header said (a TIFF's orientation is read with its
    pixels, a damaged file decodes to another size): the plan is made again from what was found.
    Raised before any step has used the picture, which the new plan then starts from."""

    def __init__(self, found: Header):
        super().__init__(f"decoded {found}")
        self.found = found


class ShortcutFailed(Exception):
    """A step on the scaled decode's branch failed; the plan without that branch serves."""


Encoded = list[tuple[str, str, bytes, tuple[int, int]]]  # (preset name, output format, bytes, picture size)


def run(plan: Plan, data: bytes, opened: Image.Image) -> tuple[Encoded, tuple[str, str]]:
    """Every encode's bytes and the placeholder: the plan's steps in order, each on its thread.

    The caller runs its own steps as it reaches them and hands the others to their thread.
    When it has run its last, the encodes at the end of the ENCODING queue that the thread has
    not begun are made here rather than waited for, so both threads end at about the same time.
    Whatever is handed out is waited for, also when a step failed, so nothing is left running.
    """
    made: dict[str, Image.Image | Future] = {}
    encodes: list[tuple[Future | Encoded, functools.partial, str]] = []  # (outcome, call, thread)
    handed_out: list[Future] = []
    placeholder_made = None
    try:
        for step in plan.steps:
            call = functools.partial(_ACTIONS[step.action], step, made, plan, data, opened)
            if step.shortcut:
                call = functools.partial(_as_shortcut, call)
            outcome = call() if step.thread == CALLER else _pool(step.thread).submit(call)
            if isinstance(outcome, Future):
                handed_out.append(outcome)
            if step.makes:
                made[step.makes] = outcome
            elif step.action == plans.ENCODE:
                encodes.append((outcome, call, step.thread))
            else:
                placeholder_made = outcome
        for index in reversed([index for index, (_, _, thread) in enumerate(encodes) if thread == ENCODING]):
            outcome, call, thread = encodes[index]
            if not outcome.cancel():
                break
            encodes[index] = (call(), call, CALLER)
    finally:
        wait([future for future in handed_out if not future.cancelled()])  # a cancelled one never ends
    return [item for outcome, _, _ in encodes for item in _result(outcome)], _result(placeholder_made)


def _result(outcome):
    return outcome.result() if isinstance(outcome, Future) else outcome


def _as_shortcut(call):
    try:
        return call()
    except ShortcutFailed:
        raise
    except Exception as error:
        raise ShortcutFailed(str(error)) from error


def _decode(step: Step, made, plan: Plan, data: bytes, opened: Image.Image) -> Image.Image:
    decode(opened)
    found = header_of(opened)
    if found != plan.header:
        raise PlanOutdated(found)
    return orient(opened)


def _scaled_decode(step: Step, made, plan: Plan, data: bytes, opened) -> Image.Image:
    scaled = open_accepted(data)
    scaled.draft(None, step.size)
    decode(scaled)
    image = to_srgb_rgb(orient(scaled))
    strip_metadata(image)
    return image


def _rgb(step: Step, made, *_) -> Image.Image:
    image = to_srgb_rgb(_result(made[step.source]))
    strip_metadata(image)
    return image


def _rgba(step: Step, made, *_) -> Image.Image:
    return to_srgb_rgba(_result(made[step.source]))


def _fit(step: Step, made, *_) -> Image.Image:
    return resize_split(_result(made[step.source]), step.size, step.split)


def _cover(step: Step, made, plan: Plan, *_) -> Image.Image:
    upright = plan.header.upright
    focus = entropy_focus(_result(made[step.focus]), step.size) if step.focus else CENTER
    left, top, right, bottom = cover_window(upright, step.size, focus)
    base = _result(made[step.source])
    scale_x, scale_y = base.width / upright[0], base.height / upright[1]
    return resize_window(base, step.size, (left * scale_x, top * scale_y, right * scale_x, bottom * scale_y))


def _encode(step: Step, made, *_) -> Encoded:
    picture = _result(made[step.source])
    return [(name, fmt, encode(picture, fmt, quality), picture.size) for name, fmt, quality in step.encodes]


def _placeholder(step: Step, made, *_) -> tuple[str, str]:
    return placeholder(_result(made[step.source]))


_ACTIONS = {plans.DECODE: _decode, plans.SCALED_DECODE: _scaled_decode, plans.RGB: _rgb, plans.RGBA: _rgba,
            plans.FIT: _fit, plans.COVER: _cover, plans.ENCODE: _encode, plans.PLACEHOLDER: _placeholder}


def resize_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`resize(image, size)`, in two parts at once where plan.split_for says it gains."""
    return resize_split(image, size, plans.split_for(image.size, size))


def resize_split(image: Image.Image, size: tuple[int, int], split: str | None) -> Image.Image:
    """`resize(image, size)`, made in bands (to within rounding) or exact column halves, one on
    this thread and the other on the RESIZING thread; in one piece here for no split."""
    cut = exact_column_split(image.size, size) if split == COLUMNS else None
    if split == BANDS:
        return resize_in_bands(image, size)
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


_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(kind: str) -> ThreadPoolExecutor:
    """The one thread for RESIZING (the other half or band of a resize, or the scaled decode's
    branch) or for ENCODING (the encodes that run while the caller makes the next picture),
    started on first use."""
    with _pools_lock:
        if kind not in _pools:
            _pools[kind] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imgpipe-{kind}")
        return _pools[kind]


def forget_threads_after_fork() -> None:
    """In a forked child: no pools and fresh locks. The parent's threads don't exist there (a
    pool that believes they do never runs anything), and a lock one of them held at the fork
    would stay held forever."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()
    loading.warnings_lock = threading.Lock()
