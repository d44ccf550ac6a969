"""Apply the bucket and its notification to a running MinIO, changing nothing when they are
already right, so it is safe to run on every start."""

from __future__ import annotations

import logging
import time

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

from notify_config.definition import CONFIG_ID, QueueRule, desired_rule

log = logging.getLogger(__name__)


def current_rules(client: Minio, bucket: str) -> set[QueueRule]:
    config = client.get_bucket_notification(bucket)
    return {
        QueueRule(
            arn=queue.queue,
            events=tuple(queue.events),
            prefix=queue.prefix_filter_rule.value if queue.prefix_filter_rule else "",
        )
        for queue in config.queue_config_list
    }


def apply(client: Minio, bucket: str, rule: QueueRule | None = None, *, wait: float = 15.0) -> list[str]:
    """Make the bucket and its notification what they should be; return what was changed.

    A MinIO that has just started may answer 503 for a moment, and refuses a rule for a
    notification target it has not connected yet: both are retried for up to `wait` seconds.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            return _apply(client, bucket, rule or desired_rule())
        except (S3Error, urllib3.exceptions.HTTPError) as error:
            if not _still_starting(error) or time.monotonic() > deadline:
                raise
            log.info("MinIO is still starting (%s); retrying", error)
            time.sleep(0.2)


def _still_starting(error: Exception) -> bool:
    if isinstance(error, S3Error):
        return error.code == "InvalidArgument" and "ARN" in str(error)
    return True


def _apply(client: Minio, bucket: str, rule: QueueRule) -> list[str]:
    changes = []
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
        changes.append(f"created bucket {bucket}")
    if current_rules(client, bucket) != {rule}:
        config = NotificationConfig(queue_config_list=[
            QueueConfig(
                queue=rule.arn,
                events=list(rule.events),
                config_id=CONFIG_ID,
                prefix_filter_rule=PrefixFilterRule(rule.prefix),
            )
        ])
        client.set_bucket_notification(bucket, config)
        changes.append(f"set notification {', '.join(rule.events)} on {rule.prefix} -> {rule.arn}")
    for change in changes:
        log.info("%s", change)
    return changes
