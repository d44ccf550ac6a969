"""Output formats: the ones derivatives can be asked for, and the ones this Pillow can write.

JPEG is the default and the contract's own format; PNG, WebP and AVIF are there for clients that
want transparency kept or smaller files. Pure: only asks Pillow which encoders it was built with.
"""

from __future__ import annotations

from PIL import features

OUTPUT_FORMATS = ("jpeg", "png", "webp", "avif")
DEFAULT_FORMATS = ("jpeg",)
_ENCODER_FEATURE = {"webp": "webp", "avif": "avif"}  # optional encoders; JPEG and PNG are always built in


def writable_formats() -> tuple[str, ...]:
    """OUTPUT_FORMATS minus those whose encoder this Pillow lacks."""
    return tuple(name for name in OUTPUT_FORMATS
                 if name not in _ENCODER_FEATURE or features.check(_ENCODER_FEATURE[name]))


def content_type(output_format: str) -> str:
    return f"image/{output_format}"
