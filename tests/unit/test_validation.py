import json

import pytest

from api.validation import (MAX_JSON_DEPTH, RequestRejected, UploadRules, clean_filename, json_depth, parse_batch,
                            parse_json_body, parse_new_upload)
from imgpipe.callback_addresses import CallbackRefused
from imgpipe.formats import accepted_content_types

ALWAYS_READ = {"JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"}
ACCEPTED = accepted_content_types(ALWAYS_READ | {"HEIF", "AVIF"})


def refuse_internal_hosts(url: str) -> None:
    if "internal" in url:
        raise CallbackRefused("callback host internal.example is a private address")


RULES = UploadRules(accepted=ACCEPTED, max_bytes=1000, writable_formats=("jpeg", "png", "webp"),
                    check_callback=refuse_internal_hosts, presets=("resized", "square", "thumbnail"))


def parse(body):
    return parse_new_upload(body, RULES)


def rejected(body) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        parse(body)
    return info.value


def test_a_valid_request():
    new = parse({"filename": "cat.JPG", "content_type": "image/jpeg", "size": 10})
    assert (new.filename, new.content_type, new.extension, new.size) == ("cat.JPG", "image/jpeg", "jpg", 10)


def test_content_type_parameters_and_case_are_ignored():
    assert parse({"filename": "a.png", "content_type": "Image/PNG; charset=binary", "size": 10}).extension == "png"


def test_optional_types_follow_the_installed_decoders():
    assert "image/heic" in accepted_content_types(ALWAYS_READ | {"HEIF"})
    assert "image/avif" not in accepted_content_types(ALWAYS_READ | {"HEIF"})
    assert set(accepted_content_types(ALWAYS_READ)) == {"image/jpeg", "image/png", "image/webp", "image/gif",
                                                         "image/tiff", "image/bmp"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/pdf", "image/svg+xml", "video/mp4"])
def test_non_images_are_415(content_type):
    error = rejected({"filename": "a", "content_type": content_type})
    assert (error.status, error.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize("body", [
    None, [], "x", {}, {"filename": "a.jpg"}, {"content_type": "image/jpeg"},
    {"filename": 3, "content_type": "image/jpeg", "size": 10}, {"filename": "a.jpg", "content_type": None},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": -1},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": "10"},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": True},
    {"filename": "a.jpg", "content_type": "image/jpeg", "extra": 1},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "callback_url": "ftp://x/y"},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "callback_url": 5},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "callback_url": "http://[::1/hook"},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "callback_url": "http://example.com:99999/hook"},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "callback_url": "https:///hook"},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "formats": []},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "formats": "webp"},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "formats": [1]},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "presets": []},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "presets": "square"},
    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "presets": [None]},
])
def test_malformed_bodies_are_400(body):
    error = rejected(body)
    assert (error.status, error.code) == (400, "invalid_request")


@pytest.mark.parametrize("body", [{"filename": "a.jpg", "content_type": "image/jpeg"},
                                  {"filename": "a.jpg", "content_type": "image/jpeg", "size": None}])
def test_size_is_required_because_the_upload_url_signs_it(body):
    error = rejected(body)
    assert (error.status, error.code) == (400, "invalid_request")
    assert error.message.startswith("size is required")


def test_a_size_of_zero_and_the_limit_itself_are_accepted():
    assert parse({"filename": "a.jpg", "content_type": "image/jpeg", "size": 0}).size == 0
    assert parse({"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000.0}).size == 1000


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
        assert parse({"filename": name, "content_type": "image/png", "size": 10}).filename == "upload"


def test_an_empty_content_type_is_415():
    assert rejected({"filename": "a", "content_type": ""}).status == 415


def test_callback_url_is_kept():
    new = parse({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10,
                 "callback_url": "https://example.com/hook"})
    assert new.callback_url == "https://example.com/hook"


def test_a_callback_the_address_check_refuses_is_400_callback_not_allowed():
    error = rejected({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10,
                      "callback_url": "http://internal.example/"})
    assert (error.status, error.code) == (400, "callback_not_allowed")
    assert "private address" in error.message


def test_formats_default_to_jpeg_and_are_kept_once_each_in_a_fixed_order():
    assert parse({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10}).formats == ("jpeg",)
    assert parse({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "formats": None}).formats == ("jpeg",)
    new = parse({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "formats": ["webp", "jpeg", "webp"]})
    assert new.formats == ("jpeg", "webp")


@pytest.mark.parametrize("formats", [["gif"], ["avif"], ["jpeg", "WEBP"]])
def test_formats_this_server_cannot_write_are_400(formats):
    error = rejected({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "formats": formats})
    assert (error.status, error.code) == (400, "unsupported_output_format")
    assert "jpeg, png, webp" in error.message


def test_presets_default_to_all_and_are_kept_once_each_in_the_servers_order():
    assert parse({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10}).presets is None
    assert parse({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "presets": None}).presets is None
    new = parse({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "presets": ["thumbnail", "square", "thumbnail"]})
    assert new.presets == ("square", "thumbnail")


@pytest.mark.parametrize("presets", [["compressed"], ["square", "Square"], [""]])
def test_presets_this_server_does_not_have_are_400_unknown_preset(presets):
    error = rejected({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "presets": presets})
    assert (error.status, error.code) == (400, "unknown_preset")
    assert "presets are resized, square, thumbnail" in error.message


def test_a_batch_is_a_non_empty_bounded_list_of_objects():
    files = [{"filename": "a.jpg"}, {}]
    assert parse_batch({"files": files}, max_files=2) is files
    for body in (None, [], {"files": []}, {"files": {}}, {"files": [1]}, {"files": [{}], "extra": 1}):
        with pytest.raises(RequestRejected) as info:
            parse_batch(body, max_files=2)
        assert (info.value.status, info.value.code) == (400, "invalid_request"), body
    with pytest.raises(RequestRejected) as info:
        parse_batch({"files": [{}, {}, {}]}, max_files=2)
    assert (info.value.status, info.value.code) == (400, "too_many_files")


@pytest.mark.parametrize("text, depth", [
    ('{"a": 1}', 1), ('{"files": [{"filename": "a"}]}', 3), ('"[[[["', 0), ('{"a": "]}[{\\"[{"}', 1),
    ("[" * 50_000 + "]" * 50_000, 50_000),
])
def test_json_depth_counts_brackets_outside_strings(text, depth):
    assert json_depth(text) == depth


def test_a_body_nested_too_deep_is_400_before_it_is_parsed():
    for raw in (b"[" * 50_000 + b"]" * 50_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"[" * 50_000):
        with pytest.raises(RequestRejected) as refused:
            parse_json_body(raw, "the body must be JSON")
        assert (refused.value.status, refused.value.code) == (400, "invalid_request")
        assert "nested more than" in refused.value.message
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json_body(nested.encode(), "the body must be JSON") == json.loads(nested)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"NaN-ish", b'{"a": 1} trailing'])
def test_a_body_that_is_not_json_is_400_with_the_callers_words(raw):
    with pytest.raises(RequestRejected, match="the body must be JSON"):
        parse_json_body(raw, "the body must be JSON")
