"""Turn one uploaded image into its three derivatives: JPEG, and any of PNG, WebP, AVIF asked for.

Pure: bytes in, bytes out, no storage, queue or web code, so it is tested
without services. The work is a short pipeline over one decoded picture:

    load -> orient -> convert to sRGB RGB -> resize -> encode

Each step is a function of its own. Every input problem is reported as
ImageRejected with a stable code; anything else escaping is a bug here.

Choices the derivatives contract leaves open:

* Derivatives embed no ICC profile. Pixels are converted to sRGB (when the
  upload carries a profile that isn't sRGB) and an untagged JPEG is read as
  sRGB by browsers and viewers, so a profile would only add bytes.
* resized and thumbnail are written at quality 85: visually clean at the
  sizes they are viewed at, a third of the bytes of quality 95. compressed
  uses quality 60 with libjpeg's standard (IJG) tables, as the contract says.
* All three are baseline, not optimized (Huffman optimisation saves a few
  percent and costs a second pass over the data), with 4:2:0 chroma.
* PNG, WebP and AVIF keep transparency (JPEG has none, so it is flattened
  on white there). WebP and AVIF qualities match the JPEG ones in PSNR on
  photographs, in fewer bytes (see OTHER_FORMATS); PNG is lossless, so its
  compressed is the full-size picture, losslessly.
* A large JPEG is decoded twice at once: in full for compressed, and with
  DCT scaling (Image.draft) on a second thread for resized and thumbnail
  (see make_derivatives). The two decodes cost about what one full decode and
  a resize of it would, in less wall time.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import sys
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

try:
    import pillow_heif
except ImportError:  # without it HEIF is simply not among the readable formats
    pass
else:
    pillow_heif.register_heif_opener()

# Pillow refuses on its own above 2 x Image.MAX_IMAGE_PIXELS (~179 MP); a larger
# max_pixels takes effect only if the application raises that too.
DEFAULT_MAX_PIXELS = 100_000_000

RESIZED_BOX = (1024, 1024)
THUMBNAIL_BOX = (300, 300)
COMPRESSED_QUALITY = 60
RESIZED_QUALITY = 85
THUMBNAIL_QUALITY = 85

# The output formats besides JPEG: Pillow's writer, and its options per derivative. WebP 85 and
# AVIF 70 give about the PSNR of JPEG 85 on photographs, WebP 50 and AVIF 50 that of JPEG 60,
# in fewer bytes; AVIF speed 8 of 10 takes about as long as WebP's default effort.
OTHER_FORMATS = {
    "png": ("PNG", {"resized": {}, "compressed": {}, "thumbnail": {}}),
    "webp": ("WEBP", {"resized": {"quality": 85}, "compressed": {"quality": 50}, "thumbnail": {"quality": 85}}),
    "avif": ("AVIF", {"resized": {"quality": 70, "speed": 8}, "compressed": {"quality": 50, "speed": 8},
                      "thumbnail": {"quality": 70, "speed": 8}}),
}

# Formats accepted as uploads, in the order they are tried (most common first).
# MPO is the JPEG variant phones write for multi-picture files; its first
# picture is an ordinary JPEG, so it is reported as JPEG.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF", "AVIF", "GIF", "TIFF", "BMP", "MPO")
REPORTED_AS = {"MPO": "JPEG"}

# Reducing by an integer factor first (box average, very fast) and finishing
# with Lanczos over the last 1.5x-3x gives the same picture as Lanczos all the
# way to within ~50 dB PSNR on photos, at under half the time.
RESIZE_FILTER = Image.Resampling.LANCZOS
RESIZE_REDUCING_GAP = 1.5

# Pictures at least this big are resized in RESIZE_BANDS horizontal bands at once, one per
# thread (Pillow lets go of the GIL while it resamples). A band resized with Pillow's `box`
# reads the same source rows, filter support included, as the whole resize would; only the
# band's edges, which Pillow keeps as 32-bit floats, round differently, by a level or two at
# most and with no seam. Below this size the threads cost more than they save.
PARALLEL_RESIZE_MIN_PIXELS = 2_000_000
RESIZE_BANDS = 2
RESIZE_FILTER_SUPPORT = 3.0  # Lanczos reaches 3 source pixels (times the scale) each way

EXIF_ORIENTATION_TAG = 0x0112
# Orientations whose upright picture has the stored width and height swapped.
TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)
# EXIF orientation -> the transpose that shows the stored pixels upright.
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageRejected(Exception):
    """An upload that cannot become derivatives; .code is the stable error code, .message a human sentence."""

    def __init__(self, code: str, message: str):
        # Both go to Exception so the error pickles (job queues pickle exceptions).
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


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


def make_derivatives(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                     formats: tuple[str, ...] = ("jpeg",)) -> Derivatives:
    """Decode `data` and make resized, compressed and thumbnail from it.

    A JPEG at least twice the resized box in each direction is also decoded a second time,
    on a worker thread and at once, with libjpeg's DCT scaling (1/2, 1/4 or 1/8 of the
    size, whichever still covers the box): the two small derivatives come from that, while
    this thread decodes the full picture and encodes the compressed one. The scaled decode
    costs less than box-reducing and resampling the full picture would, so the two run side
    by side for no extra CPU. Any other picture is decoded once; its full-size encode runs
    on a worker thread while this thread resizes (Pillow lets go of the GIL while it resizes
    and encodes, so on two cores the two overlap).

    `formats` names the output formats wanted ("jpeg", "png", "webp", "avif"); those besides
    JPEG are made after it from the same decode, with transparency kept.
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
        resized, thumbnail = _result_or_none(small) or small_derivatives(image, image.size)
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


