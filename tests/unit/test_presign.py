from datetime import datetime, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

from minio.credentials import Credentials as MinioCredentials
from minio.helpers import queryencode
from minio.signer import presign_v4

from imgpipe.presign import Credentials, presign

NOW = datetime(2026, 11, 26, 15, 0, 0, tzinfo=timezone.utc)
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1")


def test_matches_minio_py_when_only_the_host_is_signed():
    ours = presign("GET", "http://127.0.0.1:9000", "uploads", "originals/abc.jpg",
                   credentials=CREDENTIALS, now=NOW, expires=3600)
    theirs = presign_v4(method="GET", url=urlsplit("http://127.0.0.1:9000/uploads/originals/abc.jpg"),
                        region="us-east-1", date=NOW, expires=3600,
                        credentials=MinioCredentials(CREDENTIALS.access_key, CREDENTIALS.secret_key))
    assert parse_qs(urlsplit(ours).query) == parse_qs(theirs.query)


def test_extra_headers_are_signed_and_change_the_signature():
    plain = presign("PUT", "https://files.example.com", "uploads", "originals/a.png",
                    credentials=CREDENTIALS, now=NOW, expires=900)
    signed = presign("PUT", "https://files.example.com", "uploads", "originals/a.png",
                     credentials=CREDENTIALS, now=NOW, expires=900,
                     headers={"Content-Type": "image/png", "If-None-Match": "*"})
    query = parse_qs(urlsplit(signed).query)
    assert query["X-Amz-SignedHeaders"] == ["content-type;host;if-none-match"]
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Credential"] == ["AKIDEXAMPLE/20261126/us-east-1/s3/aws4_request"]
    assert query["X-Amz-Signature"] != parse_qs(urlsplit(plain).query)["X-Amz-Signature"]


def test_the_url_is_for_the_public_host():
    url = urlsplit(presign("GET", "https://files.example.com:8443", "uploads", "resized/a.jpg",
                           credentials=CREDENTIALS, now=NOW, expires=60))
    assert (url.scheme, url.netloc, url.path) == ("https", "files.example.com:8443", "/uploads/resized/a.jpg")


def test_response_overrides_are_signed_as_minio_py_signs_them():
    overrides = {"response-content-type": "image/png",
                 "response-content-disposition": "attachment; filename=\"a b.png\"; filename*=UTF-8''a%20b.png"}
    ours = presign("GET", "http://127.0.0.1:9000", "uploads", "originals/abc.png",
                   credentials=CREDENTIALS, now=NOW, expires=3600, extra_query=overrides)
    theirs = presign_v4(method="GET", url=urlsplit("http://127.0.0.1:9000/uploads/originals/abc.png?"
                                                 + urlencode(overrides, quote_via=queryencode)),
                        region="us-east-1", date=NOW, expires=3600,
                        credentials=MinioCredentials(CREDENTIALS.access_key, CREDENTIALS.secret_key))
    assert parse_qs(urlsplit(ours).query) == parse_qs(theirs.query)
    assert parse_qs(urlsplit(ours).query)["response-content-type"] == ["image/png"]
