"""Named presets: which derivatives are made, at what size, in which formats and qualities.

Presets come from a TOML file (IMGPIPE_PRESETS) read when a process starts; without one they
are the three built-in derivatives, `resized`, `compressed` and `thumbnail`, exactly as they
have always been made. The file lists every preset (it replaces the built-in three):

    [presets.thumbnail]
    box = [200, 200]          # width and height; leave out for the full upright size
    mode = "fit"              # "fit": inside the box, aspect kept; "cover": fills the box, cropped
    crop = "entropy"          # cover only: "center" (the default) or "entropy" (the most detailed part)
    formats = ["webp"]        # leave out to follow the upload's own `formats` (jpeg unless it asks)
    quality = { webp = 80 }   # per format; leave out for the defaults below

Pure: parses and checks, and answers questions about presets (which objects an upload should
have, which of those are out of date). A file that is not right is refused with its path and
the line at fault, so every process refuses to start on it alike.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field

from imgpipe.formats import LOSSLESS, OUTPUT_FORMATS, writable_formats

MODES = ("fit", "cover")
CROPS = ("center", "entropy")
MAX_PRESETS = 32
MAX_SIDE = 16384
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Names whose keys would collide with other objects: the originals, and the built-in
# thumbnail's key prefix (imgpipe.keys); and the words after /uploads/<id>/ that name other
# routes, so that every preset has its own address there (api.delivery).
RESERVED_NAMES = ("originals", "thumbnails", "status", "results", "result", "multipart")
PRESET_KEYS = ("box", "mode", "crop", "formats", "quality")
# Default qualities: what the built-in resized and thumbnail use for a preset with a box, what
# the built-in compressed uses for a full-size one. PNG is lossless and takes none. WebP 85 and
# AVIF 70 give about the PSNR of JPEG 85 on photographs, WebP 50 and AVIF 50 that of JPEG 60.
BOXED_QUALITY = {"jpeg": 85, "webp": 85, "avif": 70}
FULL_SIZE_QUALITY = {"jpeg": 60, "webp": 50, "avif": 50}


class PresetsError(ValueError):
    """A presets file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Preset:
    name: str
    box: tuple[int, int] | None = None  # None: the full upright size
    mode: str = "fit"
    crop: str = "center"  # where a cover preset's window sits; fit presets ignore it
    formats: tuple[str, ...] | None = None  # None: the upload's formats
    quality: dict[str, int] = field(default_factory=dict, hash=False, compare=False)

    def formats_for(self, upload_formats: tuple[str, ...]) -> tuple[str, ...]:
        return self.formats if self.formats is not None else upload_formats

    def quality_for(self, output_format: str) -> int | None:
        """The encoder quality for one format; None for PNG, which is lossless."""
        if output_format in LOSSLESS:
            return None
        defaults = BOXED_QUALITY if self.box else FULL_SIZE_QUALITY
        return self.quality.get(output_format, defaults[output_format])

    def version(self, output_format: str) -> str:
        """A short digest of everything that decides this preset's bytes in one format: an object
        made with another version is out of date."""
        facts = {"box": self.box, "mode": self.mode, "crop": self.crop if self.mode == "cover" else None,
                 "format": output_format, "quality": self.quality_for(output_format)}
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Presets:
    """Every preset of a deployment, in the order the file lists them."""

    presets: tuple[Preset, ...]
    source: str = "built-in"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(preset.name for preset in self.presets)

    @property
    def version(self) -> str:
        """A short digest of every preset and format's version: processes that share it make the
        same objects. `imgpipe reprocess` hands its own to the workers, which refuse another."""
        versions = {preset.name: [preset.formats, {fmt: preset.version(fmt) for fmt in OUTPUT_FORMATS}]
                    for preset in self.presets}
        return hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:12]

    def get(self, name: str) -> Preset | None:
        return next((preset for preset in self.presets if preset.name == name), None)

    def chosen(self, wanted: tuple[str, ...] | None) -> tuple[Preset, ...]:
        """The presets an upload asked for (all when it named none), in file order; a name the
        file no longer has is passed over."""
        return self.presets if wanted is None else tuple(p for p in self.presets if p.name in wanted)

    def plan(self, wanted: tuple[str, ...] | None, upload_formats: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        """What an upload should have in the bucket: preset name -> formats."""
        planned = {preset.name: preset.formats_for(upload_formats) for preset in self.chosen(wanted)}
        return {name: formats for name, formats in planned.items() if formats}

    def versions(self, wanted: tuple[str, ...] | None, upload_formats: tuple[str, ...]) -> dict[str, dict[str, str]]:
        """plan() with each object's version: preset name -> format -> version."""
        return {name: {fmt: self.get(name).version(fmt) for fmt in formats}
                for name, formats in self.plan(wanted, upload_formats).items()}


BUILT_IN = Presets((
    Preset("resized", box=(1024, 1024)),
    Preset("compressed"),
    Preset("thumbnail", box=(300, 300)),
))


@dataclass(frozen=True)
class Reprocessing:
    """What one stored upload needs to match the presets: presets to make (in all their formats),
    objects to delete, and what the bucket holds for it afterwards (preset -> format -> version)."""

    make: dict[str, tuple[str, ...]]
    delete: tuple[tuple[str, str], ...]  # (preset, format)
    after: dict[str, dict[str, str]]

    @property
    def needed(self) -> bool:
        return bool(self.make or self.delete)


def reprocessing(presets: Presets, *, stored: dict[str, dict[str, str]], wanted: tuple[str, ...] | None,
                 upload_formats: tuple[str, ...], only: tuple[str, ...] | None = None,
                 prune: bool = False) -> Reprocessing:
    """Compare what the bucket holds for an upload (`stored`) with what the presets make now.

    A preset is made again, in all its formats, when one of its objects is missing or of
    another version, among the presets in `only` (all when None). With `prune`, objects no preset makes any more are deleted:
    presets gone from the file, formats a preset no longer has, presets the upload no longer
    gets. Without it they stay where they are, and stay recorded.
    """
    target = presets.versions(wanted, upload_formats)
    make = {}
    for name, versions in target.items():
        if only is not None and name not in only:
            continue
        if any(stored.get(name, {}).get(fmt) != version for fmt, version in versions.items()):
            make[name] = tuple(versions)
    after = {name: dict(formats) for name, formats in stored.items()}
    for name, formats in make.items():
        after.setdefault(name, {}).update({fmt: target[name][fmt] for fmt in formats})
    delete = ()
    if prune:
        delete = tuple((name, fmt) for name, formats in stored.items() for fmt in formats
                       if fmt not in target.get(name, {}))
        for name, fmt in delete:
            del after[name][fmt]
        after = {name: formats for name, formats in after.items() if formats}
    return Reprocessing(make, delete, after)


def load_presets(path: str) -> Presets:
    """The presets in the TOML file at `path`, or the built-in three when `path` is empty."""
    if not path:
        return BUILT_IN
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as error:
        raise PresetsError(f"{path}: cannot read the presets file ({error.strerror or error})") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise PresetsError(f"{path}: the presets file is not UTF-8 text") from None
    return parse_presets(text, path)


def parse_presets(text: str, path: str = "<presets>") -> Presets:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        where = f"at line {len(text.splitlines()) or 1}, the end of the file"
        raise PresetsError(f"{path}: {str(error).replace('at end of document', where)}") from None

    def refuse(where: tuple[str, ...], message: str):
        return PresetsError(f"{path}, line {_line_of(text, where)}: {message}")

    unknown = sorted(set(document) - {"presets"})
    if unknown:
        raise refuse((unknown[0],), f"unknown top-level key {unknown[0]!r}; presets go in [presets.<name>] tables")
    tables = document.get("presets")
    if not isinstance(tables, dict) or not tables:
        raise refuse(("presets",), "no presets: name at least one in a [presets.<name>] table")
    if len(tables) > MAX_PRESETS:
        raise refuse(("presets",), f"{len(tables)} presets is over the limit of {MAX_PRESETS}")
    presets = tuple(_preset(name, table, lambda *where, message: refuse(("presets", name, *where), message))
                    for name, table in tables.items())
    return Presets(presets, source=path)


def _preset(name: str, table, refuse) -> Preset:
    if not NAME_PATTERN.match(name):
        raise refuse(message=f"preset name {name!r} must be 1 to 32 lower-case letters, digits, '-' or '_',"
                             " starting with a letter")
    if name in RESERVED_NAMES:
        raise refuse(message=f"{name!r} cannot name a preset: its objects or its address would be another's"
                             f" (reserved: {', '.join(RESERVED_NAMES)})")
    if not isinstance(table, dict):
        raise refuse(message=f"preset {name!r} must be a table ([presets.{name}])")
    unknown = sorted(set(table) - set(PRESET_KEYS))
    if unknown:
        raise refuse(unknown[0], message=f"unknown key {unknown[0]!r} in preset {name!r};"
                                         f" a preset has {', '.join(PRESET_KEYS)}")
    box = _box(table.get("box"), lambda message: refuse("box", message=message))
    mode = _choice(table.get("mode", "fit"), MODES, lambda message: refuse("mode", message=message), "mode")
    if mode == "cover" and box is None:
        raise refuse("mode", message=f"preset {name!r} is a cover preset without a box: cover fills a box")
    crop = _choice(table.get("crop", "center"), CROPS, lambda message: refuse("crop", message=message), "crop")
    if "crop" in table and mode != "cover":
        raise refuse("crop", message=f"crop applies to cover presets only; {name!r} fits inside its box")
    formats = _formats(table.get("formats"), lambda message: refuse("formats", message=message))
    quality = _quality(table.get("quality", {}), lambda *where, message: refuse("quality", *where, message=message))
    return Preset(name, box=box, mode=mode, crop=crop, formats=formats, quality=quality)


def _box(value, refuse) -> tuple[int, int] | None:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(side, int) and not isinstance(side, bool) and 1 <= side <= MAX_SIDE for side in value)):
        raise refuse(f"box must be [width, height], two whole numbers from 1 to {MAX_SIDE}")
    return value[0], value[1]


