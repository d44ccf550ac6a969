"""Presigned S3 URLs (AWS Signature Version 4, query-string form) that can sign headers.

minio-py's presigning signs only the host. imgpipe's upload URLs also sign `Content-Type`
(a client cannot upload under a type it did not declare) and `If-None-Match: *` (the original
is written once: a second PUT to the same URL is refused, so the derivatives always match the
original). Pure computation: no clock or network inside, the caller passes the moment.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    region: str


def presign(method: str, endpoint: str, bucket: str, key: str, *, credentials: Credentials, now: datetime,
            expires: int, headers: dict[str, str] | None = None, extra_query: dict[str, str] | None = None) -> str:
    """A URL for `method` on bucket/key that is valid for `expires` seconds from `now`.

    Every header in `headers` is signed: the request must carry it with exactly that value.
    `extra_query` adds parameters to the URL, signed too, such as S3's `response-content-type`.
    """
    parts = urlsplit(endpoint)
    base_path = parts.path.rstrip("/")
    path = f"{base_path}/{_encode(bucket)}/{_encode(key, safe='/')}"
    signed = {name.lower(): " ".join(value.split()) for name, value in (headers or {}).items()}
    signed["host"] = parts.netloc
    signed_names = ";".join(sorted(signed))
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{now:%Y%m%d}/{credentials.region}/s3/aws4_request"
    query = {
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{credentials.access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": signed_names,
        **(extra_query or {}),
    }
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in sorted(signed))
    canonical_request = "\n".join(
        [method, path, canonical_query, canonical_headers, signed_names, UNSIGNED_PAYLOAD])
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    signature = hmac.new(_signing_key(credentials, now), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{parts.scheme}://{parts.netloc}{path}?{canonical_query}&X-Amz-Signature={signature}"


def _signing_key(credentials: Credentials, now: datetime) -> bytes:
    return _signing_key_of_day(credentials, now.strftime("%Y%m%d"))


@functools.lru_cache(maxsize=8)
def _signing_key_of_day(credentials: Credentials, day: str) -> bytes:
    """The same all day: four HMACs saved on every URL the API hands out."""
    key = f"AWS4{credentials.secret_key}".encode()
    for part in (day, credentials.region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@functools.lru_cache(maxsize=256)
def _encode(value: str, safe: str = "") -> str:
    """S3's URI encoding: everything but unreserved characters (and `safe`) percent-encoded.
    Cached: apart from the key, a URL's parts repeat from one URL to the next."""
    return quote(value, safe="-_.~" + safe)
