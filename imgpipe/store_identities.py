"""The store identities: who may do what in the bucket, as plain policy documents.

A signature cannot forbid a header it does not list, so an upload URL is bounded by the rights
of the key that signs it, not by its signature alone: the upload identity may only put
originals, so an `x-amz-copy-source` (which needs read access on its source) fails, and nothing
else can be reached with it. Each process holds the keys of its own identity; the store's root
account is for `imgpipe setup` alone and never signs a URL.

Pure data: `imgpipe setup` (and the local stack) hand these documents to MinIO's admin API.
"""

from __future__ import annotations

from imgpipe.keys import ORIGINALS_PREFIX

ROOT = "root"
UPLOAD = "upload"  # signs upload URLs: puts originals, nothing else
READ = "read"  # signs result URLs: gets objects, nothing else
WORKER = "worker"  # the relay and the workers
API = "api"  # the API's own calls: the health check and deleting an upload's objects
MULTIPART = "multipart"  # creates, lists, completes and aborts multipart uploads of originals
SERVICE_ROLES = (UPLOAD, READ, WORKER, API, MULTIPART)

# The identities each long-running process signs as, so holds the keys of; `imgpipe setup` alone
# holds the root account's (and every identity's, to create them).
PROCESS_IDENTITIES = {"api": (UPLOAD, READ, API, MULTIPART), "relay": (WORKER, READ, MULTIPART),
                      "worker": (WORKER, READ)}

# What each identity is for, as the docs and `imgpipe setup` say it.
PURPOSES = {
    UPLOAD: "signs upload URLs: PutObject on originals/* only",
    READ: "signs result URLs: GetObject only",
    WORKER: "the relay and the workers: list and read, write and delete derivatives, delete originals",
    API: "the API's own calls: the health check, and deleting an upload's objects",
    MULTIPART: "multipart uploads of originals: create, list parts, complete, abort; never reads an object",
}


def policy_name(role: str, bucket: str) -> str:
    """Named after the bucket too, so deployments sharing one MinIO keep apart."""
    return f"imgpipe-{bucket}-{role}"


def policy(role: str, bucket: str) -> dict:
    """The IAM policy of a service identity on `bucket`.

    The multipart identity is the API's when it completes a multipart upload (after checking the
    parts itself) and the relay's when it aborts an abandoned one. Part URLs are signed by the
    upload identity, for exactly one UploadPart each: a client holding them can neither complete
    nor abort, and with no read right an UploadPartCopy fails as a copy into a PUT does.

    The worker may write any key but originals/ (derivative prefixes are preset names, which the
    presets file decides), so a worker's key can never replace what a client uploaded.
    """
    objects = f"arn:aws:s3:::{bucket}/*"
    originals = f"arn:aws:s3:::{bucket}/{ORIGINALS_PREFIX}*"
    whole = f"arn:aws:s3:::{bucket}"
    statements = {
        UPLOAD: [_allow(["s3:PutObject"], originals)],
        READ: [_allow(["s3:GetObject"], objects)],
        WORKER: [
            _allow(["s3:ListBucket"], whole),
            _allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], objects),
            _deny(["s3:PutObject"], originals),
        ],
        API: [
            _allow(["s3:ListBucket"], whole),
            _allow(["s3:DeleteObject"], objects),
        ],
        # S3 has no action of its own for creating or completing: both are s3:PutObject.
        MULTIPART: [_allow(["s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"], originals)],
    }[role]
    return {"Version": "2012-10-17", "Statement": statements}


def _allow(actions: list[str], resource: str) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": [resource]}


def _deny(actions: list[str], resource: str) -> dict:
    return {"Effect": "Deny", "Action": actions, "Resource": [resource]}