def _result_or_none(future: Future):
    """The future's result, or None if it failed: the caller then does the work another way.
    Whatever makes the scaled decode fail also shows in the full decode, which has already
    succeeded here, so this is a safety net rather than a path."""
    try:
        return future.result()
    except Exception:
        return None


# --- load ----------------------------------------------------------------------


def load(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, str]:
    """Identify `data`, refuse it if it is too big, then decode its first frame.

    The pixel limit is checked on the size in the header, before a single
    pixel is decoded or its memory allocated. Open images start on their
    first frame (animations, multi-page TIFF, HEIF's primary image), which is
    the one decoded.
    """
    image, fmt = open_checked(data, max_pixels=max_pixels)
    decode(image)
    return image, fmt


def open_checked(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[ImageFile.ImageFile, str]:
    """`load` without the decode: the opened image (header read) and its reported format."""
    if not data:
        raise ImageRejected("empty_file", "The file is empty.")
    image = open_accepted(data)
    fmt = REPORTED_AS.get(image.format, image.format)
    check_pixel_limit(image.size, max_pixels)
    return image, fmt


def open_accepted(data: bytes) -> ImageFile.ImageFile:
    """Open `data` (header only) if it is one of the accepted formats, else say what it is."""
    try:
        with _bomb_warnings_silenced():
            return Image.open(io.BytesIO(data), formats=_readable_accepted_formats())
    except UnidentifiedImageError:
        pass
    except Image.DecompressionBombError:
        raise _too_many_pixels(None) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise ImageRejected("corrupt_image", f"The image header is damaged ({_reason(exc)}).") from None
    raise _why_not_accepted(data)


def check_pixel_limit(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse pictures too big to decode safely (decompression bombs)."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageRejected("corrupt_image", f"The image claims an impossible size of {width}x{height}.")
    if width * height > max_pixels:
        raise _too_many_pixels(size, max_pixels)


def decode(image: Image.Image) -> None:
    """Decode the pixels, mapping every decoder complaint to corrupt_image.

    Truncated files are errors here (nothing sets LOAD_TRUNCATED_IMAGES), so
    a cut-off upload is refused rather than padded with grey. Damage that
    libjpeg recovers from on its own (it only warns, and Pillow does not pass
    warnings on) cannot be seen from here and decodes as it stands.
    """
    quiet = _bomb_warnings_silenced() if _over_pillow_warning_limit(image.size) else contextlib.nullcontext()
    try:
        with quiet:
            image.load()
    except Image.DecompressionBombError:
        raise _too_many_pixels(image.size) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise ImageRejected("corrupt_image", f"The image data is damaged or incomplete ({_reason(exc)}).") from None


def _why_not_accepted(data: bytes) -> ImageRejected:
    """The rejection for bytes that no accepted reader could open."""
    other_format = _identify_any_format(data)
    if other_format is not None:
        kind = f"{other_format} images" if other_format else "Images of this kind"
        return ImageRejected("unsupported_format", f"{kind} are not accepted.")
    signature = _signature_format(data)
    if signature is None:
        return ImageRejected("not_an_image", "The file is not an image.")
    if signature in _readable_accepted_formats():
        return ImageRejected("corrupt_image", f"The file looks like {signature} but its header is damaged.")
    return ImageRejected("unsupported_format", f"{signature} images cannot be read by this installation.")


def _identify_any_format(data: bytes) -> str | None:
    """The format name if any Pillow reader recognises `data` ("" if it does but is too big
    to say), None if none does. Only headers are read."""
    try:
        with _bomb_warnings_silenced():
            with Image.open(io.BytesIO(data)) as image:
                return image.format or ""
    except Image.DecompressionBombError:
        return ""
    except MemoryError:
        raise
    except Exception:
        return None


def _signature_format(data: bytes) -> str | None:
    """The accepted format whose magic number `data` starts with, if any.

    Lets a damaged PNG or JPEG header be told apart from a file that is no
    image at all, and a HEIF file from noise when no HEIF reader is installed.
    """
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM") and len(head) >= 18 and head[14] in (12, 16, 40, 52, 56, 64, 108, 124):
        return "BMP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIF"
    return None


@functools.cache
def _readable_accepted_formats() -> tuple[str, ...]:
    """ACCEPTED_FORMATS minus those this Pillow has no reader for (HEIF, AVIF may be missing)."""
    Image.init()
    return tuple(fmt for fmt in ACCEPTED_FORMATS if fmt in Image.OPEN)


_warnings_lock = threading.Lock()


@contextlib.contextmanager
def _bomb_warnings_silenced():
    """Keep Pillow's own size warning quiet: the limit is ours to enforce.

    Pillow warns above Image.MAX_IMAGE_PIXELS (~89 MP, below our default
    limit) and raises above twice that. The warning would only be noise in
    worker logs, so it is ignored; the error is mapped to too_many_pixels.
    catch_warnings swaps process-wide state, hence the lock.
    """
    with _warnings_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _over_pillow_warning_limit(size: tuple[int, int]) -> bool:
    limit = Image.MAX_IMAGE_PIXELS
    return limit is not None and size[0] * size[1] > limit


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int | None = None) -> ImageRejected:
    if size is None or max_pixels is None:
        return ImageRejected("too_many_pixels", "The image has more pixels than this service accepts.")
    width, height = size
    return ImageRejected(
        "too_many_pixels",
        f"The image is {width}x{height} ({width * height:,} pixels); the limit is {max_pixels:,} pixels.",
    )


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


# --- orient --------------------------------------------------------------------


def orient(image: Image.Image) -> Image.Image:
    """The picture as a viewer shows it: EXIF orientation applied.

    Returns `image` itself when there is nothing to do, so the common case
    costs no copy. The result is never re-tagged; derivatives carry no EXIF.
    """
    method = ORIENTATION_TRANSPOSE.get(exif_orientation(image))
    if method is None:
        return image
    return image.transpose(method)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8); 1 when absent, unreadable or out of range.

    A damaged EXIF block is no reason to refuse an otherwise fine picture.
    """
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# --- convert to 8-bit sRGB -----------------------------------------------------


def to_srgb_rgb(image: Image.Image) -> Image.Image:
    """The picture as 8-bit sRGB "RGB", whatever mode and colour space it came in.

    First to one of RGB, L or CMYK in the file's own colour space
    (transparency flattened on white, deep samples scaled to 8 bits), then
    through the embedded ICC profile to sRGB, then to RGB. An RGB picture
    with no profile, or an sRGB one, comes back untouched: no copy. An RGB
    picture in another profile is converted in place: the pipeline owns it.
    """
    if image.mode == "LAB":  # absolute colour: no profile needed or meaningful
        return lab_to_srgb(image)
    icc = image.info.get("icc_profile")
    image = to_base_mode(image)
    if icc:
        image = convert_profile_to_srgb(image, bytes(icc))
    if image.mode != "RGB":
        image = _convert_or_reject(image, "RGB")
    return image


def to_srgb_rgba(image: Image.Image) -> Image.Image:
    """A picture with transparency as 8-bit sRGB "RGBA", for the outputs that keep it: what
    to_srgb_rgb makes, without flattening, the alpha channel carried beside the colours."""
    icc = image.info.get("icc_profile")
    if image.mode.startswith("I;16"):
        grey, alpha = sixteen_bit_to_l(image), _alpha_of_transparent_level(image)
        image = grey if alpha is None else Image.merge("LA", (grey, alpha))
    rgba = _convert_or_reject(image, "RGBA")
    colour, alpha = rgba.convert("RGB"), rgba.getchannel("A")
    if icc:
        colour = convert_profile_to_srgb(colour, bytes(icc))
    colour.putalpha(alpha)
    strip_metadata(colour)
    return colour


def to_base_mode(image: Image.Image) -> Image.Image:
    """`image` as RGB, L or CMYK, still in its own colour space."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        grey = sixteen_bit_to_l(image) if mode.startswith("I;16") else wide_range_to_l(image)
        alpha = _alpha_of_transparent_level(image)
        return grey if alpha is None else flatten_on_white(Image.merge("LA", (grey, alpha)))
    if image.has_transparency_data:
        return flatten_on_white(image)
    if mode in ("RGB", "L", "CMYK"):
        return image
    if mode == "1":
        return image.convert("L")
    return _convert_or_reject(image, "RGB")  # P, RGBX, YCbCr, HSV, ...


