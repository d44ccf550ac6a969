import pytest

from api.validation import (BASE_CONTENT_TYPES, RequestRejected, accepted_content_types, clean_filename,
                            parse_new_upload)

ACCEPTED = accepted_content_types({"heif", "avif"})


def parse(body, max_bytes=1000):
    return parse_new_upload(body, accepted=ACCEPTED, max_bytes=max_bytes)


def rejected(body, max_bytes=1000) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        parse(body, max_bytes)
    return info.value


def test_a_valid_request():
    new = parse({"filename": "cat.JPG", "content_type": "image/jpeg", "size": 10})
    assert (new.filename, new.content_type, new.extension, new.size) == ("cat.JPG", "image/jpeg", "jpg", 10)


def test_content_type_parameters_and_case_are_ignored():
    assert parse({"filename": "a.png", "content_type": "Image/PNG; charset=binary"}).extension == "png"


def test_optional_types_follow_the_installed_decoders():
    assert "image/heic" in accepted_content_types({"heif"})
    assert "image/avif" not in accepted_content_types({"heif"})
    assert accepted_content_types(set()) == BASE_CONTENT_TYPES


@pytest.mark.parametrize("content_type", ["text/plain", "application/pdf", "image/svg+xml", "video/mp4"])
def test_non_images_are_415(content_type):
    error = rejected({"filename": "a", "content_type": content_type})
    assert (error.status, error.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize("body", [
    None, [], "x", {}, {"filename": "a.jpg"}, {"content_type": "image/jpeg"},
    {"filename": 3, "content_type": "image/jpeg"}, {"filename": "a.jpg", "content_type": None},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": -1},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": "10"},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": True},
    {"filename": "a.jpg", "content_type": "image/jpeg", "extra": 1},
    {"filename": "a.jpg", "content_type": "image/jpeg", "callback_url": "ftp://x/y"},
    {"filename": "a.jpg", "content_type": "image/jpeg", "callback_url": 5},
])
def test_malformed_bodies_are_400(body):
    error = rejected(body)
    assert (error.status, error.code) == (400, "invalid_request")


def test_declared_size_over_the_limit_is_400_too_large():
    error = rejected({"filename": "a.jpg", "content_type": "image/jpeg", "size": 1001})
    assert (error.status, error.code) == (400, "too_large")


def test_filenames_lose_paths_and_control_characters():
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\me\\photo.jpg") == "photo.jpg"
    assert clean_filename("a\x00b\nc.jpg") == "abc.jpg"
    assert len(clean_filename("x" * 1000)) == 255


def test_a_filename_with_nothing_usable_gets_a_label():
    for name in ("", "   ", "../..", "/", "\x00"):
        assert parse({"filename": name, "content_type": "image/png"}).filename == "upload"


def test_an_empty_content_type_is_415():
    assert rejected({"filename": "a", "content_type": ""}).status == 415


def test_callback_url_is_kept():
    new = parse({"filename": "a.jpg", "content_type": "image/jpeg", "callback_url": "https://example.com/hook"})
    assert new.callback_url == "https://example.com/hook"
