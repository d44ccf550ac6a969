"""The benchmark's pure parts do what its figures claim (no timing here: `make bench` measures)."""

import base64
import hashlib
import hmac
import io
import json
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from bench import alternatives, inputs, presign
from imgpipe.presign import _signing_key
from bench.pipeline import percentile
from bench.processing import IMPLEMENTATIONS, check_outputs


def sizes(outputs):
    return [Image.open(io.BytesIO(blob)).size if blob else None for blob in outputs]


def test_inputs_are_deterministic_photo_like_jpegs():
    first = inputs.photo_like_jpeg(600, 400, seed=3)
    assert first == inputs.photo_like_jpeg(600, 400, seed=3)
    assert first != inputs.photo_like_jpeg(600, 400, seed=4)
    image = Image.open(io.BytesIO(first))
    assert (image.format, image.size, image.mode) == ("JPEG", (600, 400), "RGB")
    assert len(first) > 600 * 400 * 0.15  # grain keeps it from compressing like a flat test card


def test_naive_makes_the_three_derivatives_at_the_right_sizes():
    data = inputs.photo_like_jpeg(2400, 1600, seed=1)
    assert sizes(alternatives.naive_derivatives(data)) == [(1024, 683), (2400, 1600), (300, 200)]


def test_naive_never_upscales():
    data = inputs.photo_like_jpeg(200, 100, seed=1)
    assert sizes(alternatives.naive_derivatives(data)) == [(200, 100), (200, 100), (200, 100)]


def test_every_implementation_passes_the_size_check():
    data = inputs.photo_like_jpeg(1500, 1000, seed=2)
    for name in ("ours", "naive", "floor"):
        check_outputs(name, data, IMPLEMENTATIONS[name](data))


def test_size_check_refuses_wrong_sizes():
    data = inputs.photo_like_jpeg(1500, 1000, seed=2)
    wrong = alternatives.jpeg_bytes(Image.new("RGB", (500, 500)), 80)
    with pytest.raises(RuntimeError):
        check_outputs("broken", data, (wrong, data, wrong))


def test_percentile_is_nearest_rank():
    values = list(range(1, 21))
    assert percentile(values, 0.50) == 10
    assert percentile(values, 0.95) == 19
    assert percentile([7.0], 0.95) == 7.0


def test_the_cached_key_post_policy_signs_as_minio_py_does():
    """So the two POST policy variants of bench/presign.py do the same work, one with the key cached."""
    now = datetime.now(timezone.utc)
    fields = presign.post_policy_minio(now)
    expected = hmac.new(_signing_key(presign.CREDENTIALS, now), fields["policy"].encode(), hashlib.sha256).hexdigest()
    assert fields["x-amz-signature"] == expected
    ours = presign.post_policy_cached_key(now)
    assert ["content-length-range", presign.SIZE, presign.SIZE] in json.loads(base64.b64decode(ours["policy"]))[
        "conditions"]
    assert "content-length" in parse_qs(urlsplit(presign.put_shipped(now)).query)["X-Amz-SignedHeaders"][0]
