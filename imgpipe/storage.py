"""The bucket: object I/O through minio-py, presigned URLs for the host clients reach.

The minio-py client talks to S3_ENDPOINT_URL as one store identity (imgpipe.store_identities:
the process's own) and is given the region, so it never asks the server where the bucket lives.
URLs handed to clients are signed for S3_BASE_URL (a signature covers the host) by
`imgpipe.presign`, which is pure computation: upload URLs by the upload identity, result URLs
by the read identity, never by the root account.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.datatypes import Part as S3Part
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from imgpipe.formats import content_type
from imgpipe.keys import output_format_of
from imgpipe.multipart import Part
from imgpipe.presign import Credentials, presign
from imgpipe.settings import Settings
from imgpipe.store_identities import READ, UPLOAD

_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}
NO_SUCH_UPLOAD = "NoSuchUpload"  # a multipart upload id the store no longer has: completed or aborted
LIST_PAGE = 1000  # the most keys S3 answers one LIST with
# What every result URL makes the store answer with, whatever was stored with the object: a PUT
# may carry a Content-Encoding, a Cache-Control or a Content-Disposition its URL did not sign.
RESULT_HEADERS = {"Content-Disposition": "inline", "Content-Encoding": "identity", "Cache-Control": "private"}


class StorageUnavailable(Exception):
    """MinIO could not be reached or answered with a server error: worth retrying later."""


class TooLarge(Exception):
    """An object held more bytes than the reader would take."""


@dataclass(frozen=True)
class Stored:
    """An object's size, ETag and the headers the store answers a HEAD or a GET with (lower-case
    names: S3 answers both with the same ones)."""

    size: int
    etag: str
    headers: dict[str, str]


class Fetched:
    """An object being read: what the store said of it in the GET's answer, before any of its bytes."""

    def __init__(self, key: str, response):
        self.key = key
        self.response = response
        headers = {name.lower(): value for name, value in response.headers.items()}
        self.stored = Stored(size=int(headers["content-length"]), etag=headers.get("etag", "").strip('"'),
                             headers=headers)

    def read(self, limit: int) -> bytes:
        """The object's stored bytes as they are, undecoded whatever its Content-Encoding, and
        never more than `limit`: TooLarge past it."""
        data = Storage._call(self.response.read, limit + 1, decode_content=False)
        if len(data) > limit:
            raise TooLarge(f"{self.key} holds more than {limit} bytes")
        return data


