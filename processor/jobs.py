"""Putting uploads on the RQ queue: one job per upload at a time, however often asked.

The relay, its sweeper and the reaper may all ask for the same upload (duplicate events, a
re-driven in-flight event, a row that looked stuck). The job id is derived from the upload id
and enqueued as unique, so a job already waiting or running absorbs the repeat; a job that
has ended is replaced, and the row's own state decides whether the new one does any work.
"""

from __future__ import annotations

from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

JOB_TIMEOUT = 120
# RQ re-runs a job that raised or whose process died. The row's attempt count, not RQ, decides
# when to give up on an image; these retries mostly carry jobs through a storage outage.
RETRY_INTERVALS = [1, 5, 15, 30, 60, 120]
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.CREATED}


def job_id_for(upload_id: str) -> str:
    return f"process-{upload_id}"


def enqueue_processing(queue: Queue, upload_id: str, *, replace_started: bool = False) -> bool:
    """Make sure a job will process this upload; False when one was already on its way.

    replace_started is for a row stuck in processing past its deadline: a job still marked
    started then belongs to a worker that died, and waiting for it would wait forever.
    """
    return enqueue_once(queue, "processor.tasks.process_upload", upload_id, job_id=job_id_for(upload_id),
                        timeout=JOB_TIMEOUT, retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
                        description=f"process upload {upload_id}", replace_started=replace_started)


def enqueue_once(queue: Queue, function: str, upload_id: str, *, job_id: str, timeout: int, retry: Retry,
                 description: str, replace_started: bool = False, args: tuple | None = None) -> bool:
    """Enqueue function(upload_id) (or function(*args)) as job `job_id` unless a live job of that
    id exists (False then); an ended one is replaced."""
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
                job = Job.fetch(job_id, connection=queue.connection)
            except NoSuchJobError:
                continue
            status = job.get_status(refresh=False)
            if status in _LIVE and not (replace_started and status == JobStatus.STARTED):
                return False
            job.delete()
    return False
