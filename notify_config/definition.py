"""What the bucket's notification must be (every object created under originals/ goes to the
Redis target) and, in public delivery, its policy (anyone may read the derivatives, never an
original). Plain data, so it can be compared with what the server already has."""

from __future__ import annotations

from dataclasses import dataclass

from imgpipe.keys import ORIGINALS_PREFIX, derivative_prefix

TARGET_ID = "PRIMARY"
EVENTS = ("s3:ObjectCreated:*",)
CONFIG_ID = "imgpipe-originals"


PUBLIC_READ_SID = "imgpipe-public-derivatives"


@dataclass(frozen=True)
class QueueRule:
    arn: str
    events: tuple[str, ...]
    prefix: str


def redis_target_arn(target_id: str = TARGET_ID) -> str:
    """MinIO names a Redis target this way when no region is configured."""
    return f"arn:minio:sqs::{target_id}:redis"


def desired_rule() -> QueueRule:
    return QueueRule(arn=redis_target_arn(), events=EVENTS, prefix=ORIGINALS_PREFIX)


def public_prefixes(delivery: str, preset_names: tuple[str, ...]) -> list[str]:
    """The prefixes anyone may read: every preset's in public delivery (a preset added to the
    file is opened by the next `imgpipe setup`), none in private."""
    return [derivative_prefix(name) for name in preset_names] if delivery == "public" else []


def public_read_statement(bucket: str, prefixes: list[str]) -> dict:
    """The bucket policy's statement that lets anyone GET (only GET: no listing) the objects under
    the derivative prefixes. Named by resource, prefix by prefix, so originals/ is never among
    them, whatever else the bucket holds."""
    if any(prefix.startswith(ORIGINALS_PREFIX) or not prefix.endswith("/") for prefix in prefixes):
        raise ValueError(f"not derivative prefixes: {prefixes!r}")
    return {"Sid": PUBLIC_READ_SID, "Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:GetObject"],
            "Resource": sorted(f"arn:aws:s3:::{bucket}/{prefix}*" for prefix in prefixes)}


def minio_server_env(redis_address: str, events_key: str, redis_password: str = "",
                     queue_dir: str = "", sync_events: bool = True, redis_user: str = "") -> dict[str, str]:
    """Environment for the MinIO server that defines the Redis target the rule points at.

    Synchronous events: MinIO pushes an upload's event to Redis before it answers the PUT, so
    an acknowledged upload's event is never only in MinIO's memory when MinIO dies. Measured
    (docs/design/durability.md): +0.05 ms on the median PUT, below the machine's noise; with Redis'
    append-only file every event of the uploads answered 200 survived a SIGKILL of both in
    three runs out of three, where asynchronous delivery lost 15 of 60 in one.

    No queue_dir by default: with one, MinIO parks every event on disk and replays it up to 3 s
    later even when Redis is up. The relay's sweeper already finds uploads whose event never
    arrived, so the fast path stays fast and nothing is lost. A queue_dir (an absolute path)
    is the optional second net: events raised while Redis is down arrive once it is back.

    The target logs in as the processes do, with REDIS_URL's password (and its ACL user, when
    it names one): Redis asks every client for it (docs/security/redis.md).
    """
    env = {
        f"MINIO_NOTIFY_REDIS_ENABLE_{TARGET_ID}": "on",
        f"MINIO_NOTIFY_REDIS_ADDRESS_{TARGET_ID}": redis_address,
        f"MINIO_NOTIFY_REDIS_KEY_{TARGET_ID}": events_key,
        f"MINIO_NOTIFY_REDIS_FORMAT_{TARGET_ID}": "access",
        "MINIO_API_SYNC_EVENTS": "on" if sync_events else "off",
    }
    if redis_password:
        env[f"MINIO_NOTIFY_REDIS_PASSWORD_{TARGET_ID}"] = redis_password
    if redis_user:
        env[f"MINIO_NOTIFY_REDIS_USER_{TARGET_ID}"] = redis_user
    if queue_dir:
        env[f"MINIO_NOTIFY_REDIS_QUEUE_DIR_{TARGET_ID}"] = queue_dir
    return env
