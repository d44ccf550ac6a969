"""Orient: the picture as a viewer shows it, EXIF orientation applied."""

from __future__ import annotations

from PIL import Image

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
