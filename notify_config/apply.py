"""Apply the bucket, its notification and its delivery policy to a running MinIO, changing
nothing when they are already right, so it is safe to run on every start."""

from __future__ import annotations

import json
import logging
import time

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

from notify_config.definition import CONFIG_ID, PUBLIC_READ_SID, QueueRule, desired_rule, public_read_statement

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


def apply(client: Minio, bucket: str, rule: QueueRule | None = None, *, public_prefixes: list[str] = (),
          wait: float = 15.0) -> list[str]:
    """Make the bucket, its notification and its policy what they should be; return what was changed.

    `public_prefixes` are the derivative prefixes anyone may read (IMGPIPE_DELIVERY=public); none
    (private) removes that permission, so switching back to private closes the door.

    A MinIO that has just started may answer 503 for a moment, and refuses a rule for a
    notification target it has not connected yet: both are retried for up to `wait` seconds.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            return _apply(client, bucket, rule or desired_rule()) + _apply_policy(client, bucket, list(public_prefixes))
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


def _statements(client: Minio, bucket: str) -> list[dict]:
    try:
        return json.loads(client.get_bucket_policy(bucket))["Statement"]
    except S3Error as error:
        if error.code == "NoSuchBucketPolicy":
            return []
        raise


def _same(statement: dict, other: dict) -> bool:
    """Whether two statements grant the same (MinIO gives a policy back in its own spelling)."""
    def grant(item: dict) -> tuple:
        actions = item["Action"] if isinstance(item["Action"], list) else [item["Action"]]
        resources = item["Resource"] if isinstance(item["Resource"], list) else [item["Resource"]]
        return item["Effect"], sorted(actions), sorted(resources)
    return grant(statement) == grant(other)


def _apply_policy(client: Minio, bucket: str, public_prefixes: list[str]) -> list[str]:
    """The bucket's anonymous read of the derivative prefixes, set or removed; any statement of
    the operator's own is left as it is."""
    current = _statements(client, bucket)
    ours = [statement for statement in current if statement.get("Sid") == PUBLIC_READ_SID]
    others = [statement for statement in current if statement.get("Sid") != PUBLIC_READ_SID]
    wanted = [public_read_statement(bucket, public_prefixes)] if public_prefixes else []
    if len(ours) == len(wanted) and all(map(_same, ours, wanted)):
        return []
    if others or wanted:
        client.set_bucket_policy(bucket, json.dumps({"Version": "2012-10-17", "Statement": others + wanted}))
    else:
        client.delete_bucket_policy(bucket)
    change = (f"set anonymous read on {', '.join(public_prefixes)}" if wanted
              else "removed anonymous read of the derivatives")
    log.info("%s", change)
    return [change]
