import json

import pytest

from processor.events import MalformedEvent, ObjectCreated, parse_event


def minio_element(key: str, event_name: str = "s3:ObjectCreated:Put", bucket: str = "uploads", size=11) -> bytes:
    """One list element as MinIO's Redis target (format access) writes it, key URL-escaped."""
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "eventName": event_name,
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "eTag": "5eb63bbbe01eeed093cb22bb8f5acdc3",
                       "contentType": "image/jpeg", "sequencer": "18EBA35FEE22C7D1"},
        },
    }
    return json.dumps([{"Event": [record], "EventTime": "2026-11-26T15:55:08.853Z"}]).encode()


def test_parses_the_object_key_and_size():
    assert parse_event(minio_element("originals%2Fabc.jpg")) == [ObjectCreated("uploads", "originals/abc.jpg", 11)]


def test_decodes_query_escaped_keys():
    [record] = parse_event(minio_element("originals%2Fmy+file%2B1.jpg"))
    assert record.key == "originals/my file+1.jpg"


def test_other_event_kinds_are_left_out():
    assert parse_event(minio_element("originals%2Fabc.jpg", event_name="s3:ObjectRemoved:Delete")) == []


def test_every_object_created_variant_counts():
    for name in ("s3:ObjectCreated:Put", "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectCreated:Copy"):
        assert len(parse_event(minio_element("originals%2Fa.jpg", event_name=name))) == 1


def test_a_missing_size_is_none():
    [record] = parse_event(minio_element("originals%2Fa.jpg", size=None))
    assert record.size is None


@pytest.mark.parametrize("raw", [b"", b"not json", b"{}", b"[1]", b'[{"Event": "x"}]',
                                 b'[{"Event": [{"eventName": "s3:ObjectCreated:Put"}]}]'])
def test_malformed_elements_raise(raw):
    with pytest.raises(MalformedEvent):
        parse_event(raw)


def test_a_completed_multipart_upload_is_an_object_created_under_the_bucket_notification():
    from notify_config.definition import EVENTS

    assert EVENTS == ("s3:ObjectCreated:*",)  # which CompleteMultipartUpload is one of
    element = minio_element("originals%2Fabc.jpg", "s3:ObjectCreated:CompleteMultipartUpload", size=25 * 2 ** 20)
    assert parse_event(element) == [ObjectCreated("uploads", "originals/abc.jpg", 25 * 2 ** 20)]
