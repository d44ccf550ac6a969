"""Browser upload tokens: minted and verified by pure code, refused for every way they can be wrong."""

import base64
import hashlib
import hmac
import json

import pytest

from imgpipe.upload_tokens import MAX_LIFETIME, TokenRefused, UploadToken, looks_like_upload_token, mint, verify

SECRET = "s" * 40
NOW = 1_800_000_000


def with_signature(payload: str) -> str:
    """A token of any encoded payload, signed as an app's backend would sign it."""
    signature = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).digest()
    return payload + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def signed(payload_text: str) -> str:
    return with_signature(base64.urlsafe_b64encode(payload_text.encode()).rstrip(b"=").decode())


def refusal(token: str, now: float = NOW) -> tuple[int, str]:
    with pytest.raises(TokenRefused) as refused:
        verify(SECRET, token, now)
    return refused.value.status, refused.value.code


def test_a_minted_token_verifies_with_its_claims():
    token = mint(SECRET, "visitor-42", NOW + 600, max_files=3, max_bytes=5_000_000)
    assert looks_like_upload_token(token)
    assert verify(SECRET, token, NOW) == UploadToken("visitor-42", NOW + 600, 3, 5_000_000)
    assert verify(SECRET, mint(SECRET, "v", NOW + 1), NOW) == UploadToken("v", NOW + 1, None, None)


def test_any_json_spelling_of_the_payload_is_accepted_because_the_signature_covers_its_text():
    token = signed('{ "exp": %d,\n  "id": "a:b.c_d-e" }' % (NOW + 60))
    assert verify(SECRET, token, NOW).id == "a:b.c_d-e"


def test_expired_and_tampered_tokens_are_401():
    assert refusal(mint(SECRET, "v", NOW)) == (401, "token_expired")
    assert refusal(mint(SECRET, "v", NOW + 60), now=NOW + 61) == (401, "token_expired")
    assert refusal(mint("t" * 40, "v", NOW + 60)) == (401, "invalid_token")
    payload, signature = mint(SECRET, "v", NOW + 60, max_files=1).split(".")
    widened = signed(json.dumps({"id": "v", "exp": NOW + 60, "files": 1000})).split(".")[0]
    assert refusal(f"{widened}.{signature}") == (401, "invalid_token")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert refusal(f"{payload}.{flipped}") == (401, "invalid_token")


@pytest.mark.parametrize("payload_text", [
    "not json",
    "[1, 2]",
    json.dumps({"id": "v"}),
    json.dumps({"exp": NOW + 60}),
    json.dumps({"id": "", "exp": NOW + 60}),
    json.dumps({"id": "has space", "exp": NOW + 60}),
    json.dumps({"id": "x" * 65, "exp": NOW + 60}),
    json.dumps({"id": "v", "exp": NOW + 60.5}),
    json.dumps({"id": "v", "exp": str(NOW + 60)}),
    json.dumps({"id": "v", "exp": True}),
    json.dumps({"id": "v", "exp": NOW + 60, "files": 0}),
    json.dumps({"id": "v", "exp": NOW + 60, "bytes": -1}),
    json.dumps({"id": "v", "exp": NOW + 60, "files": "3"}),
    json.dumps({"id": "v", "exp": NOW + 60, "max_files": 3}),
    json.dumps({"id": "v", "exp": NOW + MAX_LIFETIME + 1}),
])
def test_a_well_signed_payload_that_is_not_a_valid_token_is_401_invalid_token(payload_text):
    assert refusal(signed(payload_text)) == (401, "invalid_token")


@pytest.mark.parametrize("text", ["", "abc", "a.b", "a.b.c", "a." + "b" * 43 + ".c", "a b." + "b" * 43,
                                  "a." + "b" * 42 + "="])
def test_other_shapes_are_not_upload_tokens(text):
    assert not looks_like_upload_token(text)
    assert refusal(text) == (401, "invalid_token")


@pytest.mark.parametrize("payload", ["_w", "A", "AAAAA"])  # 0xff (not UTF-8); lengths base64 cannot have
def test_a_signed_payload_that_is_not_base64_of_utf8_is_refused_not_crashed(payload):
    assert refusal(with_signature(payload)) == (401, "invalid_token")