def _choice(value, choices: tuple[str, ...], refuse, what: str) -> str:
    if value not in choices:
        raise refuse(f"{what} must be one of {', '.join(repr(choice) for choice in choices)}, not {value!r}")
    return value


def _formats(value, refuse) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(name, str) for name in value):
        raise refuse(f"formats must be a non-empty list of format names: {', '.join(OUTPUT_FORMATS)}")
    unknown = [name for name in value if name not in OUTPUT_FORMATS]
    if unknown:
        raise refuse(f"unknown format {unknown[0]!r}; formats are {', '.join(OUTPUT_FORMATS)}")
    if len(set(value)) != len(value):
        raise refuse("formats lists a format twice")
    unwritable = [name for name in value if name not in writable_formats()]
    if unwritable:
        raise refuse(f"this installation cannot write {unwritable[0]!r}; it writes {', '.join(writable_formats())}")
    return tuple(value)


def _quality(value, refuse) -> dict[str, int]:
    if not isinstance(value, dict):
        raise refuse(message="quality must be a table of format = quality, e.g. { jpeg = 80, webp = 75 }")
    for name, quality in value.items():
        if name in LOSSLESS:
            raise refuse(name, message=f"{name} is lossless: it takes no quality")
        if name not in BOXED_QUALITY:
            raise refuse(name, message=f"unknown format {name!r} in quality; formats with a quality are"
                                       f" {', '.join(BOXED_QUALITY)}")
        if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 100:
            raise refuse(name, message=f"quality of {name} must be a whole number from 1 to 100")
    return dict(value)


def _line_of(text: str, where: tuple[str, ...]) -> int:
    """The line on which the key at `where` is first defined: the shortest run of leading
    lines that, parsed alone, already holds it. Covers every way TOML can spell a key
    (tables, dotted keys, inline tables) without a second parser."""
    lines = text.splitlines(keepends=True)
    for count in range(1, len(lines) + 1):
        try:
            node = tomllib.loads("".join(lines[:count]))
        except tomllib.TOMLDecodeError:
            continue
        for key in where:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            return count
    return len(lines) or 1
