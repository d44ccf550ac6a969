"""What the bucket holds of an upload, found by listing rather than by guessing keys: derivative
keys carry the version of their bytes, so a test that checks what is left (or gone) lists the
upload's original and each preset's prefix for its id."""

from __future__ import annotations

from imgpipe.keys import DERIVATIVES, derivative_key_prefix


def objects_of(storage, upload_id: str, original_key: str, presets: tuple[str, ...] = DERIVATIVES) -> list[str]:
    """Every object the bucket holds of the upload: its original and its derivatives of `presets`."""
    prefixes = [original_key, *(derivative_key_prefix(name, upload_id) for name in presets)]
    return [key for prefix in prefixes for key, _ in storage.list_after(prefix, "")
            if prefix != original_key or key == original_key]
