"""What a stored upload needs to be what the presets in use make: `imgpipe reprocess` picks its
uploads with work_for, and each reprocess job asks it again of the row it re-reads, so the
command and the job agree. Pure: a row and the presets in, the work out; beside imgpipe.presets
so the command reads it without importing a worker's job code or the image code.
"""

from __future__ import annotations

from imgpipe import uploads
from imgpipe.error_codes import UploadFailure
from imgpipe.presets import Presets, Reprocessing, reprocessing


def work_for(row: dict, presets: Presets, *, only: tuple[str, ...] | None, prune: bool) -> Reprocessing | None:
    """What the upload needs, or None when it has it all: every object of the presets in use
    (of `only`, when given) at its current version, a placeholder, and with `prune` nothing
    more. A failed upload needs everything, unless its failure left no original."""
    failed = row["status"] == uploads.FAILED
    failure = UploadFailure.recorded(row["error_code"])
    if failed and failure and failure.leaves_no_original:
        return None
    work = reprocessing(presets, stored=uploads.stored_derivatives(row), wanted=uploads.requested_presets(row),
                        upload_formats=uploads.output_formats(row), only=None if failed else only, prune=prune)
    return work if failed or work.needed or not row["blurhash"] else None
