"""Signed delivery URLs (imgpipe.delivery_urls): what opens which derivative, and until when."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from imgpipe import delivery_urls
from imgpipe.delivery_urls import DeliveryRefused, path, query, signature, verify
from imgpipe.error_codes import ApiError

SECRET = "s" * 40
UPLOAD = "0123456789abcdef0123456789abcdef"
NOW = 1_800_000_000


def params(secret=SECRET, upload_id=UPLOAD, preset="thumbnail", expires_at=None) -> tuple[str, str | None]:
    parsed = parse_qs(query(secret, upload_id, preset, expires_at))
    return parsed["sig"][0], parsed.get("exp", [None])[0]


def refusal(**overrides) -> DeliveryRefused:
    arguments = dict(secret=SECRET, upload_id=UPLOAD, preset="thumbnail", sig=params()[0], exp=None, now=NOW)
    arguments.update(overrides)
    with pytest.raises(DeliveryRefused) as refused:
        verify(**arguments)
    assert refused.value.status == 403
    return refused.value


def test_a_minted_url_opens_its_preset_of_its_upload():
    sig, exp = params()
    assert exp is None
    verify(SECRET, UPLOAD, "thumbnail", sig, exp, NOW)
    sig, exp = params(expires_at=NOW + 60)
    assert exp == str(NOW + 60)
    verify(SECRET, UPLOAD, "thumbnail", sig, exp, NOW)


def test_the_path_carries_the_query():
    expected = f"/uploads/{UPLOAD}/thumbnail?{query(SECRET, UPLOAD, 'thumbnail', NOW)}"
    assert path(SECRET, UPLOAD, "thumbnail", NOW) == expected
    assert len(signature(SECRET, UPLOAD, "thumbnail")) == 43


def test_anything_altered_is_refused():
    sig, exp = params(expires_at=NOW + 60)
    for altered in (dict(upload_id="f" * 32), dict(preset="resized"), dict(exp=str(NOW + 61)), dict(exp=None),
                    dict(sig=("A" if sig[0] != "A" else "B") + sig[1:])):
        refused = refusal(**{"sig": sig, "exp": exp, **altered})
        assert refused.code == ApiError.INVALID_DELIVERY_SIGNATURE, altered


def test_an_expiry_cannot_be_added_to_a_url_without_one():
    assert refusal(exp=str(NOW + 60)).code == ApiError.INVALID_DELIVERY_SIGNATURE


def test_an_expired_url_is_refused():
    sig, exp = params(expires_at=NOW)
    assert refusal(sig=sig, exp=exp).code == ApiError.DELIVERY_URL_EXPIRED
    verify(SECRET, UPLOAD, "thumbnail", sig, exp, NOW - 1)


def test_a_rotated_secret_revokes_every_url():
    sig, _ = params()
    assert refusal(secret="t" * 40, sig=sig).code == ApiError.INVALID_DELIVERY_SIGNATURE


def test_without_a_secret_nothing_opens():
    assert "IMGPIPE_DELIVERY_SECRET" in refusal(secret="", sig=signature("", UPLOAD, "thumbnail")).message


@pytest.mark.parametrize("sig, exp", [("", None), ("short", None), ("=" * 43, None), (params()[0] + "A", None),
                                      (params()[0], ""), (params()[0], "soon"), (params()[0], "-1"),
                                      (params()[0], "1" * 13), (params()[0], "1e9")])
def test_malformed_values_are_refused(sig, exp):
    assert refusal(sig=sig, exp=exp).code == ApiError.INVALID_DELIVERY_SIGNATURE


def test_the_signature_is_compared_in_constant_time(monkeypatch):
    compared = []
    real = delivery_urls.hmac.compare_digest
    monkeypatch.setattr(delivery_urls.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    verify(SECRET, UPLOAD, "thumbnail", params()[0], None, NOW)
    assert compared == [(params()[0], params()[0])]
