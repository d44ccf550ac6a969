"""Deleting an upload: the one path DELETE /uploads/<id> and retention both take.

The row is marked deleted first, then every object it may have is removed: the original and the
derivatives in every output format, asked for or not, of the built-in presets, of the presets
in use and of any preset the row records (one taken out of the file but not pruned). In that order, a job still writing cannot
leave anything behind: its conditional UPDATE to completed fails on a deleted row, and it then
removes what it wrote. A row that was processing when it was deleted stays unpurged, so the
sweeper removes its objects once more after the processing deadline, by when no job can still
be writing; one whose removal failed (storage down) is found the same way.
"""

from __future__ import annotations

import json

from imgpipe import uploads
from imgpipe.keys import DERIVATIVES, derivative_keys
from imgpipe.presets import BUILT_IN, Presets


def upload_keys(row: dict, presets: Presets = BUILT_IN) -> list[str]:
    """Every object an upload can own, under the presets in use."""
    recorded = json.loads(row["derivatives"]) if row.get("derivatives") else {}
    names = dict.fromkeys([*DERIVATIVES, *presets.names, *recorded])
    return [row["key"], *derivative_keys(row["id"], names)]


def delete_upload(db, storage, upload_id: str, presets: Presets) -> dict | None:
    """Delete an upload and remove its objects; the row as it is now, or None for an unknown id.

    Deleting again answers the same row, and removes the objects again (a removal that failed
    the first time gets another chance). Raises StorageUnavailable when the objects could not
    be removed; the row is deleted all the same.
    """
    before = uploads.mark_deleted(db, upload_id)
    if before is None:
        return None
    storage.remove(upload_keys(before, presets))
    if before["status"] not in (uploads.PROCESSING, uploads.DELETED):
        uploads.mark_purged(db, upload_id)
    return uploads.get_upload(db, upload_id)


def purge(db, storage, row: dict, presets: Presets) -> None:
    """Remove a deleted row's objects once more and note that they are gone."""
    storage.remove(upload_keys(row, presets))
    uploads.mark_purged(db, row["id"])
