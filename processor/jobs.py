"""Every enqueueing of imgpipe's jobs: processing, reprocessing and webhook delivery, one job
per upload and kind at a time, however often asked. The jobs themselves run elsewhere
(processor.tasks, processor.reprocess, processor.webhooks); this module names them without
importing them, so whoever enqueues (the relay, the supervisor, `imgpipe reprocess`, a job that
makes a row final) loads neither the image code nor a worker's resources.

The relay's events, its sweep and the supervisor may all ask for the same upload (duplicate
events, a re-driven in-flight event, a row that looked stuck, a worker that died). The job id
is derived from the upload id and enqueued as unique, so a job already waiting or running
absorbs the repeat; a job that has ended, or that has looked started for longer than a live one
can, is replaced, and the row's own state decides whether the new one does any work.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from imgpipe.queues import fetch_job
from imgpipe.settings import Settings

JOB_TIMEOUT = 120
# RQ re-runs a job that raised or whose process died. The row's attempt count, not RQ, decides
# when to give up on an image; these retries mostly carry jobs through a storage outage.
RETRY_INTERVALS = [1, 5, 15, 30, 60, 120]
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.CREATED}
# A worker marks the job it takes off the queue started at once; one still queued in its own
# record but on no queue this long after it was enqueued was taken by a worker that died first.
TAKEN_AND_LOST_AFTER = timedelta(seconds=10)


# The job function, by the name a job carries; workers run no other (processor.worker).
PROCESS_UPLOAD = "processor.tasks.process_upload"


def job_id_for(upload_id: str) -> str:
    return f"process-{upload_id}"


def enqueue_processing(queue: Queue, upload_id: str, *, started_before: datetime | None = None) -> bool:
    """Make sure a job will process this upload; False when one was already on its way.

    A job still marked started since before `started_before` belongs to a worker that died
    with it (a lost host), whether or not it had moved its row to processing yet: it is
    replaced, as waiting for it would wait until RQ calls it abandoned, its timeout plus a
    minute after it began.
    """
    return enqueue_once(queue, PROCESS_UPLOAD, upload_id, job_id=job_id_for(upload_id),
                        timeout=JOB_TIMEOUT, retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
                        description=f"process upload {upload_id}", started_before=started_before)


def reprocess_job_id(upload_id: str) -> str:
    return f"reprocess-{upload_id}"


# The job function, by name: the command must not load the worker's code.
REPROCESS_UPLOAD = "processor.reprocess.reprocess_upload"
# What a reprocess job answers when its worker's presets are not the ones the command read.
PRESETS_DIFFER = "presets differ"
REPROCESS_JOB_TIMEOUT = 300
REPROCESS_RETRY_INTERVALS = [5, 30, 120]  # storage outages; an image's own problems are answers, not errors


def enqueue_reprocess(queue: Queue, upload_id: str, presets_version: str, only: list[str] | None, prune: bool,
                      answers_key: str, *, started_before: datetime | None = None) -> bool:
    """Make sure a job will bring this upload in line with the presets of `presets_version`
    (processor.reprocess.reprocess_upload); False when one was already on its way."""
    return enqueue_once(queue, REPROCESS_UPLOAD, upload_id,
                        args=(upload_id, presets_version, only, prune, answers_key), job_id=reprocess_job_id(upload_id),
                        timeout=REPROCESS_JOB_TIMEOUT,
                        retry=Retry(max=len(REPROCESS_RETRY_INTERVALS), interval=REPROCESS_RETRY_INTERVALS),
                        description=f"reprocess upload {upload_id}", started_before=started_before)


# The job function, by name; it reads the row and the settings in the worker that runs it.
DELIVER_CALLBACK = "processor.webhooks.deliver_callback"
DELIVERY_JOB_TIMEOUT = 60


def delivery_job_id(upload_id: str) -> str:
    return f"deliver-{upload_id}"


def enqueue_delivery(queue: Queue, settings: Settings, upload_id: str, *,
                     started_before: datetime | None = None) -> bool:
    """Make sure a job will deliver this upload's webhook, its tries spaced by
    IMGPIPE_WEBHOOK_RETRY_INTERVALS; a job started before `started_before` is replaced."""
    intervals = list(settings.webhook_retry_intervals)
    return enqueue_once(queue, DELIVER_CALLBACK, upload_id, job_id=delivery_job_id(upload_id),
                        timeout=DELIVERY_JOB_TIMEOUT, retry=Retry(max=len(intervals), interval=intervals),
                        description=f"deliver the webhook of upload {upload_id}", started_before=started_before)


def enqueue_once(queue: Queue, function: str, upload_id: str, *, job_id: str, timeout: int, retry: Retry,
                 description: str, started_before: datetime | None = None, args: tuple | None = None) -> bool:
    """Enqueue function(upload_id) (or function(*args)) as job `job_id` unless a live job of that
    id exists (False then); an ended one, or one started before `started_before`, is replaced."""
    for _ in range(3):
        try:
            queue.enqueue_call(
                function,
                args=args or (upload_id,),
                job_id=job_id,
                unique=True,
                timeout=timeout,
                result_ttl=60,
                failure_ttl=24 * 3600,
                retry=retry,
                description=description,
            )
            return True
        except DuplicateJobError:
            try:
                job = fetch_job(queue.connection, job_id)
            except NoSuchJobError:
                continue
            status = job.get_status(refresh=False)
            if status in _LIVE and not (status == JobStatus.STARTED and _started_before(job, started_before)
                                        or status == JobStatus.QUEUED and _taken_and_lost(queue, job)):
                return False
            job.delete()
    return False


def _taken_and_lost(queue: Queue, job: Job) -> bool:
    """A queued job that is not on its queue: a worker popped it and died (a power loss, a
    SIGKILL) before it could mark it started, so neither a registry of RQ's nor its abandoned-job
    cleanup will ever see it."""
    waited = datetime.now(timezone.utc) - (job.enqueued_at or datetime.now(timezone.utc))
    return waited > TAKEN_AND_LOST_AFTER and queue.connection.lpos(queue.key, job.id) is None


def _started_before(job: Job, moment: datetime | None) -> bool:
    return moment is not None and (job.started_at is None or job.started_at < moment)
