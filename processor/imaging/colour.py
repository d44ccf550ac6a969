"""Colour: any mode and colour space Pillow opens, as 8-bit sRGB (RGB, or RGBA for the outputs
that keep transparency)."""

from __future__ import annotations

import functools
import io
import sys

from PIL import Image, ImageCms

from imgpipe.error_codes import UploadFailure
from processor.imaging.errors import ImageRejected


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
        raise ImageRejected(UploadFailure.UNSUPPORTED_FORMAT,
                            f"Pixels of mode {image.mode} cannot be converted.") from None


def strip_metadata(image: Image.Image) -> None:
    """Forget everything the upload carried besides pixels.

    Pillow's JPEG writer copies a comment from image.info on its own; EXIF,
    XMP and ICC it writes only when asked, which the encoders here never do.
    """
    image.info = {}
