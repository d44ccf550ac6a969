"""Deterministic test images, made with Pillow (and a little struct) at test time.

Nothing here is random from run to run: every function takes its seed or draws
from a fixed one, so a failing test can be reproduced byte for byte and
benchmarks compare like with like. No binary fixtures are committed; these
functions are the corpus.
"""

from __future__ import annotations

import functools
import io
import random
import struct
import zlib

from PIL import Image, ImageChops, ImageDraw, ImageFilter

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)

# Colours of the four quadrants of the upright marker picture. Four distinct
# colours, not just one red corner, so that a transpose (orientation 5) can't
# pass for "no rotation" on a square crop.
QUADRANTS = {"top_left": RED, "top_right": GREEN, "bottom_left": BLUE, "bottom_right": BLACK}

# EXIF orientation -> the transpose that turns the upright picture into the
# stored pixels (the inverse of what a viewer applies to show it):
#   1 as stored            2 mirrored left-right     3 rotated 180
#   4 mirrored top-bottom  5 mirrored + rotated      6 shown after 90 deg clockwise
#   7 mirrored + rotated   8 shown after 90 deg counter-clockwise
STORE_TRANSPOSE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}

EXIF_ORIENTATION = 0x0112
EXIF_GPS_IFD = 0x8825
METADATA_COMMENT = b"imgpipe-test-comment: do not copy me"
METADATA_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
    b'xmp:CreatorTool="imgpipe-test-xmp"/></rdf:RDF></x:xmpmeta>'
)
METADATA_CAMERA = "imgpipe-test-camera"


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    """Bytes of `image` saved as `fmt`; the one place tests turn pictures into uploads."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


# --- photo-like pictures -----------------------------------------------------


def photo_like(width: int, height: int, *, seed: int = 0) -> Image.Image:
    """An RGB picture with the statistics of a photo rather than of a test card.

    Smooth colour fields, mid-scale texture, a few hard-edged shapes and fine
    sensor-like grain: JPEG codecs and resamplers spend their time on exactly
    these, so timings on it resemble timings on real photos (a flat or purely
    random image would be unrealistically fast or slow).
    """
    rnd = random.Random(seed)
    fields = _noise_rgb(rnd, max(2, width // 250), max(2, height // 250))
    picture = fields.resize((width, height), Image.Resampling.BICUBIC)
    texture = _noise_rgb(rnd, max(2, width // 12), max(2, height // 12))
    texture = texture.resize((width, height), Image.Resampling.BILINEAR)
    picture = Image.blend(picture, texture, 0.25)

    draw = ImageDraw.Draw(picture)
    for _ in range(12):
        x0, y0 = rnd.randrange(width), rnd.randrange(height)
        x1 = x0 + rnd.randrange(1, max(2, width // 4))
        y1 = y0 + rnd.randrange(1, max(2, height // 4))
        colour = tuple(rnd.randrange(256) for _ in range(3))
        if rnd.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    picture = picture.filter(ImageFilter.GaussianBlur(1))

    grain = Image.frombytes("L", (width, height), rnd.randbytes(width * height))
    grain = grain.point(lambda v: 128 + (v - 128) // 12)
    return ImageChops.add(picture, Image.merge("RGB", (grain,) * 3), scale=1.0, offset=-128)


def photo_like_jpeg(
    width: int, height: int, *, seed: int = 0, quality: int = 90, progressive: bool = False
) -> bytes:
    """A photo-like JPEG as a camera or phone would upload it (4:2:0, no metadata)."""
    return encode(photo_like(width, height, seed=seed), "JPEG", quality=quality, progressive=progressive)


def _noise_rgb(rnd: random.Random, width: int, height: int) -> Image.Image:
    return Image.frombytes("RGB", (width, height), rnd.randbytes(width * height * 3))


# --- orientation -------------------------------------------------------------


def quadrant_marker(width: int, height: int) -> Image.Image:
    """The upright picture: four flat quadrants coloured as in QUADRANTS."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    image.paste(QUADRANTS["top_left"], (0, 0, half_w, half_h))
    image.paste(QUADRANTS["top_right"], (half_w, 0, width, half_h))
    image.paste(QUADRANTS["bottom_left"], (0, half_h, half_w, height))
    image.paste(QUADRANTS["bottom_right"], (half_w, half_h, width, height))
    return image


