"""The store identities, made real in MinIO (or checked, when the operator brings their own).

`apply_identities` signs in as the root account, through minio-py's admin client, and makes each
service identity (imgpipe.store_identities) a MinIO user holding exactly its policy, changing
nothing that is already right, so it is safe to run on every start. A secret that no longer
signs is set again (a rotation), and a user left holding an imgpipe policy under an access key
the settings no longer name is removed (an access key's rotation).

`check_given` is for keys made elsewhere (a managed S3 service, say): it cannot make anything,
so it makes sure of what matters most, that the upload key can neither read nor list.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from urllib.parse import urlsplit

from minio.credentials import StaticProvider
from minio.error import S3Error
from minio.minioadmin import MinioAdmin

from imgpipe.settings import Settings
from imgpipe.storage import http_pool, make_client
from imgpipe.store_identities import PURPOSES, ROOT, SERVICE_ROLES, UPLOAD, WORKER, policy, policy_name

log = logging.getLogger(__name__)

_WRONG_KEYS = ("InvalidAccessKeyId", "SignatureDoesNotMatch")


class IdentityProblem(Exception):
    """A store identity is missing rights it needs or holds rights it must not; the message says which."""


def make_admin(settings: Settings) -> MinioAdmin:
    parts = urlsplit(settings.s3_endpoint_url)
    return MinioAdmin(endpoint=parts.netloc, credentials=StaticProvider(*settings.store_keys(ROOT)),
                      secure=parts.scheme == "https", http_client=http_pool(timeout=10.0, retries=1))


def apply_identities(settings: Settings) -> list[str]:
    """Make every service identity what the settings say; return what was changed."""
    admin = make_admin(settings)
    users = json.loads(admin.user_list() or "{}")
    policies = json.loads(admin.policy_list() or "{}")
    changes = []
    for role in SERVICE_ROLES:
        name, document = policy_name(role, settings.s3_bucket_name), policy(role, settings.s3_bucket_name)
        if name not in policies or _normal(policies[name]) != _normal(document):
            admin.policy_add(name, policy=document)
            changes.append(f"set policy {name} ({PURPOSES[role]})")
        access_key, secret_key = settings.store_keys(role)
        if access_key not in users:
            admin.user_add(access_key, secret_key)
            changes.append(f"created {role} identity {access_key}")
        elif not _signs(settings, role):
            admin.user_add(access_key, secret_key)
            changes.append(f"rotated the secret of {role} identity {access_key}")
        if users.get(access_key, {}).get("policyName") != name:
            admin.policy_set(name, user=access_key)
            changes.append(f"gave {access_key} policy {name}")
        for retired, user in users.items():
            if retired != access_key and user.get("policyName") == name:
                admin.user_remove(retired)
                changes.append(f"removed {retired}, a {role} identity the settings no longer name")
    for change in changes:
        log.info("%s", change)
    return changes


def _normal(document: dict) -> list:
    """A policy's statements as MinIO gives them back (it sorts actions and resources)."""
    return [(statement["Effect"], sorted(statement["Action"]), sorted(statement["Resource"]))
            for statement in document["Statement"]]


def _signs(settings: Settings, role: str) -> bool:
    """Whether the store takes this identity's secret: any answer but a wrong key's will do."""
    try:
        next(iter(make_client(settings.s3_endpoint_url, settings, role, retries=0).list_objects(
            settings.s3_bucket_name, prefix="originals/")), None)
    except S3Error as error:
        return error.code not in _WRONG_KEYS
    return True


def check_given(settings: Settings) -> list[str]:
    """Check keys the operator made: each one signs, and the upload key may put an original but
    neither read nor list it (else an upload URL is a way to copy any stored object). Raises
    IdentityProblem saying what is wrong; returns what was checked."""
    for role in SERVICE_ROLES:
        if not _signs(settings, role):
            raise IdentityProblem(f"the store does not take the {role} identity's keys"
                                  f" (S3_{role.upper()}_ACCESS_KEY / S3_{role.upper()}_SECRET_KEY)")
    bucket = settings.s3_bucket_name
    upload = make_client(settings.s3_endpoint_url, settings, UPLOAD, retries=0)
    worker = make_client(settings.s3_endpoint_url, settings, WORKER, retries=0)
    probe = f"originals/imgpipe-setup-check-{secrets.token_hex(8)}"
    try:
        upload.put_object(bucket, probe, io.BytesIO(b"\0"), 1, content_type="application/octet-stream")
    except S3Error as error:
        raise IdentityProblem(f"the upload key may not put objects under originals/ ({error.code}):"
                              " upload URLs signed with it cannot work") from None
    try:
        can = [what for what, attempt in (("read", lambda: upload.stat_object(bucket, probe)),
                                          ("list", lambda: list(upload.list_objects(bucket, prefix=probe))))
               if _allowed(attempt)]
    finally:
        worker.remove_object(bucket, probe)
    if can:
        raise IdentityProblem(
            f"the upload key (S3_UPLOAD_ACCESS_KEY) may {' and '.join(can)} objects: anyone holding an upload URL"
            " could then copy any stored original into their own upload (x-amz-copy-source). Give it"
            " s3:PutObject on originals/* and nothing else.")
    return [f"{role} identity: its keys sign" for role in SERVICE_ROLES] + [
        "upload identity: may put an original, may neither read nor list"]


def _allowed(attempt) -> bool:
    try:
        attempt()
    except S3Error as error:
        if error.code == "AccessDenied":
            return False
        raise
    return True
