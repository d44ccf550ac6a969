"""Big images for the upload tests, made once per machine and kept in .tools/test-files/
(ignored by git), keyed by what makes them, so a later session reuses them at once.

A PNG of random noise barely compresses, so its size on disk is close to its pixels' bytes: a
real image of any size, within the pixel limit, that the worker decodes like any other.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

from PIL import Image

from cli.stack import PROJECT_ROOT

CACHE = PROJECT_ROOT / ".tools" / "test-files"
VERSION = 1  # bump when the way the files are made changes


def noise_png(megabytes: float, seed: int = 0) -> Path:
    """A square RGB PNG of noise of at least `megabytes` million bytes (a few kB more)."""
    side = int((megabytes * 1_000_000 / 3) ** 0.5) + 1
    key = hashlib.sha256(f"noise-png:{VERSION}:{side}:{seed}".encode()).hexdigest()[:16]
    path = CACHE / f"noise-{side}x{side}-{key}.png"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    image = Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3))
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    image.save(partial, "PNG", compress_level=1)
    partial.replace(path)
    return path