def stored_for_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera would store for `upright` when it writes this EXIF orientation."""
    method = STORE_TRANSPOSE[orientation]
    return upright.copy() if method is None else upright.transpose(method)


def oriented_jpeg(orientation: int, width: int = 160, height: int = 120) -> bytes:
    """A JPEG whose upright view is quadrant_marker(width, height), stored rotated/mirrored
    and tagged with EXIF `orientation` (1..8)."""
    return oriented_image_bytes(orientation, "JPEG", width, height, quality=95)


def oriented_image_bytes(orientation: int, fmt: str, width: int = 160, height: int = 120, **params) -> bytes:
    """Like oriented_jpeg, for any format that can carry EXIF (PNG, WEBP, TIFF, ...)."""
    stored = stored_for_orientation(quadrant_marker(width, height), orientation)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(stored, fmt, exif=exif.tobytes(), **params)


# --- metadata ----------------------------------------------------------------


def jpeg_with_metadata(width: int = 64, height: int = 48) -> bytes:
    """A JPEG carrying EXIF (camera model and a GPS position), XMP and a COM comment:
    everything a derivative must not leak."""
    exif = Image.Exif()
    exif[0x0110] = METADATA_CAMERA  # Model
    gps = exif.get_ifd(EXIF_GPS_IFD)
    gps[1] = "N"  # GPSLatitudeRef
    gps[2] = (52.0, 22.0, 12.5)  # GPSLatitude
    gps[3] = "E"
    gps[4] = (4.0, 53.0, 30.0)
    return encode(
        photo_like(width, height, seed=7), "JPEG", quality=90,
        exif=exif.tobytes(), xmp=METADATA_XMP, comment=METADATA_COMMENT,
    )


# --- colour ------------------------------------------------------------------

# Primaries of sRGB adapted to D50, as ICC matrix/TRC profiles store them.
SRGB_RED_XYZ = (0.4361, 0.2225, 0.0139)
SRGB_GREEN_XYZ = (0.3851, 0.7169, 0.0971)
SRGB_BLUE_XYZ = (0.1431, 0.0606, 0.7141)
ADOBE_RGB_RED_XYZ = (0.6097, 0.3111, 0.0195)
ADOBE_RGB_GREEN_XYZ = (0.2053, 0.6257, 0.0609)
ADOBE_RGB_BLUE_XYZ = (0.1492, 0.0632, 0.7446)
D50_XYZ = (0.9642, 1.0, 0.8249)


def rgb_icc_profile(
    description: str,
    red_xyz=SRGB_RED_XYZ,
    green_xyz=SRGB_GREEN_XYZ,
    blue_xyz=SRGB_BLUE_XYZ,
    gamma: float = 2.2,
) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma curve).

    Pillow can only create sRGB/LAB/XYZ profiles, none of which is a non-sRGB
    RGB space to embed in a test image, so this writes one by hand. Passing
    the sRGB blue primary as red and vice versa gives a "channel-swapped"
    space where stored blue means red: an unmistakable sign that a profile
    was converted rather than ignored.
    """
    curve = _icc_curve(gamma)
    return _icc_profile(
        b"RGB ",
        [
            (b"desc", _icc_description(description)),
            (b"cprt", b"text" + bytes(4) + b"public domain\x00"),
            (b"wtpt", _icc_xyz(D50_XYZ)),
            (b"rXYZ", _icc_xyz(red_xyz)),
            (b"gXYZ", _icc_xyz(green_xyz)),
            (b"bXYZ", _icc_xyz(blue_xyz)),
            (b"rTRC", curve),
            (b"gTRC", curve),
            (b"bTRC", curve),
        ],
    )


def gray_icc_profile(description: str, gamma: float) -> bytes:
    """A minimal ICC v2 grey display profile with a pure gamma curve."""
    return _icc_profile(
        b"GRAY",
        [
            (b"desc", _icc_description(description)),
            (b"cprt", b"text" + bytes(4) + b"public domain\x00"),
            (b"wtpt", _icc_xyz(D50_XYZ)),
            (b"kTRC", _icc_curve(gamma)),
        ],
    )


def _icc_profile(colour_space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, data = [struct.pack(">I", len(tags))], []
    for signature, body in tags:
        padded = body + bytes(-len(body) % 4)
        table.append(struct.pack(">4sII", signature, offset, len(body)))
        data.append(padded)
        offset += len(padded)
    header = struct.pack(
        ">I4sI4s4s4s6H4s4sI4s4s8sI12s4s16s28s",
        offset, b"\0\0\0\0", 0x02100000, b"mntr", colour_space, b"XYZ ",
        2024, 1, 1, 0, 0, 0, b"acsp", b"\0\0\0\0", 0, b"\0\0\0\0", b"\0\0\0\0",
        bytes(8), 0, _s15(D50_XYZ), b"\0\0\0\0", bytes(16), bytes(28),
    )
    assert len(header) == 128
    return header + b"".join(table) + b"".join(data)


def _s15(xyz) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in xyz)


def _icc_xyz(xyz) -> bytes:
    return b"XYZ " + bytes(4) + _s15(xyz)


def _icc_curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))


def _icc_description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text
        + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + bytes(67)
    )


def cmyk_jpeg(cmyk: tuple[int, int, int, int], size=(32, 32)) -> bytes:
    """A flat CMYK JPEG of colour `cmyk` (0 = no ink), written the way Photoshop
    writes them: samples stored inverted, flagged by an Adobe APP14 marker."""
    return encode(Image.new("CMYK", size, cmyk), "JPEG", quality=95)


# --- modes -------------------------------------------------------------------

