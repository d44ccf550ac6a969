"""What one upload authorisation costs the API to sign, for each way of making the store enforce
the upload's size, side by side in one run (`python -m bench.presign`, and part of `make bench`).

- PUT URL as before: Content-Type and If-None-Match signed, any length accepted;
- PUT URL as shipped: Content-Length signed as well, so the store refuses any other length;
- POST policy (content-length-range) signed by minio-py, which derives the signing key per call;
- the same POST policy signed with imgpipe's cached signing key, the fair comparison;
- a result URL (one of the four or more a /results answer holds) as before, and as shipped: signed
  by the read identity and naming the type, disposition, encoding and caching the store answers with.

Pure computation: no server is needed. `--quick` takes fewer calls per round.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import statistics
import time
from datetime import datetime, timedelta, timezone

from minio import Minio
from minio.datatypes import PostPolicy

from imgpipe.presign import ALGORITHM, Credentials, _signing_key, presign
from imgpipe.records import original_response_headers
from imgpipe.settings import Settings
from imgpipe.storage import Storage
from imgpipe.store_identities import READ

ENDPOINT = "http://127.0.0.1:9000"
BUCKET = "uploads"
KEY = "originals/0123456789abcdef0123456789abcdef.jpg"
SIZE = 3_145_728
CREDENTIALS = Credentials("minioadmin", "minioadmin", "us-east-1")


def put_before(now: datetime) -> str:
    return presign("PUT", ENDPOINT, BUCKET, KEY, credentials=CREDENTIALS, now=now, expires=900,
                   headers={"Content-Type": "image/jpeg", "If-None-Match": "*"})


def put_shipped(now: datetime) -> str:
    return presign("PUT", ENDPOINT, BUCKET, KEY, credentials=CREDENTIALS, now=now, expires=900,
                   headers={"Content-Type": "image/jpeg", "If-None-Match": "*", "Content-Length": str(SIZE)})


_CLIENT = Minio("127.0.0.1:9000", access_key=CREDENTIALS.access_key, secret_key=CREDENTIALS.secret_key,
                secure=False, region=CREDENTIALS.region)


def post_policy_minio(now: datetime) -> dict:
    policy = PostPolicy(BUCKET, now + timedelta(seconds=900))
    policy.add_equals_condition("key", KEY)
    policy.add_equals_condition("Content-Type", "image/jpeg")
    policy.add_content_length_range_condition(SIZE, SIZE)
    return _CLIENT.presigned_post_policy(policy)


def post_policy_cached_key(now: datetime) -> dict:
    credential = f"{CREDENTIALS.access_key}/{now:%Y%m%d}/{CREDENTIALS.region}/s3/aws4_request"
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    document = {
        "expiration": (now + timedelta(seconds=900)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": [["eq", "$bucket", BUCKET], ["eq", "$key", KEY], ["eq", "$Content-Type", "image/jpeg"],
                       ["content-length-range", SIZE, SIZE], ["eq", "$x-amz-algorithm", ALGORITHM],
                       ["eq", "$x-amz-credential", credential], ["eq", "$x-amz-date", amz_date]],
    }
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    signature = hmac.new(_signing_key(CREDENTIALS, now), policy.encode(), hashlib.sha256).hexdigest()
    return {"key": KEY, "Content-Type": "image/jpeg", "policy": policy, "x-amz-algorithm": ALGORITHM,
            "x-amz-credential": credential, "x-amz-date": amz_date, "x-amz-signature": signature}


DERIVATIVE_KEY = "resized/0123456789abcdef0123456789abcdef.jpg"
_ROW = {"content_type": "image/jpeg", "filename": "holiday photo.jpg"}
_STORAGE = Storage(Settings(), READ)


def results_before(now: datetime) -> list[str]:
    """The original's URL and one derivative's, as they were signed before the store identities."""
    original = {f"response-{name.lower()}": value for name, value in original_response_headers(_ROW).items()}
    return [presign("GET", ENDPOINT, BUCKET, KEY, credentials=CREDENTIALS, now=now, expires=3600, extra_query=original),
            presign("GET", ENDPOINT, BUCKET, DERIVATIVE_KEY, credentials=CREDENTIALS, now=now, expires=3600)]


def results_shipped(now: datetime) -> list[str]:
    return [_STORAGE.presign_get(KEY, 3600, now, original_response_headers(_ROW)),
            _STORAGE.presign_get(DERIVATIVE_KEY, 3600, now)]


VARIANTS = {
    "PUT, Content-Type + If-None-Match (before)": put_before,
    "PUT, + Content-Length (shipped)": put_shipped,
    "POST policy, minio-py": post_policy_minio,
    "POST policy, cached signing key": post_policy_cached_key,
    "GET original + derivative, before": results_before,
    "GET original + derivative, overrides (shipped)": results_shipped,
}


def measure(calls: int = 5000, rounds: int = 5) -> dict[str, float]:
    """Median microseconds per signature of each variant, the variants taking turns each round."""
    now = datetime.now(timezone.utc)
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name, sign in VARIANTS.items():
            began = time.perf_counter()
            for _ in range(calls):
                sign(now)
            samples[name].append((time.perf_counter() - began) / calls * 1e6)
    return {name: round(statistics.median(values), 1) for name, values in samples.items()}


if __name__ == "__main__":
    import sys

    for name, micros in (measure(calls=1000) if "--quick" in sys.argv[1:] else measure()).items():
        print(f"{micros:8.1f} µs  {name}")