def flatten_on_white(image: Image.Image) -> Image.Image:
    """Composite a picture with transparency onto white: what a page shows behind it.

    Grey pictures stay grey (a third of the work), colour ones become RGB.
    """
    grey = image.mode in ("LA", "La") or (image.mode in ("1", "L") and "transparency" in image.info)
    with_alpha = _convert_or_reject(image, "LA" if grey else "RGBA")
    flat = Image.new("L" if grey else "RGB", image.size, "white")
    flat.paste(with_alpha, mask=with_alpha)
    return flat


def sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    """16-bit grey to 8 bits by keeping the high byte (v >> 8), so the full range maps to 0..255.

    Pillow's own I;16 -> L conversion clips at 255 instead, turning nearly
    every pixel white. Reading the raw high bytes costs one pass.
    """
    big_endian = image.mode == "I;16B" or (image.mode == "I;16N" and sys.byteorder == "big")
    return Image.frombuffer("L", image.size, image.tobytes(), "raw", "L;16B" if big_endian else "L;16", 0, 1)


def wide_range_to_l(image: Image.Image) -> Image.Image:
    """32-bit integer or float grey to 8 bits, by the range the values actually use.

    Values within 0..255 are taken as 8-bit, within 0..65535 as 16-bit, and
    floats within 0..1 as normalised. Anything else is stretched from its
    minimum to its maximum, the only reading that shows the picture at all.
    """
    low, high = image.getextrema()
    full_scales = ((1.0,) if image.mode == "F" else ()) + (255, 65535)
    for full_scale in full_scales:
        if 0 <= low and high <= full_scale:
            low, high = 0, full_scale
            break
    scale = 255 / ((high - low) or 1)
    return image.point(lambda v: v * scale - low * scale).convert("L")


