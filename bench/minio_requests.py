"""How many requests MinIO itself has answered, by S3 API, from its Prometheus endpoint.

Counting on the server sees every request of the processes as they run, without wrapping any
client. The v3 endpoint is read fresh at each scrape (v2 caches its figures for 10 s). It wants
a bearer token: a JWT (HS512) naming the access key as its subject, signed with the secret key,
which is what `mc admin prometheus generate` makes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.request
from collections import Counter

from imgpipe.settings import Settings

_SAMPLE = r'^minio_api_requests_{counter}\{{name="([^"]+)"[^}}]*\}}\s+([0-9.e+]+)$'


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def metrics_token(access_key: str, secret_key: str, ttl: int = 3600) -> str:
    header = _b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"exp": int(time.time()) + ttl, "sub": access_key, "iss": "prometheus"}).encode())
    signature = _b64(hmac.new(secret_key.encode(), header + b"." + claims, hashlib.sha512).digest())
    return (header + b"." + claims + b"." + signature).decode()


def request_counts(settings: Settings, counter: str = "total") -> Counter:
    """Requests answered so far by this MinIO server, keyed by API (HeadObject, ListObjectsV2, …);
    `counter` picks another of MinIO's per-API counters (errors_total, canceled_total, …)."""
    sample = re.compile(_SAMPLE.format(counter=counter))
    request = urllib.request.Request(
        f"{settings.s3_endpoint_url}/minio/metrics/v3/api/requests",
        headers={"Authorization": f"Bearer {metrics_token(settings.s3_access_key, settings.s3_secret_key)}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    counts = Counter()
    for line in text.splitlines():
        match = sample.match(line)
        if match:
            counts[match.group(1)] += int(float(match.group(2)))
    return counts
