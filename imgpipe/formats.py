"""Every image format imgpipe knows, as data: how its bytes begin, its content type, its file
extensions, Pillow's name for it, and whether it is accepted as an original, made as an output,
or both.

The API's accepted content types, the workers' readers and their refusals, derivative keys,
encoders, the CLI's guess at a file's type and the OpenAPI document all ask this table, so a
format added or changed here is changed everywhere at once. Pure: it only asks Pillow which
encoders it was built with, and only when called.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Callable

from PIL import features

UNKNOWN = "application/octet-stream"


def _prefixed(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(prefixes)


def _branded(*brands: bytes) -> Callable[[bytes], bool]:
    """ISO base media files (the HEIF family) name their kind in the brand after "ftyp"."""
    return lambda head: head[4:8] == b"ftyp" and head[8:12] in brands


def _webp(head: bytes) -> bool:
    return head.startswith(b"RIFF") and head[8:12] == b"WEBP"


def _bmp(head: bytes) -> bool:
    """"BM", then a header size only a BMP can have: two letters alone begin many text files."""
    return head.startswith(b"BM") and len(head) >= 18 and head[14] in (12, 16, 40, 52, 56, 64, 108, 124)


@dataclass(frozen=True)
class Format:
    name: str  # imgpipe's name, as clients ask for outputs: "jpeg"
    content_type: str
    extensions: tuple[str, ...]  # the first is the one keys end with
    pillow: str  # Pillow's name for what it reads or writes: "JPEG"
    sniff: Callable[[bytes], bool]  # whether a file's first bytes (SNIFF_BYTES of them) are this format
    original: bool  # accepted as an upload
    output: bool  # derivatives can be made in it
    pillow_aliases: tuple[str, ...] = ()  # other names Pillow gives files of this format
    encoder_feature: str | None = None  # Pillow's feature an output needs, when its encoder is optional
    lossless: bool = False  # an output always written without loss: its encoder takes no quality

    @property
    def extension(self) -> str:
        return self.extensions[0]

    @property
    def pillow_names(self) -> tuple[str, ...]:
        return (self.pillow, *self.pillow_aliases)


# In the order the workers try them (most common first) and outputs are listed in.
# MPO is the JPEG variant phones write for multi-picture files; its first picture is an ordinary JPEG.
FORMATS = (
    Format("jpeg", "image/jpeg", ("jpg", "jpeg", "jpe"), "JPEG", _prefixed(b"\xff\xd8\xff"), original=True,
           output=True, pillow_aliases=("MPO",)),
    Format("png", "image/png", ("png",), "PNG", _prefixed(b"\x89PNG\r\n\x1a\n"), original=True, output=True,
           lossless=True),
    Format("webp", "image/webp", ("webp",), "WEBP", _webp, original=True, output=True, encoder_feature="webp"),
    Format("heic", "image/heic", ("heic",), "HEIF", _branded(b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"),
           original=True, output=False),
    Format("heif", "image/heif", ("heif",), "HEIF", _branded(b"mif1", b"msf1"), original=True, output=False),
    Format("avif", "image/avif", ("avif",), "AVIF", _branded(b"avif", b"avis"), original=True, output=True,
           encoder_feature="avif"),
    Format("gif", "image/gif", ("gif",), "GIF", _prefixed(b"GIF87a", b"GIF89a"), original=True, output=False),
    Format("tiff", "image/tiff", ("tiff", "tif"), "TIFF", _prefixed(b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
           original=True, output=False),
    Format("bmp", "image/bmp", ("bmp",), "BMP", _bmp, original=True, output=False),
)
SNIFF_BYTES = 32
BY_NAME = {fmt.name: fmt for fmt in FORMATS}
ORIGINALS = tuple(fmt for fmt in FORMATS if fmt.original)
OUTPUTS = tuple(fmt for fmt in FORMATS if fmt.output)
OUTPUT_FORMATS = tuple(fmt.name for fmt in OUTPUTS)
LOSSLESS = tuple(fmt.name for fmt in OUTPUTS if fmt.lossless)
DEFAULT_FORMATS = ("jpeg",)  # the contract's own format, when an upload asks for none
JPEG = BY_NAME["jpeg"]
# Pillow's names of every original, each once: FORMATS' order, then the aliases.
ORIGINAL_PILLOW_NAMES = tuple(dict.fromkeys([*(fmt.pillow for fmt in ORIGINALS),
                                             *(alias for fmt in ORIGINALS for alias in fmt.pillow_aliases)]))
REPORTED_AS = {alias: fmt.pillow for fmt in ORIGINALS for alias in fmt.pillow_aliases}
ALL_CONTENT_TYPES = tuple(sorted(fmt.content_type for fmt in ORIGINALS))


def sniff(head: bytes) -> Format | None:
    """The format these leading bytes announce, or None."""
    return next((fmt for fmt in FORMATS if fmt.sniff(head[:SNIFF_BYTES])), None)


def by_extension(filename: str) -> Format | None:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return next((fmt for fmt in FORMATS if suffix in fmt.extensions), None)


def guess_content_type(head: bytes, filename: str) -> str:
    """The content type a client declares for a file: its bytes first, then its name.

    The declared type only decides whether the API hands out an upload URL; the worker decides
    what the bytes are. Sniffing first means a photo saved with the wrong extension still goes
    through, and a file that is no image at all gets the API's own 415 explanation.
    """
    known = sniff(head) or by_extension(filename)
    return known.content_type if known else mimetypes.guess_type(filename)[0] or UNKNOWN


def accepted_content_types(readable: set[str] | frozenset[str]) -> dict[str, str]:
    """Content type -> key extension of every original whose Pillow reader is among `readable`
    (HEIC, HEIF and AVIF only where their decoders are installed)."""
    return {fmt.content_type: fmt.extension for fmt in ORIGINALS if fmt.pillow in readable}


def writable_formats() -> tuple[str, ...]:
    """OUTPUT_FORMATS minus those whose encoder this Pillow lacks."""
    return tuple(fmt.name for fmt in OUTPUTS if fmt.encoder_feature is None or features.check(fmt.encoder_feature))


def content_type(output_format: str) -> str:
    return BY_NAME[output_format].content_type


def pillow_name(output_format: str) -> str:
    return BY_NAME[output_format].pillow


def extension(output_format: str) -> str:
    return BY_NAME[output_format].extension
