"""Every Redis client imgpipe makes comes from here.

The password travels inside REDIS_URL (`redis://:<password>@host:port/0`), so a client built
from the settings authenticates wherever it runs; what differs between uses is how long a
client may wait, named once below rather than repeated at each call site.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from rq.defaults import DEFAULT_WORKER_TTL

from imgpipe.settings import Settings

# How long an RQ worker's BLPOP blocks: RQ's dequeue_timeout for its default worker_ttl.
WORKER_BLOCK_SECONDS = max(1, DEFAULT_WORKER_TTL - 15)


@dataclass(frozen=True)
class Timeouts:
    """Seconds a client waits for a reply and for a connection, and how often it checks an idle
    connection is still alive (0: never). A client that blocks on purpose (BLPOP, BLMOVE) waits
    for a reply longer than it blocks, or every quiet queue would read as a lost Redis."""

    reply: float
    connect: float
    health_check: int = 0


USES = {
    # A request handler: a slow Redis must not hold a request (or /healthz) for long.
    "api": Timeouts(reply=2, connect=2),
    # The API's rate limits, asked on every request: past this the process counts on its own.
    "limits": Timeouts(reply=1, connect=1),
    # The relay blocks in BLMOVE for a second at a time; a reply later than this is a lost Redis.
    "relay": Timeouts(reply=10, connect=3, health_check=15),
    # An RQ worker blocks in BLPOP for WORKER_BLOCK_SECONDS; ten more, as RQ itself would set
    # (it raises a lower one), and a Redis silent past that is a lost one.
    "worker": Timeouts(reply=WORKER_BLOCK_SECONDS + 10, connect=5, health_check=15),
    # What a job enqueues from inside a worker (webhook deliveries).
    "jobs": Timeouts(reply=10, connect=3),
    # The supervisor's look at dead workers' jobs: it must never hang the supervisor.
    "supervisor": Timeouts(reply=5, connect=5),
    # Commands run by hand (`imgpipe reprocess`), the benchmarks and the tests.
    "cli": Timeouts(reply=10, connect=3),
    # The local stack's readiness probe, asked many times a second while Redis starts.
    "probe": Timeouts(reply=1, connect=1),
}


def redis_client(settings: Settings, use: str) -> Redis:
    """A client for REDIS_URL with the timeouts of `use` (a key of USES)."""
    timeouts = USES[use]
    return Redis.from_url(settings.redis_url, socket_timeout=timeouts.reply,
                          socket_connect_timeout=timeouts.connect, health_check_interval=timeouts.health_check)
