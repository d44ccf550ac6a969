"""The store identities as data, the settings that hold their keys, and the worker's check of a
stored original against what its upload URL signed."""

import pytest

from imgpipe.error_codes import UploadFailure
from imgpipe.settings import Settings
from imgpipe.store_identities import API, PROCESS_IDENTITIES, READ, SERVICE_ROLES, UPLOAD, WORKER, policy, policy_name
from processor.originals import refusal


def allowed(role: str) -> dict[str, set[str]]:
    """Resource -> actions a policy allows (denials listed as '!action')."""
    found: dict[str, set[str]] = {}
    for statement in policy(role, "uploads")["Statement"]:
        mark = "" if statement["Effect"] == "Allow" else "!"
        for resource in statement["Resource"]:
            found.setdefault(resource, set()).update(mark + action for action in statement["Action"])
    return found


def test_the_upload_identity_may_only_put_originals():
    assert allowed(UPLOAD) == {"arn:aws:s3:::uploads/originals/*": {"s3:PutObject"}}


def test_the_read_identity_may_only_get_objects():
    assert allowed(READ) == {"arn:aws:s3:::uploads/*": {"s3:GetObject"}}


def test_the_worker_may_not_replace_an_original_and_the_api_may_not_read():
    assert "!s3:PutObject" in allowed(WORKER)["arn:aws:s3:::uploads/originals/*"]
    assert allowed(API) == {"arn:aws:s3:::uploads": {"s3:ListBucket"}, "arn:aws:s3:::uploads/*": {"s3:DeleteObject"}}


def test_policy_names_keep_deployments_on_one_store_apart():
    assert policy_name(UPLOAD, "uploads") != policy_name(UPLOAD, "other")


def test_identities_must_have_keys_of_their_own():
    with pytest.raises(ValueError, match="must all differ"):
        Settings(s3_upload_access_key="same", s3_read_access_key="same")
    with pytest.raises(ValueError, match="S3_WORKER_SECRET_KEY at least 8"):
        Settings(s3_worker_secret_key="short")
    with pytest.raises(ValueError, match="IMGPIPE_STORE_IDENTITIES"):
        Settings(store_identities="maybe")
    assert Settings(store_identities="given", s3_access_key="", s3_secret_key="")


def test_the_env_names_are_the_agreed_ones():
    env = Settings.from_env({"S3_UPLOAD_ACCESS_KEY": "u-key", "S3_UPLOAD_SECRET_KEY": "u-secret-1",
                             "IMGPIPE_STORE_IDENTITIES": "given"})
    assert env.store_keys(UPLOAD) == ("u-key", "u-secret-1") and env.store_identities == "given"
    names = Settings().to_env()
    assert all(f"S3_{role.upper()}_{part}_KEY" in names for role in SERVICE_ROLES for part in ("ACCESS", "SECRET"))


def test_a_process_is_handed_only_its_own_keys():
    for process, roles in PROCESS_IDENTITIES.items():
        env = Settings().to_env(process)
        assert "S3_ACCESS_KEY" not in env and "S3_SECRET_KEY" not in env
        assert {role for role in SERVICE_ROLES if f"S3_{role.upper()}_SECRET_KEY" in env} == set(roles)
        assert env["S3_ENDPOINT_URL"]


SIGNED = {"content-type": "image/jpeg", "content-length": "1000", "etag": '"abc"'}


@pytest.mark.parametrize("extra, size, code", [
    ({}, 1000, None),
    ({"content-encoding": "identity"}, 1000, None),
    ({"cache-control": "public", "content-disposition": "inline"}, 1000, None),  # overridden in result URLs
    ({"x-amz-storage-class": "STANDARD"}, 1000, None),
    ({"content-encoding": "gzip"}, 1000, "encoded_original"),
    ({"content-encoding": "br"}, 1000, "encoded_original"),
    ({"x-amz-server-side-encryption-customer-algorithm": "AES256"}, 1000, "encrypted_original"),
    ({"content-type": "image/png"}, 1000, "copied_original"),
    ({}, 39503, "size_mismatch"),
    ({}, 0, "size_mismatch"),
    ({"x-amz-meta-origin": "x"}, 1000, "unsigned_metadata"),
    ({"x-amz-tagging-count": "1"}, 1000, "unsigned_metadata"),
    ({"x-amz-storage-class": "REDUCED_REDUNDANCY"}, 1000, "unsigned_metadata"),
])
def test_a_stored_original_is_refused_for_what_its_url_did_not_sign(extra, size, code):
    refused = refusal({**SIGNED, **extra}, size, 1000, "image/jpeg")
    assert (refused.code if refused else None) == code
    if refused:
        assert UploadFailure(code).stored_otherwise and refused.message


def test_an_old_row_without_a_declared_size_is_not_held_to_one():
    assert refusal(SIGNED, 5, None, "image/jpeg") is None
