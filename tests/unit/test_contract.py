"""The request schemas /openapi.json publishes and the checks the API runs give the same answers.

Both are built from api/contract.py; these tests hold them to it over sample bodies, including
each limit the schema states, taken at the limit and one step beyond it.
"""

import pytest
from jsonschema import Draft202012Validator

from api.contract import batch_schema, new_upload_schema
from api.validation import BATCH_FIELDS, NEW_UPLOAD_FIELDS, RequestRejected, UploadRules, parse_batch, parse_new_upload
from imgpipe.formats import ORIGINAL_PILLOW_NAMES, accepted_content_types

RULES = UploadRules(accepted=accepted_content_types(set(ORIGINAL_PILLOW_NAMES)), max_bytes=1000,
                    writable_formats=("jpeg", "png", "webp"), check_callback=lambda url: None,
                    presets=("resized", "square"))
MAX_FILES = 3
NEW_UPLOAD = new_upload_schema(sorted(RULES.accepted), RULES.max_bytes, RULES.writable_formats, RULES.presets)
BATCH = batch_schema(MAX_FILES)
VALID = {"filename": "a.jpg", "content_type": "image/png", "size": 10}
ODD_VALUES = [None, True, 0, -1, 10.0, 1.5, "", "x", "https://example.com/hook", [], [1], ["jpeg"], [{}], {}]


def sized(prop: dict, n: int):
    """A value of the property's type n long: n itself, a URL of n characters, a list of n items."""
    if "integer" in prop["type"]:
        return n
    if "string" in prop["type"]:
        return ("https://example.com/" + "a" * n)[:n]
    item = prop["items"]["enum"][0] if "enum" in prop["items"] else {}
    return [item] * n


def limits(prop: dict):
    """(a value at each limit the property states, a value one step beyond it)."""
    for keyword, step in (("minimum", -1), ("maximum", 1), ("maxLength", 1), ("minItems", -1), ("maxItems", 1)):
        if keyword in prop:
            yield sized(prop, prop[keyword]), sized(prop, prop[keyword] + step)
    enum = prop.get("enum") or prop.get("items", {}).get("enum")
    if enum:
        outside = "image/svg+xml" if "enum" in prop else ["gif"]
        yield from ((value if "enum" in prop else [value], outside) for value in enum)


def samples(schema: dict, valid: dict) -> list:
    """Bodies to judge: not objects, each required field left out, an unknown field, and every property
    set to odd values and to each side of its limits."""
    bodies = [None, [], "x", {}, {**valid, "extra": 1}]
    bodies += [{key: value for key, value in valid.items() if key != name} for name in schema["required"]]
    for name, prop in schema["properties"].items():
        bodies += [{**valid, name: value} for value in ODD_VALUES]
        bodies += [{**valid, name: value} for pair in limits(prop) for value in pair]
    return bodies


def takes(parse, body) -> bool:
    try:
        parse(body)
    except RequestRejected:
        return False
    return True


def test_the_validator_takes_the_fields_the_schema_lists_and_requires_the_same():
    assert NEW_UPLOAD_FIELDS == set(NEW_UPLOAD["properties"])
    assert BATCH_FIELDS == set(BATCH["properties"]) == set(BATCH["required"])
    for name in NEW_UPLOAD["properties"]:
        without = {key: value for key, value in VALID.items() if key != name}
        assert takes(lambda body: parse_new_upload(body, RULES), without) == (name not in NEW_UPLOAD["required"])


@pytest.mark.parametrize("body", samples(NEW_UPLOAD, VALID))
def test_a_new_upload_is_taken_exactly_when_the_schema_accepts_it(body):
    schema_accepts = Draft202012Validator(NEW_UPLOAD).is_valid(body)
    assert takes(lambda body: parse_new_upload(body, RULES), body) == schema_accepts


@pytest.mark.parametrize("body", samples(BATCH, {"files": [VALID]}))
def test_a_batch_is_taken_exactly_when_the_schema_accepts_it(body):
    schema_accepts = Draft202012Validator(BATCH).is_valid(body)
    assert takes(lambda body: parse_batch(body, MAX_FILES), body) == schema_accepts


def test_every_limit_is_probed_on_both_sides():
    """The samples above would agree vacuously if a limit's two sides were judged alike."""
    for schema in (NEW_UPLOAD, BATCH):
        for prop in schema["properties"].values():
            for at, beyond in limits(prop):
                assert Draft202012Validator(prop).is_valid(at) and not Draft202012Validator(prop).is_valid(beyond)


def test_where_the_validator_and_the_schema_knowingly_differ():
    """The validator reads content_type as a Content-Type header (case and parameters ignored), while the
    schema lists the canonical names; and it checks a callback URL's whole syntax, where the schema's
    pattern only states the scheme."""
    header = {**VALID, "content_type": "Image/PNG; charset=binary"}
    assert takes(lambda body: parse_new_upload(body, RULES), header)
    assert not Draft202012Validator(NEW_UPLOAD).is_valid(header)
    broken_url = {**VALID, "callback_url": "http://[::1/hook"}
    assert Draft202012Validator(NEW_UPLOAD).is_valid(broken_url)
    assert not takes(lambda body: parse_new_upload(body, RULES), broken_url)
