"""Names in Redis that the API, the relay and the workers all use: the RQ queues and the relay's lists.

Kept on the shared floor so the API can report queue depths and relay counters without
importing the relay or the job code.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry

from imgpipe.settings import Settings


def make_queue(connection: Redis, settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=connection)


def make_webhook_queue(connection: Redis, settings: Settings) -> Queue:
    """Webhook deliveries wait in their own queue, which workers take only when no image waits."""
    return Queue(f"{settings.queue_name}-webhooks", connection=connection)


def make_reprocess_queue(connection: Redis, settings: Settings) -> Queue:
    """`imgpipe reprocess` jobs wait in their own queue, which workers take only when no image
    and no webhook waits: new uploads always pass a reprocess, however long."""
    return Queue(f"{settings.queue_name}-reprocess", connection=connection)


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


def relayed_count_key(settings: Settings) -> str:
    """A counter of events taken off MinIO's list, for /metrics."""
    return f"{settings.events_key}:relayed"
