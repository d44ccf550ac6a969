"""The bucket, through minio-py.

Two clients: one for the endpoint this process talks to, and one whose endpoint is the
host clients reach (S3_BASE_URL), because a presigned URL's signature covers the host.
Both are given the region so presigning is pure computation, never a network call.
"""

from __future__ import annotations

import io
from datetime import timedelta
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error

from imgpipe.settings import Settings

_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}


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
        self.presigner = (
            make_client(settings.public_s3_url, settings)
            if settings.public_s3_url != settings.s3_endpoint_url
            else self.client
        )

    def presign_put(self, key: str, ttl: int) -> str:
        return self.presigner.presigned_put_object(self.bucket, key, expires=timedelta(seconds=ttl))

    def presign_get(self, key: str, ttl: int) -> str:
        return self.presigner.presigned_get_object(self.bucket, key, expires=timedelta(seconds=ttl))

    def size_of(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""
        try:
            return self._call(self.client.stat_object, self.bucket, key).size
        except S3Error as error:
            if error.code in _NOT_FOUND:
                return None
            raise

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

    def check(self) -> None:
        """Raise StorageUnavailable unless the bucket answers."""
        if not self._call(self.client.bucket_exists, self.bucket):
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
