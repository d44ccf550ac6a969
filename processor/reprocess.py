"""The reprocess job: bring one stored upload's objects in line with the presets in use.

`imgpipe reprocess` enqueues one job per upload that needs it, on a queue of its own that
workers take last (imgpipe.queues). A job re-reads the row and does only what is still
missing, so running one twice, or after the command was stopped and started again, makes
nothing twice. It goes through the processing job's lifecycle (processor.tasks.make_and_record),
giving it only what differs: the presets still missing, the objects to prune, its helper and
its deference to new uploads. New objects are written first, under new keys (each carries its
content's version, so no URL handed out ever serves other bytes); pruned ones are deleted next;
the objects the new ones replace are noted as superseded, and the row is updated last, in one
UPDATE, so the row never names an object that is not there yet, and a job cut short is simply
done again. Superseded objects keep serving their URLs until processor.release removes them,
IMGPIPE_SUPERSEDED_GRACE after nothing points at them any more.

A job gives way to new uploads: before each of its steps (reading the original, writing,
deleting, updating the row) it waits while an image job waits or runs, and its image work runs
in a helper process at the lowest CPU priority (nice 19) that is stopped outright meanwhile.
New uploads get the CPU first, and a reprocess of any size takes only what they leave; a job
waits GIVE_WAY_MAX_SECONDS at most in all, so a long burst of uploads gets its worker back.
One helper per worker process, forked with its first job.

An upload that failed for a reason of this side's (`internal`: the attempts ran out, say over
a bug since fixed) may be tried again while its original is kept (the sweeper removes a failed
upload's original after IMGPIPE_ORPHAN_MIN_AGE; a refused one is removed at once): if it now
succeeds it becomes completed (judged by the moderation model, as a new upload is), the one way
a final status changes; if not, it keeps its status with the newer reason. No webhook is sent
for a reprocess.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
import signal
import time

from rq import Queue, get_current_job

from imgpipe import uploads
from imgpipe.error_codes import UploadFailure
from imgpipe.processes import die_with_parent
from imgpipe.queues import image_jobs_busy, make_queue
from imgpipe.reprocess_work import work_for
from processor.imaging import Derivatives, make_derivatives, prepare_process
from processor.jobs import PRESETS_DIFFER
from processor.resources import resources
from processor.tasks import Work, everything_asked, make_and_record

log = logging.getLogger(__name__)

# What a job answers, for the command's summary.
REMADE, PRUNED, PLACEHOLDER_ADDED, COMPLETED, STILL_FAILED, REFUSED, NO_ORIGINAL, CURRENT, SKIPPED = (
    "remade", "pruned", "placeholder added", "completed", "still failed", "refused", "no original", "current",
    "skipped")
ANSWERS_TTL = 24 * 3600
HELPER_NICENESS = 19
GIVE_WAY_CHECK_SECONDS = 0.01  # how often a reprocess job looks whether an image job has come
# The longest a reprocess job waits for image jobs, all its pauses together: it holds a worker
# meanwhile, which a long burst of uploads should get back. Past it the job goes on at nice 19.
GIVE_WAY_MAX_SECONDS = 2.0


def reprocess_upload(upload_id: str, presets_version: str, only: list[str] | None, prune: bool,
                     answers_key: str) -> str:
    """One upload brought in line with the presets; answers what was done (REMADE, ...), also as
    [upload_id, answer] pushed on the Redis list `answers_key`, which the command waits on.

    A worker whose presets are not the ones the command read answers PRESETS_DIFFER and does
    nothing: objects made by other presets than asked would be recorded under the wrong versions.
    """
    answer = _reprocess(upload_id, presets_version, only, prune)
    connection = get_current_job().connection
    connection.rpush(answers_key, json.dumps([upload_id, answer]))
    connection.expire(answers_key, ANSWERS_TTL)
    return answer


def _reprocess(upload_id: str, presets_version: str, only: list[str] | None, prune: bool) -> str:
    res = resources()
    presets = res.settings.derivative_presets
    if presets.version != presets_version:
        log.warning("upload %s: not reprocessed, this worker's presets are version %s, the command's %s",
                    upload_id, presets.version, presets_version)
        return PRESETS_DIFFER
    row = uploads.get_upload(res.db, upload_id)
    if row is None or row["status"] not in (uploads.COMPLETED, uploads.FAILED):
        return SKIPPED
    needed = work_for(row, presets, only=tuple(only) if only else None, prune=prune)
    if needed is None:
        return CURRENT
    way = GiveWay(make_queue(get_current_job().connection, res.settings))
    how = {"derive": functools.partial(derive_in_background, way=way), "give_way": way.wait}
    if row["status"] == uploads.FAILED:  # tried again from its original, as a new upload is made
        work = everything_asked(row, presets, **how)
    else:
        objects = uploads.derivative_objects(row)
        work = Work(tuple(presets.get(name) for name in needed.make), needed.after,
                    delete=tuple(objects[name][fmt].key for name, fmt in needed.delete), **how)
    ended = make_and_record(res, row, work)
    if ended.status not in (uploads.COMPLETED, uploads.FAILED):  # deleted meanwhile
        return SKIPPED
    if row["status"] == uploads.FAILED:
        if ended.status == uploads.COMPLETED:
            log.info("upload %s: completed on reprocessing after it had failed", upload_id)
            return COMPLETED
        return NO_ORIGINAL if ended.code == UploadFailure.MISSING_ORIGINAL else STILL_FAILED
    if ended.status == uploads.FAILED:
        return REFUSED
    log.info("upload %s: reprocessed (made %s, deleted %s)", upload_id, ", ".join(needed.make) or "nothing",
             ", ".join(f"{name}/{fmt}" for name, fmt in needed.delete) or "nothing")
    return REMADE if needed.make else PRUNED if needed.delete else PLACEHOLDER_ADDED


class GiveWay:
    """A reprocess job's deference to new uploads: how long it has waited for image jobs so far."""

    def __init__(self, images: Queue):
        self.images = images
        self.waited = 0.0

    def busy(self) -> bool:
        """Whether the job should hold still now: an image job waits or runs, and the job has
        not yet waited GIVE_WAY_MAX_SECONDS in all."""
        return self.waited < GIVE_WAY_MAX_SECONDS and image_jobs_busy(self.images)

    def wait(self) -> None:
        """Hold still while busy()."""
        while self.busy():
            time.sleep(GIVE_WAY_CHECK_SECONDS)
            self.waited += GIVE_WAY_CHECK_SECONDS


