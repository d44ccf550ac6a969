"""Load: identify the upload from its bytes, refuse it before decoding if it is too big,
then decode its first frame. Every input problem becomes ImageRejected with a stable code."""

from __future__ import annotations

import contextlib
import functools
import io
import threading
import warnings

from PIL import Image, ImageFile, UnidentifiedImageError

from imgpipe.decoders import readable_formats
from imgpipe.error_codes import UploadFailure
from imgpipe.formats import ORIGINAL_PILLOW_NAMES, REPORTED_AS, sniff
from processor.imaging.errors import ImageRejected


def load(data: bytes, *, max_pixels: int) -> tuple[Image.Image, str]:
    """Identify `data`, refuse it if it is too big, then decode its first frame.

    The pixel limit is checked on the size in the header, before a single
    pixel is decoded or its memory allocated. Open images start on their
    first frame (animations, multi-page TIFF, HEIF's primary image), which is
    the one decoded.
    """
    image, fmt = open_checked(data, max_pixels=max_pixels)
    decode(image)
    return image, fmt


def open_checked(data: bytes, *, max_pixels: int) -> tuple[ImageFile.ImageFile, str]:
    """`load` without the decode: the opened image (header read) and its reported format."""
    if not data:
        raise ImageRejected(UploadFailure.EMPTY_FILE, "The file is empty.")
    image = open_accepted(data)
    fmt = REPORTED_AS.get(image.format, image.format)
    check_pixel_limit(image.size, max_pixels)
    return image, fmt


def open_accepted(data: bytes) -> ImageFile.ImageFile:
    """Open `data` (header only) if it is one of the accepted formats, else say what it is."""
    try:
        with _bomb_warnings_silenced():
            return Image.open(io.BytesIO(data), formats=readable_accepted_formats())
    except UnidentifiedImageError:
        pass
    except Image.DecompressionBombError:
        raise _too_many_pixels(None) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise ImageRejected(UploadFailure.CORRUPT_IMAGE, f"The image header is damaged ({_reason(exc)}).") from None
    raise _why_not_accepted(data)


def check_pixel_limit(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse pictures too big to decode safely (decompression bombs).

    Pillow refuses on its own above 2 x Image.MAX_IMAGE_PIXELS (~179 MP); a larger
    max_pixels takes effect only if the application raises that too.
    """
    width, height = size
    if width < 1 or height < 1:
        raise ImageRejected(UploadFailure.CORRUPT_IMAGE, f"The image claims an impossible size of {width}x{height}.")
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
        raise ImageRejected(UploadFailure.CORRUPT_IMAGE,
                            f"The image data is damaged or incomplete ({_reason(exc)}).") from None


def _why_not_accepted(data: bytes) -> ImageRejected:
    """The rejection for bytes that no accepted reader could open."""
    other_format = _identify_any_format(data)
    if other_format is not None:
        kind = f"{other_format} images" if other_format else "Images of this kind"
        return ImageRejected(UploadFailure.UNSUPPORTED_FORMAT, f"{kind} are not accepted.")
    signature = _signature_format(data)
    if signature is None:
        return ImageRejected(UploadFailure.NOT_AN_IMAGE, "The file is not an image.")
    if signature in readable_accepted_formats():
        return ImageRejected(UploadFailure.CORRUPT_IMAGE, f"The file looks like {signature} but its header is damaged.")
    return ImageRejected(UploadFailure.UNSUPPORTED_FORMAT, f"{signature} images cannot be read by this installation.")


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
    """Pillow's name of the accepted format whose magic number `data` starts with, if any.

    Lets a damaged PNG or JPEG header be told apart from a file that is no
    image at all, and a HEIF file from noise when no HEIF reader is installed.
    """
    known = sniff(data)
    return known.pillow if known else None


@functools.cache
def readable_accepted_formats() -> tuple[str, ...]:
    """Pillow's names of the originals imgpipe.formats accepts, in the order they are tried,
    minus those this installation has no reader for (HEIF, AVIF may be missing)."""
    readable = readable_formats()
    return tuple(fmt for fmt in ORIGINAL_PILLOW_NAMES if fmt in readable)


# Held while the process-wide warning filters are swapped. A forked child gets a new one (the
# fork hook processor.imaging.process_setup registers): the thread that held it is not there.
warnings_lock = threading.Lock()


@contextlib.contextmanager
def _bomb_warnings_silenced():
    """Keep Pillow's own size warning quiet: the limit is ours to enforce.

    Pillow warns above Image.MAX_IMAGE_PIXELS (~89 MP, below our default
    limit) and raises above twice that. The warning would only be noise in
    worker logs, so it is ignored; the error is mapped to too_many_pixels.
    catch_warnings swaps process-wide state, hence the lock.
    """
    with warnings_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _over_pillow_warning_limit(size: tuple[int, int]) -> bool:
    limit = Image.MAX_IMAGE_PIXELS
    return limit is not None and size[0] * size[1] > limit


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int | None = None) -> ImageRejected:
    if size is None or max_pixels is None:
        return ImageRejected(UploadFailure.TOO_MANY_PIXELS, "The image has more pixels than this service accepts.")
    width, height = size
    return ImageRejected(
        UploadFailure.TOO_MANY_PIXELS,
        f"The image is {width}x{height} ({width * height:,} pixels); the limit is {max_pixels:,} pixels.",
    )


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