def http_pool(*, timeout: float, retries: int) -> urllib3.PoolManager:
    """Connections to the store: every call bounded in time, server errors retried `retries` times."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout),
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        maxsize=16,
    )


def make_client(url: str, settings: Settings, role: str, *, timeout: float = 10.0, retries: int = 1) -> Minio:
    """A client for S3 at `url` that signs as the store identity `role`."""
    access_key, secret_key = settings.store_keys(role)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL for S3: {url!r}")
    http = http_pool(timeout=timeout, retries=retries)
    return Minio(
        parts.netloc,
        access_key=access_key,
        secret_key=secret_key,
        secure=parts.scheme == "https",
        region=settings.s3_region,
        http_client=http,
    )


def credentials(settings: Settings, role: str) -> Credentials:
    return Credentials(*settings.store_keys(role), settings.s3_region)


def _type_of(key: str) -> dict[str, str]:
    """The Content-Type a derivative is served as, from its key (its format is its extension)."""
    output_format = output_format_of(key)
    return {"Content-Type": content_type(output_format)} if output_format else {}


class Storage:
    """The bucket as one process sees it: its calls signed by `role`, the identity it runs as."""

    def __init__(self, settings: Settings, role: str, *, timeout: float = 10.0, retries: int = 1):
        self.bucket = settings.s3_bucket_name
        self.client = make_client(settings.s3_endpoint_url, settings, role, timeout=timeout, retries=retries)
        self.public_url = settings.public_s3_url
        self.upload_credentials = credentials(settings, UPLOAD)
        self.read_credentials = credentials(settings, READ)

    def presign_put(self, key: str, headers: dict[str, str], ttl: int, now: datetime) -> str:
        """An upload URL that only accepts a PUT carrying exactly these headers, signed by the
        identity that may do nothing but put originals."""
        return presign("PUT", self.public_url, self.bucket, key, credentials=self.upload_credentials, now=now,
                       expires=ttl, headers=headers)

    def presign_part(self, key: str, upload_id: str, number: int, length: int, ttl: int, now: datetime) -> str:
        """A URL for exactly one UploadPart: part `number` of `upload_id`, of exactly `length` bytes
        (Content-Length signed, as for a single PUT), signed by the upload identity. The part
        number and upload id are in the signed query, so the URL is good for no other request."""
        return presign("PUT", self.public_url, self.bucket, key, credentials=self.upload_credentials, now=now,
                       expires=ttl, headers={"Content-Length": str(length)},
                       extra_query={"partNumber": str(number), "uploadId": upload_id})

    # Multipart calls: minio-py keeps S3's multipart requests as its own private methods (put_object
    # uses them); these are the only place imgpipe calls them. The identity is the multipart one.

    def create_multipart(self, key: str, content_type: str) -> str:
        """Start a multipart upload of an original stored as `content_type`; returns its upload id."""
        return self._call(self.client._create_multipart_upload, self.bucket, key, {"Content-Type": content_type})

    def parts(self, key: str, upload_id: str) -> list[Part] | None:
        """Every part the store holds of the upload, in order; None when it has no such upload."""
        found, marker = [], None
        try:
            while True:
                page = self._call(self.client._list_parts, self.bucket, key, upload_id, max_parts=1000,
                                  part_number_marker=marker)
                found += [Part(part.part_number, part.size, part.etag) for part in page.parts]
                if not page.is_truncated:
                    return found
                marker = page.next_part_number_marker
        except S3Error as error:
            if error.code == NO_SUCH_UPLOAD:
                return None
            raise

    def complete_multipart(self, key: str, upload_id: str, parts: list[Part]) -> bool:
        """Join the parts into the object; False when the store no longer has the upload."""
        try:
            self._call(self.client._complete_multipart_upload, self.bucket, key, upload_id,
                       [S3Part(part.number, part.etag) for part in parts])
        except S3Error as error:
            if error.code == NO_SUCH_UPLOAD:
                return False
            raise
        return True

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the upload and every part of it; one already gone is no error."""
        try:
            self._call(self.client._abort_multipart_upload, self.bucket, key, upload_id)
        except S3Error as error:
            if error.code != NO_SUCH_UPLOAD:
                raise

    def presign_get(self, key: str, ttl: int, now: datetime, response_headers: dict[str, str] | None = None) -> str:
        """A download URL, signed by the identity that may only read.

        The store answers with RESULT_HEADERS (updated by `response_headers`, e.g. the original's
        declared type and an attachment disposition) instead of whatever was stored with the
        object, and the signature covers them: nothing a client sent along with its PUT changes
        what a browser is told."""
        answered = {**RESULT_HEADERS, **_type_of(key), **(response_headers or {})}
        query = {f"response-{name.lower()}": value for name, value in answered.items()}
        return presign("GET", self.public_url, self.bucket, key, credentials=self.read_credentials, now=now,
                       expires=ttl, extra_query=query)

    def size_of(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""
        stored = self.stat(key)
        return None if stored is None else stored.size

    def stat(self, key: str) -> Stored | None:
        """What the store keeps about an object (one HEAD), or None when it does not exist."""
        try:
            found = self._call(self.client.stat_object, self.bucket, key)
        except S3Error as error:
            if error.code in _NOT_FOUND:
                return None
            raise
        return Stored(size=found.size, etag=found.etag,
                      headers={name.lower(): value for name, value in found.metadata.items()})

    def listed_size(self, key: str) -> int | None:
        """The object's size as a LIST names it (for identities that may list but not read), or
        None when it does not exist."""
        def first():
            return next((item.size for item in self.client.list_objects(self.bucket, prefix=key)
                         if item.object_name == key), None)
        return self._call(first)

    @contextlib.contextmanager
    def fetch(self, key: str) -> Iterator[Fetched | None]:
        """One GET of the object (None when it does not exist): its headers first, its bytes
        read only if the caller wants them, so checks of what was stored cost no request of
        their own, and apply to the very bytes read (no other version can come in between).
        Bytes left unread are never transferred: the connection is closed instead."""
        try:
            response = self._call(self.client.get_object, self.bucket, key)
        except S3Error as error:
            if error.code in _NOT_FOUND:
                response = None
            else:
                raise
        if response is None:
            yield None
            return
        try:
            yield Fetched(key, response)
        finally:
            response.close()
            response.release_conn()

    def write(self, key: str, data: bytes, content_type: str, cache_control: str | None = None) -> None:
        """Store the object with its type, and the Cache-Control it is served with when it is read anonymously."""
        headers = {"Cache-Control": cache_control} if cache_control else None
        self._call(self.client.put_object, self.bucket, key, io.BytesIO(data), len(data),
                   content_type=content_type, metadata=headers)

    def remove(self, keys: list[str]) -> None:
        """Remove these objects, one request per 1000; a key that is already gone is no error."""
        def remove_all():
            return list(self.client.remove_objects(self.bucket, (DeleteObject(key) for key in keys)))
        errors = self._call(remove_all)
        if errors:
            raise StorageUnavailable(f"MinIO did not remove {len(errors)} object(s): {errors[0].code} {errors[0].name}")

    def list_after(self, prefix: str, after: str, limit: int = LIST_PAGE) -> list[tuple[str, datetime]]:
        """Up to `limit` (at most LIST_PAGE) keys under `prefix` that sort after `after`, in order,
        with when each was written: one LIST request, whatever the bucket holds; fewer than
        `limit` means there are no more."""
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
