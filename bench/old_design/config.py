"""The replaced service's settings, by the names it read them under (imgpipe kept them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Config:
    s3_endpoint_url: str
    s3_access_key: str
    s3_secret_key: str
    s3_bucket_name: str
    redis_url: str
    database_path: str

    @classmethod
    def from_env(cls) -> Config:
        return cls(os.environ["S3_ENDPOINT_URL"], os.environ["S3_ACCESS_KEY"], os.environ["S3_SECRET_KEY"],
                   os.environ["S3_BUCKET_NAME"], os.environ["REDIS_URL"], os.environ["DATABASE_PATH"])

    def to_env(self) -> dict[str, str]:
        return {"S3_ENDPOINT_URL": self.s3_endpoint_url, "S3_ACCESS_KEY": self.s3_access_key,
                "S3_SECRET_KEY": self.s3_secret_key, "S3_BUCKET_NAME": self.s3_bucket_name,
                "REDIS_URL": self.redis_url, "DATABASE_PATH": self.database_path}

    def store(self):
        """A minio-py client; made in each process after any fork, as the old service's were."""
        from minio import Minio

        endpoint = urlsplit(self.s3_endpoint_url)
        return Minio(endpoint.netloc, access_key=self.s3_access_key, secret_key=self.s3_secret_key,
                     secure=endpoint.scheme == "https")
