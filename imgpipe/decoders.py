"""The image formats this installation reads, with the optional HEIF decoder registered.

pillow_heif adds HEIF to Pillow's readers once its opener is registered. The API asks which
formats are readable to decide which content types it accepts, the workers which formats
they may open; both ask here, so the two always agree. Registering is all this does: no
decoding, no threads.
"""

from __future__ import annotations

import functools

from PIL import Image


@functools.cache
def register_optional_decoders() -> None:
    """Register pillow_heif's opener with Pillow, once per process; without it HEIF is simply
    not among the readable formats."""
    try:
        import pillow_heif
    except ImportError:
        return
    pillow_heif.register_heif_opener()


def readable_formats() -> frozenset[str]:
    """Pillow's names of the formats this installation can open ("JPEG", "HEIF", ...)."""
    register_optional_decoders()
    Image.init()
    return frozenset(Image.OPEN)