def _alpha_of_transparent_level(image: Image.Image) -> Image.Image | None:
    """The alpha mask of a 16-bit grey picture that names one level transparent (PNG tRNS).

    Pillow's own conversion to LA ignores the level for 16-bit pictures.
    """
    level = image.info.get("transparency")
    if not image.mode.startswith("I;16") or not isinstance(level, int) or not 0 <= level <= 0xFFFF:
        return None
    table = [255] * 0x10000
    table[level] = 0
    return image.convert("I").point(table, "L")


def lab_to_srgb(image: Image.Image) -> Image.Image:
    """CIE L*a*b* to sRGB through LittleCMS (Pillow's plain convert misreads LAB)."""
    return ImageCms.applyTransform(image, _lab_to_srgb_transform())


def convert_profile_to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """Convert `image` from ICC profile `icc` to sRGB (RGB pictures in place).

    Skipped when the profile calls itself sRGB (most cameras and phones embed
    exactly that; converting would cost a full pass for nothing). A profile
    that can't be parsed, or doesn't fit the pixels (an RGB profile on a grey
    image), is ignored: the pixels are then shown as if sRGB, as most viewers
    do, instead of refusing the upload.
    """
    if image.mode not in ("RGB", "L", "CMYK"):
        return image
    transform = _transform_to_srgb(icc, image.mode)
    if transform is None:
        return image
    if image.mode != "RGB":
        return ImageCms.applyTransform(image, transform)
    # RGB to RGB in place: no second full-size buffer, and about a fifth
    # faster (a phone's Display P3 photo of 12 MP spends ~150 ms here).
    ImageCms.applyTransform(image, transform, inPlace=True)
    image.info.pop("icc_profile", None)
    return image


