import hashlib
import hmac

from imgpipe.webhook_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, signed_headers, verify

SECRET = "s3cret"
BODY = b'{"id": "abc", "status": "completed"}'
NOW = 1_760_000_000


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(b"s3cret", b"1760000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == expected
    assert signed_headers(SECRET, NOW, BODY) == {TIMESTAMP_HEADER: "1760000000", SIGNATURE_HEADER: f"v1={expected}"}


def test_a_receiver_accepts_what_was_signed():
    assert verify(SECRET, signed_headers(SECRET, NOW, BODY), BODY, now=NOW + 60)


def test_a_receiver_refuses_changes_old_timestamps_and_other_secrets():
    headers = signed_headers(SECRET, NOW, BODY)
    assert not verify(SECRET, headers, BODY + b" ", now=NOW)
    assert not verify("other", headers, BODY, now=NOW)
    assert not verify(SECRET, headers, BODY, now=NOW + 301), "a replay after the tolerance"
    assert not verify(SECRET, {**headers, TIMESTAMP_HEADER: str(NOW + 1)}, BODY, now=NOW), "the timestamp is signed"
    assert not verify(SECRET, {**headers, SIGNATURE_HEADER: headers[SIGNATURE_HEADER].replace("v1", "v0")}, BODY, now=NOW)
    assert not verify(SECRET, {TIMESTAMP_HEADER: str(NOW)}, BODY, now=NOW)
    assert not verify(SECRET, {}, BODY, now=NOW)


def test_without_a_secret_nothing_is_signed():
    assert signed_headers("", NOW, BODY) == {TIMESTAMP_HEADER: str(NOW)}
