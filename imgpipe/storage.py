"""The bucket: object I/O through minio-py, presigned URLs for the host clients reach.

The minio-py client talks to S3_ENDPOINT_URL and is given the region, so it never asks the
server where the bucket lives. URLs handed to clients are signed for S3_BASE_URL (a
signature covers the host) by `imgpipe.presign`, which is pure computation.
"""

from __future__ import annotations

import io
import itertools
from datetime import datetime
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from imgpipe.presign import Credentials, presign
from imgpipe.settings import Settings

_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}
LIST_PAGE = 1000  # the most keys S3 answers one LIST with


class StorageUnavailable(Exception):
    """MinIO could not be reached or answered with a server error: worth retrying later."""


def make_client(url: str, settings: Settings, *, timeout: float = 10.0, retries: int = 1) -> Minio:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL for S3: {url!r}")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout),
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        maxsize=16,
    )
    return Minio(
        parts.netloc,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=parts.scheme == "https",
        region=settings.s3_region,
        http_client=http,
    )


class Storage:
    def __init__(self, settings: Settings, *, timeout: float = 10.0, retries: int = 1):
        self.bucket = settings.s3_bucket_name
        self.client = make_client(settings.s3_endpoint_url, settings, timeout=timeout, retries=retries)
        self.public_url = settings.public_s3_url
        self.credentials = Credentials(settings.s3_access_key, settings.s3_secret_key, settings.s3_region)

    def presign_put(self, key: str, headers: dict[str, str], ttl: int, now: datetime) -> str:
        """An upload URL that only accepts a PUT carrying exactly these headers."""
        return presign("PUT", self.public_url, self.bucket, key, credentials=self.credentials, now=now,
                       expires=ttl, headers=headers)

    def presign_get(self, key: str, ttl: int, now: datetime, response_headers: dict[str, str] | None = None) -> str:
        """A download URL; `response_headers` (Content-Type, Content-Disposition) are what the
        store answers with instead of the object's own, and the signature covers them."""
        query = {f"response-{name.lower()}": value for name, value in (response_headers or {}).items()}
        return presign("GET", self.public_url, self.bucket, key, credentials=self.credentials, now=now,
                       expires=ttl, extra_query=query)

    def size_of(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""
        try:
            return self._call(self.client.stat_object, self.bucket, key).size
        except S3Error as error:
            if error.code in _NOT_FOUND:
                return None
            raise

    def keys_after(self, prefix: str, after: str) -> list[str]:
        """The first page (up to LIST_PAGE) of keys under `prefix` that sort after `after`, in
        order, from one LIST request: fewer than LIST_PAGE means there are no more."""
        def first_page():
            listing = self.client.list_objects(self.bucket, prefix=prefix, recursive=True, start_after=after)
            return [item.object_name for item in itertools.islice(listing, LIST_PAGE)]
        return self._call(first_page)

    def read(self, key: str) -> bytes:
        response = self._call(self.client.get_object, self.bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self._call(self.client.put_object, self.bucket, key, io.BytesIO(data), len(data),
                   content_type=content_type)

    def remove(self, keys: list[str]) -> None:
        """Remove these objects, one request per 1000; a key that is already gone is no error."""
        def remove_all():
            return list(self.client.remove_objects(self.bucket, (DeleteObject(key) for key in keys)))
        errors = self._call(remove_all)
        if errors:
            raise StorageUnavailable(f"MinIO did not remove {len(errors)} object(s): {errors[0].code} {errors[0].name}")

    def list_after(self, prefix: str, after: str, limit: int) -> list[tuple[str, datetime]]:
        """Up to `limit` (at most 1000) keys under `prefix` that sort after `after`, with when each
        was written: one LIST request, whatever the bucket holds."""
        def first_page():
            listing = self.client.list_objects(self.bucket, prefix=prefix, recursive=True, start_after=after or None)
            return [(item.object_name, item.last_modified) for item in itertools.islice(listing, limit)]
        return self._call(first_page)

    def check(self) -> None:
        """Raise StorageUnavailable unless the bucket answers."""
        try:
            exists = self._call(self.client.bucket_exists, self.bucket)
        except S3Error as error:
            raise StorageUnavailable(f"MinIO answered {error.code}") from error
        if not exists:
            raise StorageUnavailable(f"bucket {self.bucket!r} does not exist")

    @staticmethod
    def _call(method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except S3Error as error:
            if error.code in ("InternalError", "ServiceUnavailable", "SlowDown", "XMinioServerNotInitialized"):
                raise StorageUnavailable(f"MinIO answered {error.code}") from error
            raise
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise StorageUnavailable(f"MinIO is unreachable: {error}") from error