@functools.lru_cache(maxsize=8)
def _transform_to_srgb(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A LittleCMS transform from profile `icc` to sRGB, or None when not needed or not possible.

    Cached for a few profiles: uploads from one phone model share a profile,
    and building a transform can cost more than applying it to a small
    picture. LittleCMS transforms are safe to share between threads.
    """
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if mode == "RGB" and is_srgb_profile(profile):
            return None
        return ImageCms.buildTransform(profile, _srgb_profile(), mode, "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def is_srgb_profile(profile: ImageCms.ImageCmsProfile) -> bool:
    """True when an RGB profile names itself sRGB ("sRGB IEC61966-2.1", "sRGB built-in", ...)."""
    description = ImageCms.getProfileDescription(profile) or ""
    return profile.profile.xcolor_space == "RGB " and "srgb" in description.lower()


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def _lab_to_srgb_transform() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("LAB"), _srgb_profile(), "LAB", "RGB")


def _convert_or_reject(image: Image.Image, mode: str) -> Image.Image:
    try:
        return image.convert(mode)
    except ValueError:
        raise ImageRejected("unsupported_format", f"Pixels of mode {image.mode} cannot be converted.") from None


def strip_metadata(image: Image.Image) -> None:
    """Forget everything the upload carried besides pixels.

    Pillow's JPEG writer copies a comment from image.info on its own; EXIF,
    XMP and ICC it writes only when asked, which this module never does.
    """
    image.info = {}


# --- resize --------------------------------------------------------------------


def fit_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest size with `size`'s aspect that fits in `box`; `size` itself if it fits already.

    The limiting side gets the box exactly, the other side is rounded to the
    nearest pixel but never below one: 10000x500 in 1024 -> 1024x51,
    1x50000 -> 1x1024.
    """
    width, height = size
    box_width, box_height = box
    if width <= box_width and height <= box_height:
        return size
    if width * box_height >= height * box_width:
        return box_width, max(1, _round_div(height * box_width, width))
    return max(1, _round_div(width * box_height, height)), box_height


def _round_div(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def resize_to(image: Image.Image, size: tuple[int, int], *, parallel: bool = True) -> Image.Image:
    """`image` resampled to `size`; a copy when the size is already right.

    Always a new image, so the three encodes never share one Image object
    (saving stores its options on the image, which threads would trample).
    `parallel=False` keeps the work on this thread (a task already running on the
    pool must not wait for the pool).
    """
    if image.size == size:
        return image.copy()
    if not parallel or image.width * image.height < PARALLEL_RESIZE_MIN_PIXELS:
        return image.resize(size, RESIZE_FILTER, reducing_gap=RESIZE_REDUCING_GAP)
    return resize_in_bands(image, size)


def resize_in_bands(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """What `image.resize(size, RESIZE_FILTER, reducing_gap=RESIZE_REDUCING_GAP)` returns
    (to within rounding), with the work split into horizontal bands on separate threads.

    Each band first box-reduces only the source rows its Lanczos step reads (its own rows
    plus the filter's reach), so the threads share nothing and wait for nothing.
    """
    factor_x = int(image.width / size[0] / RESIZE_REDUCING_GAP) or 1
    factor_y = int(image.height / size[1] / RESIZE_REDUCING_GAP) or 1
    reduced_height = image.height / factor_y
    scale = reduced_height / size[1]
    reach = math.ceil(RESIZE_FILTER_SUPPORT * max(scale, 1.0)) + 1
    edges = _band_edges(size[1], RESIZE_BANDS)

    def band(top: int, bottom: int) -> Image.Image:
        if factor_x == 1 and factor_y == 1:
            return image.resize((size[0], bottom - top), RESIZE_FILTER,
                                box=(0.0, top * scale, float(image.width), bottom * scale))
        first = max(0, math.floor(top * scale) - reach)
        last = min(math.ceil(reduced_height), math.ceil(bottom * scale) + reach)
        rows = (0, first * factor_y, image.width, min(image.height, last * factor_y))
        source = image.reduce((factor_x, factor_y), box=rows)
        box = (0.0, top * scale - first, image.width / factor_x, bottom * scale - first)
        return source.resize((size[0], bottom - top), RESIZE_FILTER, box=box)

    return _join_bands(image.mode, size, edges, _run_bands(band, edges))


def _band_edges(length: int, bands: int) -> list[int]:
    """Cut points splitting 0..length into `bands` nearly equal parts (fewer when short)."""
    return sorted({length * index // bands for index in range(bands + 1)})


def _run_bands(make_band, edges: list[int]) -> list[Image.Image]:
    """make_band(top, bottom) for every band: all but the last on the pool, the last here."""
    spans = list(zip(edges, edges[1:]))
    pending = [_encoder_pool().submit(make_band, top, bottom) for top, bottom in spans[:-1]]
    last = make_band(*spans[-1])
    return [future.result() for future in pending] + [last]


def _join_bands(mode: str, size: tuple[int, int], edges: list[int], bands: list[Image.Image]) -> Image.Image:
    if len(bands) == 1:
        return bands[0]
    joined = Image.new(mode, size)
    for top, band in zip(edges, bands):
        joined.paste(band, (0, top))
    return joined


# --- encode --------------------------------------------------------------------


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG with libjpeg's standard tables scaled to `quality`; no metadata written."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()


def encode_as(image: Image.Image, output_format: str, derivative: str) -> bytes:
    """`image` in one of OTHER_FORMATS, with that derivative's options; no metadata written."""
    pillow_format, options = OTHER_FORMATS[output_format]
    buffer = io.BytesIO()
    image.save(buffer, pillow_format, **options[derivative])
    return buffer.getvalue()


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


def _forget_pool_after_fork() -> None:
    global _pool, _pool_lock, _warnings_lock
    _pool = None
    _pool_lock = threading.Lock()
    _warnings_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)

# Load Pillow's format plugins now, in whatever process imports this module: `imgpipe worker`
# imports it before it forks its worker process, so a replacement worker starts with them
# loaded rather than importing them all on its first open (about 35 ms here).
_readable_accepted_formats()