class HelperDied(Exception):
    """The helper process ended in the middle of a derivation (the OOM killer, say): RQ retries the job."""


class Helper:
    """A process of this worker's that runs make_derivatives for its reprocess jobs at nice
    HELPER_NICENESS, and is stopped (SIGSTOP) while new uploads' image jobs wait or run.

    Forked from the worker (the image code already imported), it dies with it, however the
    worker ends.
    """

    def __init__(self):
        # A no-op in a worker, which did it at start; anywhere else the fork would copy image
        # thread pools whose threads the helper does not have, and its first derivation would wait forever.
        prepare_process()
        context = multiprocessing.get_context("fork")
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, os.getpid()), daemon=True,
                                       name="imgpipe-reprocess-helper")
        self.process.start()
        theirs.close()
        self.parent = os.getpid()

    def derive(self, data: bytes, options: dict, way: GiveWay) -> Derivatives:
        """make_derivatives(data, **options) in the helper, stopped whenever `way.busy()` says so."""
        self.connection.send((data, options))
        paused = False
        try:
            while not self.connection.poll(GIVE_WAY_CHECK_SECONDS):
                if not self.process.is_alive():
                    raise HelperDied(f"the reprocess helper ended ({self.process.exitcode})")
                if paused:
                    way.waited += GIVE_WAY_CHECK_SECONDS
                if way.busy() != paused:
                    paused = not paused
                    os.kill(self.process.pid, signal.SIGSTOP if paused else signal.SIGCONT)
        finally:
            if paused:
                os.kill(self.process.pid, signal.SIGCONT)
        succeeded, value = self.connection.recv()
        if succeeded:
            return value
        raise value


def _serve(connection, worker_pid: int) -> None:
    """The helper's life: at the lowest priority, leaving signals to the worker, killed with it
    (Linux's parent-death signal), making derivatives until its pipe closes."""
    os.nice(HELPER_NICENESS)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not die_with_parent(worker_pid):  # the worker died before the signal was asked for
        return
    while True:
        try:
            data, options = connection.recv()
        except EOFError:
            return
        try:
            connection.send((True, make_derivatives(data, **options)))
        except Exception as error:
            connection.send((False, error))


_helper: Helper | None = None


def derive_in_background(data: bytes, *, way: GiveWay, **options) -> Derivatives:
    """make_derivatives(data, **options) in this worker's helper, giving way to image jobs."""
    global _helper
    if _helper is None or _helper.parent != os.getpid() or not _helper.process.is_alive():
        _helper = Helper()
    return _helper.derive(data, options, way)
