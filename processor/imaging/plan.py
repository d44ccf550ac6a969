"""Which pictures one upload's derivation makes, each from which source, in what order and on
which thread: a plan, made from the image's header alone, that processor.imaging.derive runs.

Being data, a plan is printed (str(plan)) and tested without threads or pixels. The rules:

* Every preset with a box is resampled from the smallest picture already made that is big
  enough for it (so the built-in thumbnail comes from the resized picture); fit presets are
  made largest first, cover presets after them. A full-size preset is the decoded picture.
* Every format of a preset is encoded from the same picture. An upload with transparency that
  asks for a format keeping it gets a second line of pictures, with alpha, for those formats;
  JPEG is always made from the opaque line (flattened on white).
* A JPEG at least SCALED_DECODE_MIN_FACTOR times what its boxed presets need in each direction
  is decoded a second time on the RESIZING thread with libjpeg's DCT scaling, and its boxed
  presets (every format) are made and encoded there, while the caller decodes the full picture
  and encodes the full-size presets: the scaled decode costs less than reducing the full one.
* Otherwise the caller makes the boxed pictures one after another (a big resize in two halves,
  the other on the RESIZING thread, where that gives the same pixels: split_for), and the
  ENCODING thread encodes each picture as it is ready, in all its formats in one step (two
  saves of one Image at once would trample its encoder options). The full-size encodes go
  first there for a big picture, the longest task; for a smaller one they go after the first
  boxed picture, so that picture's two halves have both cores to themselves.
* The placeholder is made last on the caller, from the smallest uncropped picture of the
  first line of pictures.

Every step reads only pictures made by earlier steps, and each thread runs its steps in plan
order, so the earliest unfinished step can always run: no plan can deadlock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from imgpipe.formats import JPEG, OUTPUT_FORMATS
from imgpipe.presets import Preset
from processor.imaging.cropping import cover_size
from processor.imaging.orientation import TRANSPOSED_ORIENTATIONS
from processor.imaging.resizing import exact_column_split, fit_size

# Threads: the caller's own, and one beside it per kind of work, so the other half of a resize,
# which the caller waits for, never queues behind encodes nobody waits for yet.
CALLER, RESIZING, ENCODING = "caller", "resize", "encode"
# What a step does.
DECODE = "decode"  # the original's full decode, upright
SCALED_DECODE = "scaled decode"  # a JPEG decoded again at 1/2, 1/4 or 1/8, upright, sRGB RGB
RGB = "to sRGB RGB"  # flattened on white, metadata dropped
RGBA = "to sRGB RGBA"  # transparency kept
FIT = "fit"  # resampled to the step's size
COVER = "cover"  # the window of the step's size, cropped centred or where `focus` has most detail
ENCODE = "encode"  # one picture in every (preset, format, quality) of the step
PLACEHOLDER = "placeholder"  # BlurHash and dominant colour
ORIGINAL = "original"  # the uploaded bytes, the first source
# How a resize on the caller is split, the other part on the RESIZING thread.
BANDS, COLUMNS = "bands", "columns"

# Pictures at least this big are resized in two horizontal bands at once (to within rounding):
# Pillow lets go of the GIL while it resamples. Below this the threads cost more than they save.
PARALLEL_RESIZE_MIN_PIXELS = 2_000_000
# Smaller pictures are resized in two column halves at once when the halves are exact
# (resizing.exact_column_split), which a 1 MP photo resized to 1024 wide always is.
PARALLEL_COLUMNS_MIN_PIXELS = 250_000
SCALED_DECODE_MIN_FACTOR = 2
DCT_SCALES = (8, 4, 2, 1)


@dataclass(frozen=True)
class Header:
    """What the plan is made from: the image as opened, before any pixel is decoded."""

    size: tuple[int, int]  # as stored
    format: str  # Pillow's name: "JPEG", "MPO", "PNG", ...
    orientation: int = 1  # EXIF
    transparent: bool = False

    @property
    def upright(self) -> tuple[int, int]:
        return self.size[::-1] if self.orientation in TRANSPOSED_ORIENTATIONS else self.size


@dataclass(frozen=True)
class Step:
    action: str
    thread: str
    source: str  # the picture it reads
    makes: str = ""  # the picture it makes ("" for an encode and the placeholder)
    size: tuple[int, int] | None = None  # FIT, COVER: the picture's; SCALED_DECODE: asked of libjpeg, as stored
    split: str | None = None  # FIT: BANDS, COLUMNS or None
    focus: str = ""  # COVER cropped on detail: the picture whose detail places the window
    encodes: tuple[tuple[str, str, int | None], ...] = ()  # ENCODE: (preset name, format, quality)
    shortcut: bool = False  # on the scaled decode's branch: if it fails, the plan without it serves

    def __str__(self) -> str:
        made = f"{self.makes} <- {self.source}" if self.makes else f"   of {self.source}"
        detail = {FIT: lambda: f"{_dims(self.size)}" + (f" in {self.split}" if self.split else ""),
                  COVER: lambda: _dims(self.size) + (f", focus from {self.focus}" if self.focus else ", centred"),
                  SCALED_DECODE: lambda: f"to at least {_dims(self.size)}",
                  ENCODE: lambda: ", ".join(f"{name}/{fmt}" + (f" q{quality}" if quality else "")
                                            for name, fmt, quality in self.encodes)}.get(self.action, lambda: "")()
        return f"{self.thread:<7} {self.action:<13} {made:<32} {detail}".rstrip()


@dataclass(frozen=True)
class Plan:
    header: Header
    steps: tuple[Step, ...]

    @property
    def shortcut(self) -> bool:
        return any(step.shortcut for step in self.steps)

    def __str__(self) -> str:
        header = self.header
        title = (f"{header.format} {_dims(header.size)}, upright {_dims(header.upright)}"
                 + (", with transparency" if header.transparent else ""))
        return "\n".join([title, *(f"{index:>2}. {step}" for index, step in enumerate(self.steps, 1))])


def plan_derivatives(header: Header, presets: tuple[Preset, ...], formats: tuple[str, ...], *,
                     scaled_decode: bool = True) -> Plan:
    """The plan for the presets' pictures in the upload's `formats`. `scaled_decode=False` leaves
    out the scaled decode of a big JPEG (what serves when that decode fails)."""
    upright = header.upright
    wanted = {preset: [fmt for fmt in OUTPUT_FORMATS if fmt in preset.formats_for(formats)] for preset in presets}
    keeping_alpha = [fmt for fmt in OUTPUT_FORMATS if fmt != "jpeg"] if header.transparent else []
    opaque = {preset: [fmt for fmt in fmts if fmt not in keeping_alpha] for preset, fmts in wanted.items()}
    alpha = {preset: [fmt for fmt in fmts if fmt in keeping_alpha] for preset, fmts in wanted.items()}
    opaque = {preset: fmts for preset, fmts in opaque.items() if fmts}
    alpha = {preset: fmts for preset, fmts in alpha.items() if fmts}
    scaled = (_scaled_decode_size(header, [preset for preset in opaque if preset.box])
              if scaled_decode and not alpha else None)

    steps: list[Step] = []
    lines = []  # (full-size picture, its line's boxed pictures' sizes) in order
    if scaled is not None:
        wanted_size, scaled_size = scaled
        steps.append(Step(SCALED_DECODE, RESIZING, ORIGINAL, "scaled", size=wanted_size, shortcut=True))
        boxed = _boxed_line(steps, opaque, "scaled", scaled_size, upright, "", RESIZING, None)
        steps += [Step(DECODE, CALLER, ORIGINAL, "decoded"), Step(RGB, CALLER, "decoded", "rgb")]
        steps += _full_size_encodes(opaque, "rgb", CALLER)
        lines.append(boxed)
    else:
        steps.append(Step(DECODE, CALLER, ORIGINAL, "decoded"))
        if alpha:
            steps.append(Step(RGBA, CALLER, "decoded", "rgba"))  # first: RGB may convert the picture in place
        if opaque or not alpha:
            steps.append(Step(RGB, CALLER, "decoded", "rgb"))
        for chosen, full, suffix in ((opaque, "rgb", ""), (alpha, "rgba", " rgba")):
            if chosen or (full == "rgb" and not alpha):
                lines.append(_boxed_line(steps, chosen, full, upright, upright, suffix, CALLER, ENCODING))
    uncropped = lines[0]
    steps.append(Step(PLACEHOLDER, CALLER, min(uncropped, key=lambda item: _area(item[1]))[0]))
    return Plan(header, tuple(steps))


def _boxed_line(steps: list[Step], chosen: dict[Preset, list[str]], full: str, full_size: tuple[int, int],
                upright: tuple[int, int], suffix: str, thread: str, encode_thread: str | None) -> list:
    """Add the steps of one line of pictures (those made from `full`, of size `full_size`);
    the (name, size) of its uncropped pictures, `full` first.

    With an `encode_thread` the pictures are made on `thread` and encoded there, the full-size
    presets included; without one (the scaled decode's line) every encode of the line runs on
    `thread` after its pictures, and the full-size encodes are the caller's."""
    uncropped = [(full, full_size)]
    pictures = []
    shortcut = full == "scaled"
    for preset in boxed_order([preset for preset in chosen if preset.box], upright):
        name = preset.name + suffix
        if preset.mode == "fit":
            target = fit_size(upright, preset.box)
            source, source_size = _smallest_holding(uncropped, target)
            split = split_for(source_size, target) if thread == CALLER else None
            picture = Step(FIT, thread, source, name, size=target, split=split, shortcut=shortcut)
            uncropped.append((name, target))
        else:
            source, _ = _smallest_holding(uncropped, source_needed(upright, preset))
            focus = min(uncropped, key=lambda item: _area(item[1]))[0] if preset.crop == "entropy" else ""
            picture = Step(COVER, thread, source, name, size=cover_size(upright, preset.box), focus=focus,
                           shortcut=shortcut)
        pictures.append((picture, _encode(name, preset, chosen[preset], encode_thread or thread, shortcut)))
    if encode_thread is None:
        steps += [picture for picture, _ in pictures] + [encode for _, encode in pictures]
        return uncropped
    full_size_encodes = _full_size_encodes(chosen, full, encode_thread)
    # The full-size encodes are the longest task for a big picture: they start first. Below that
    # they wait for the first boxed picture, whose two halves then have both cores.
    first = 0 if _area(full_size) >= PARALLEL_RESIZE_MIN_PIXELS or not pictures else 1
    for index, (picture, encode) in enumerate(pictures):
        if index == first:
            steps += full_size_encodes
        steps += [picture, encode]
    if first == len(pictures):
        steps += full_size_encodes
    return uncropped


def _encode(picture: str, preset: Preset, formats: list[str], thread: str, shortcut: bool) -> Step:
    return Step(ENCODE, thread, picture, encodes=tuple((preset.name, fmt, preset.quality_for(fmt)) for fmt in formats),
                shortcut=shortcut)


def _full_size_encodes(chosen: dict[Preset, list[str]], full: str, thread: str) -> list[Step]:
    encodes = tuple((preset.name, fmt, preset.quality_for(fmt))
                    for fmt in OUTPUT_FORMATS for preset, fmts in chosen.items() if not preset.box and fmt in fmts)
    return [Step(ENCODE, thread, full, encodes=encodes)] if encodes else []


def boxed_order(presets: list[Preset], upright: tuple[int, int]) -> list[Preset]:
    """Fit presets first, largest first, so each smaller one can start from a bigger one; cover
    ones then, from the smallest picture that holds their window."""
    fits = sorted((preset for preset in presets if preset.mode == "fit"),
                  key=lambda preset: -_area(fit_size(upright, preset.box)))
    return fits + [preset for preset in presets if preset.mode == "cover"]


def split_for(source: tuple[int, int], target: tuple[int, int]) -> str | None:
    """How a resize from `source` to `target` is made in two parts at once, if it gains: in bands
    (to within rounding) from PARALLEL_RESIZE_MIN_PIXELS up, in two exact column halves from
    PARALLEL_COLUMNS_MIN_PIXELS up where exact_column_split allows."""
    if source == target or _area(source) < PARALLEL_COLUMNS_MIN_PIXELS:
        return None
    if _area(source) >= PARALLEL_RESIZE_MIN_PIXELS:
        return BANDS
    return COLUMNS if exact_column_split(source, target) is not None else None


def source_needed(upright: tuple[int, int], preset: Preset) -> tuple[int, int]:
    """The smallest picture, in whole pixels, a boxed preset's picture can be resampled from
    without upscaling: its own size for a fit preset; for a cover preset, the picture scaled
    so that the window it keeps has the box's pixels."""
    if preset.mode == "fit":
        return fit_size(upright, preset.box)
    out = cover_size(upright, preset.box)
    scale = max(out[0] / upright[0], out[1] / upright[1])
    return tuple(min(side, math.ceil(side * scale - 1e-9)) for side in upright)


def _scaled_decode_size(header: Header, boxed: list[Preset]):
    """(the size to ask libjpeg for, as stored; the upright size it decodes to) when the header
    is a JPEG big enough for its boxed presets to come from a scaled decode; None otherwise.

    The decoded size follows libjpeg's scaling as Pillow's draft() asks for it: the largest of
    1/8, 1/4, 1/2 that leaves at least the size asked, rounded up. (Should a decoder not scale,
    the picture is only bigger: every picture made from it is still right.)"""
    if not boxed or header.format not in JPEG.pillow_names:
        return None
    needs = [source_needed(header.upright, preset) for preset in boxed]
    target = (max(width for width, _ in needs), max(height for _, height in needs))
    transposed = header.orientation in TRANSPOSED_ORIENTATIONS
    stored_target = target[::-1] if transposed else target
    factor = min(header.size[0] // stored_target[0], header.size[1] // stored_target[1])
    if factor < SCALED_DECODE_MIN_FACTOR:
        return None
    scale = next(scale for scale in DCT_SCALES if factor >= scale)
    stored = tuple((side + scale - 1) // scale for side in header.size)
    return stored_target, stored[::-1] if transposed else stored


def _smallest_holding(uncropped: list, size: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """The smallest uncropped picture at least `size` in both directions (the first of equals)."""
    return min((item for item in uncropped if item[1][0] >= size[0] and item[1][1] >= size[1]),
               key=lambda item: _area(item[1]))


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _dims(size: tuple[int, int] | None) -> str:
    return f"{size[0]}x{size[1]}" if size else ""