OPAQUE_COLOUR = (200, 40, 40)
OPAQUE_GREY = 90


def transparent_corner(kind: str, size=(64, 48)) -> Image.Image:
    """A flat picture whose top-left quadrant is fully transparent, one per way of
    saying "transparent" that Pillow knows:

    RGBA, LA (alpha channel); P_index (one palette entry named transparent, as
    GIF and PNG do); P_alpha (a palette with per-entry alpha, PNG tRNS);
    L_key, RGB_key, I16_key (one grey level or colour named transparent, PNG tRNS).
    Opaque pixels are OPAQUE_COLOUR, or OPAQUE_GREY for the grey kinds.
    """
    width, height = size
    corner = (0, 0, width // 2, height // 2)
    if kind == "RGBA":
        image = Image.new("RGBA", size, OPAQUE_COLOUR + (255,))
        image.paste((0, 0, 0, 0), corner)
    elif kind == "LA":
        image = Image.new("LA", size, (OPAQUE_GREY, 255))
        image.paste((0, 0), corner)
    elif kind in ("P_index", "P_alpha"):
        image = Image.new("P", size, 1)
        if kind == "P_index":
            image.putpalette([0, 0, 0, *OPAQUE_COLOUR])
            image.info["transparency"] = 0
        else:
            image.putpalette([0, 0, 0, 0, *OPAQUE_COLOUR, 255], "RGBA")
        image.paste(0, corner)
    elif kind == "L_key":
        image = Image.new("L", size, OPAQUE_GREY)
        image.paste(7, corner)
        image.info["transparency"] = 7
    elif kind == "RGB_key":
        image = Image.new("RGB", size, OPAQUE_COLOUR)
        image.paste((1, 2, 3), corner)
        image.info["transparency"] = (1, 2, 3)
    elif kind == "I16_key":
        image = Image.new("I;16", size, OPAQUE_GREY * 256)
        # An Image, not an int: Pillow pastes ints into I;16 as a repeated byte.
        image.paste(Image.new("I;16", (corner[2], corner[3]), 7), corner[:2])
        image.info["transparency"] = 7
    else:
        raise ValueError(kind)
    return image


def grey_ramp(mode: str, width: int = 256, height: int = 16, *, low: float = 0, high: float = 65535) -> Image.Image:
    """A horizontal ramp from `low` (left column) to `high` (right column) in a deep
    grey mode (I;16, I;16B, I, F): shows whether the whole range survives."""
    step = (high - low) / (width - 1)
    row = [low + step * x for x in range(width)]
    if mode != "F":
        row = [round(value) for value in row]
    image = Image.new(mode, (width, height))
    image.putdata(row * height)
    return image


# --- animations --------------------------------------------------------------


def animated(fmt: str, colours, size=(48, 32), **params) -> bytes:
    """An animation whose frames are flat `colours`, in order (GIF, WEBP or PNG = APNG)."""
    frames = [Image.new("RGB", size, colour) for colour in colours]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)


# --- hostile and broken input ------------------------------------------------


@functools.lru_cache(maxsize=4)
def pixel_bomb_png(width: int, height: int) -> bytes:
    """A complete, valid 1-bit PNG of width x height black pixels, about
    1/1000 of its decoded size (30000x30000 is ~110 KB on disk, 900 MB decoded
    by Pillow). Built by hand: Pillow would have to allocate it to save it.

    Every 1000 rows compress to the same deflate block (a full flush resets
    the compressor), so the block is made once and repeated.
    """
    row = b"\0" + bytes((width + 7) // 8)  # filter type 0, then zero bits
    rows_per_block = 1000
    block_count, last_rows = divmod(height, rows_per_block)
    deflate = _deflate_block(row * rows_per_block) * block_count
    if last_rows:
        deflate += _deflate_block(row * last_rows)
    deflate += zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # empty final block
    adler = 1
    for _ in range(block_count):
        adler = zlib.adler32(row * rows_per_block, adler)
    adler = zlib.adler32(row * last_rows, adler)
    idat = b"\x78\xda" + deflate + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _deflate_block(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    """The first `keep` fraction of `data`: an upload cut off in transit."""
    return data[: int(len(data) * keep)]


def garbage_in_jpeg_scan(data: bytes, length: int = 2000, seed: int = 3) -> bytes:
    """`data` with `length` random bytes written over the middle of the entropy-coded scan."""
    start = data.index(b"\xff\xda")
    middle = start + (len(data) - start) // 2
    junk = random.Random(seed).randbytes(length)
    return data[:middle] + junk + data[middle + length :]


NOT_IMAGES = {
    "text": b"hello, this is a plain text file\nwith two lines\n",
    "html": b"<!DOCTYPE html>\n<html><head><title>x</title></head><body><p>hi</p></body></html>\n",
    "svg": (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<rect width="10" height="10" fill="red"/></svg>\n'
    ),
    "pdf": (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 10 10]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    ),
    "elf": b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + bytes(40),
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x00\x00" + bytes(30),
}
