"""Deleting an upload: the one path DELETE /uploads/<id> and retention both take.

The row is marked deleted first, then every object of the upload is removed: the original, the
derivatives its record names (uploads.derivative_objects), those a reprocess superseded that are
not released yet, and whatever each preset's prefix lists of the upload. The listing is needed
because a key carries its content's version: an attempt that wrote objects and crashed before its
UPDATE, whose retry encoded other bytes, left objects that no row names. In that order, a job still
writing cannot leave anything behind: its conditional UPDATE to completed fails on a deleted row,
and it then removes what it wrote. A row that was processing when it was deleted stays unpurged,
so the sweeper removes its objects once more after the processing deadline, by when no job can
still be writing; one whose removal failed (storage down) is found the same way.
"""

from __future__ import annotations

from imgpipe import uploads
from imgpipe.keys import DERIVATIVES, derivative_key_prefix
from imgpipe.presets import Presets


def remove_upload_objects(db, storage, row: dict, *, also: list[str] = ()) -> None:
    """Remove the objects the row names (and `also`), then forget its superseded ones."""
    superseded = uploads.superseded_keys(db, row["id"])
    storage.remove([row["key"], *uploads.derivative_keys(row), *superseded, *also])
    uploads.forget_superseded(db, superseded)


def delete_upload(db, storage, upload_id: str, presets: Presets) -> dict | None:
    """Delete an upload and remove its objects; the row as it is now, or None for an unknown id.

    Deleting again answers the same row, and removes the objects again (a removal that failed
    the first time gets another chance). Raises StorageUnavailable when the objects could not
    be removed; the row is deleted all the same.
    """
    before = uploads.mark_deleted(db, upload_id)
    if before is None:
        return None
    if before["status"] in (uploads.PROCESSING, uploads.DELETED):
        remove_upload_objects(db, storage, before)
    else:
        purge(db, storage, before, presets)
    return uploads.get_upload(db, upload_id)


def purge(db, storage, row: dict, presets: Presets) -> None:
    """Remove a deleted row's objects, with whatever each preset's prefix lists of the upload (the
    built-in presets, those in use and those the row records), and note that they are gone."""
    names = dict.fromkeys([*DERIVATIVES, *presets.names, *uploads.derivative_record(row)])
    listed = [key for name in names for key, _ in storage.list_after(derivative_key_prefix(name, row["id"]), "")]
    remove_upload_objects(db, storage, row, also=listed)
    uploads.mark_purged(db, row["id"])
