"""`imgpipe reprocess`: re-make stored uploads' objects after the presets change.

The command reads the rows itself, picks the uploads whose objects differ from what the
presets make now (imgpipe.reprocess_work.work_for), and feeds their jobs to the reprocess queue
a few at a time (`--jobs`, 1 by default), so new uploads pass a reprocess of any size, three
ways over: workers take that queue only when no image or webhook waits; no new reprocess job
is handed out while an image job waits or runs, and with one job out at a time the other
workers stay free; and the image work of a reprocess job runs at the lowest CPU priority and
is paused while an image job runs (processor.reprocess), so one that is under way when an
upload comes in gives way to it. The row is the cursor: a finished job leaves its row current,
so a run stopped with Ctrl-C (its queued job is withdrawn) is resumed by running the same
command again, which finds only what is still to do.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field

import redis
from rq import Queue
from rq.job import JobStatus

from imgpipe import uploads
from imgpipe.presets import Presets
from imgpipe.queues import fetch_jobs, image_jobs_busy
from imgpipe.reprocess_work import work_for
from processor.jobs import PRESETS_DIFFER, enqueue_reprocess, reprocess_job_id

ANSWER_WAIT_SECONDS = 1  # how long to wait for an answer before looking for failed jobs
HOLD_BACK_SECONDS = 0.02  # how often to look again while image jobs hold the next job back
ERROR = "error"
_ENDED = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


@dataclass(frozen=True)
class Selection:
    """Which stored uploads to look at, and what to do to them."""

    statuses: tuple[str, ...] = (uploads.COMPLETED,)
    created_from: str | None = None  # ISO timestamps, as the rows hold them; the end is excluded
    created_before: str | None = None
    only: tuple[str, ...] | None = None  # presets to make again; None: every one
    prune: bool = False


@dataclass
class Outcome:
    """What became of the uploads a run took on."""

    total: int
    counts: collections.Counter = field(default_factory=collections.Counter)
    stopped: bool = False
    presets_differ: bool = False

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        return not (self.stopped or self.presets_differ or self.counts[ERROR])

    def summary(self) -> str:
        return ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.counts.items())) or "nothing done"


def uploads_to_reprocess(db, presets: Presets, selection: Selection, page: int = 500) -> list[str]:
    """Ids of the selected uploads whose objects are not what the presets make, oldest first."""
    ids, after = [], None
    while rows := uploads.final_uploads(db, selection.statuses, created_from=selection.created_from,
                                        created_before=selection.created_before, after=after, limit=page):
        ids += [row["id"] for row in rows if work_for(row, presets, only=selection.only, prune=selection.prune)]
        after = rows[-1]["created_at"], rows[-1]["id"]
    return ids


def reprocess(queue: Queue, images: Queue, answers_key: str, upload_ids: list[str], presets_version: str,
              selection: Selection, *, jobs: int, on_progress=lambda outcome: None) -> Outcome:
    """Run the uploads' jobs, at most `jobs` out at once and none handed out while an image job
    waits or runs in `images`, until all have answered on the list `answers_key`; Ctrl-C (or
    workers with other presets) stops the run after withdrawing the jobs not started yet.

    The command blocks on the answers list rather than polling the jobs, so it costs next to
    no CPU while it waits; the jobs themselves are looked at only when no answer came for a
    while, to notice one that failed for good (it has no answer to give).
    """
    outcome = Outcome(total=len(upload_ids))
    waiting = collections.deque(upload_ids)
    out: dict[str, str] = {}  # job id -> upload id
    only = list(selection.only) if selection.only else None
    connection = queue.connection
    try:
        while waiting or out:
            held_back = False
            while waiting and len(out) < jobs:
                if image_jobs_busy(images):
                    held_back = True
                    break
                upload_id = waiting.popleft()
                enqueue_reprocess(queue, upload_id, presets_version, only, selection.prune, answers_key)
                out[reprocess_job_id(upload_id)] = upload_id
            answered = connection.blpop([answers_key], timeout=HOLD_BACK_SECONDS if held_back or not out
                                        else ANSWER_WAIT_SECONDS)
            if answered is not None:
                upload_id, answer = json.loads(answered[1])
                ended = [(reprocess_job_id(upload_id), answer)]
            else:
                ended = _failed(connection, list(out))
            for job_id, answer in ended:
                if job_id not in out:
                    continue
                if answer == PRESETS_DIFFER:
                    outcome.presets_differ = True
                    _withdraw(connection, out)
                    return outcome
                del out[job_id]
                outcome.counts[answer] += 1
                on_progress(outcome)
    except KeyboardInterrupt:
        _withdraw(connection, out)
        outcome.stopped = True
    return outcome


def _failed(connection: redis.Redis, job_ids: list[str]) -> list[tuple[str, str]]:
    """(job id, ERROR) of the jobs that ended without an answer: failed after their retries,
    stopped, or gone."""
    jobs = fetch_jobs(connection, job_ids) if job_ids else []
    return [(job_id, ERROR) for job_id, job in zip(job_ids, jobs)
            if job is None or job.get_status(refresh=False) in _ENDED]


def _withdraw(connection: redis.Redis, out: dict[str, str]) -> None:
    """Take back the jobs still waiting in the queue; one already running finishes on its own."""
    for job in fetch_jobs(connection, list(out)):
        if job is not None and job.get_status(refresh=False) == JobStatus.QUEUED:
            job.cancel()
