"""Names in Redis that the API, the relay and the workers all use: the RQ queues and the relay's lists.

Kept on the shared floor so the API can report queue depths and relay counters without
importing the relay or the job code.

Every queue, every fetched job and every worker reads and writes jobs with RQ's JSON
serializer, never RQ's default (pickle): whoever can write to Redis could otherwise have any
process that reads a job run code of theirs (docs/security/redis.md).
"""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from imgpipe.settings import Settings


SERIALIZER = JSONSerializer


def make_queue(connection: Redis, settings: Settings, job_class: type[Job] = Job) -> Queue:
    return Queue(settings.queue_name, connection=connection, serializer=SERIALIZER, job_class=job_class)


def make_webhook_queue(connection: Redis, settings: Settings, job_class: type[Job] = Job) -> Queue:
    """Webhook deliveries wait in their own queue, which workers take only when no image waits."""
    return Queue(f"{settings.queue_name}-webhooks", connection=connection, serializer=SERIALIZER, job_class=job_class)


def make_reprocess_queue(connection: Redis, settings: Settings, job_class: type[Job] = Job) -> Queue:
    """`imgpipe reprocess` jobs wait in their own queue, which workers take only when no image
    and no webhook waits: new uploads always pass a reprocess, however long."""
    return Queue(f"{settings.queue_name}-reprocess", connection=connection, serializer=SERIALIZER, job_class=job_class)


def fetch_job(connection: Redis, job_id: str, job_class: type[Job] = Job) -> Job:
    """The job `job_id`, read with SERIALIZER; raises rq's NoSuchJobError when there is none."""
    return job_class.fetch(job_id, connection=connection, serializer=SERIALIZER)


def fetch_jobs(connection: Redis, job_ids: list[str]) -> list[Job | None]:
    """The jobs, read with SERIALIZER; None for each that is gone."""
    return Job.fetch_many(job_ids, connection=connection, serializer=SERIALIZER)


def image_jobs_busy(images: Queue) -> bool:
    """Whether an image job waits or runs: new uploads' work, which reprocessing gives way to."""
    return bool(images.count or StartedJobRegistry(queue=images).get_job_count(cleanup=False))


def reprocess_answers_key(settings: Settings, run: str) -> str:
    """Where one `imgpipe reprocess` run's jobs push their answers, for the command to wait on."""
    return f"{settings.queue_name}-reprocess:answers:{run}"


def inflight_key(settings: Settings) -> str:
    """Events the relay has taken off MinIO's list and not yet turned into jobs."""
    return f"{settings.events_key}:in-flight"


def rejected_key(settings: Settings) -> str:
    """Malformed events, set aside for a person to look at."""
    return f"{settings.events_key}:rejected"


def presets_version_key(settings: Settings) -> str:
    """The version of the presets the API accepts uploads by (imgpipe.presets.Presets.version),
    which a worker compares its own with before it takes a job."""
    return f"{settings.queue_name}:presets-version"


def relayed_count_key(settings: Settings) -> str:
    """A counter of events taken off MinIO's list, for /metrics."""
    return f"{settings.events_key}:relayed"
