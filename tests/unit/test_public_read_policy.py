"""The bucket policy of public delivery, as data: anyone may GET the derivative prefixes, nothing else."""

import pytest

from imgpipe.presets import BUILT_IN
from notify_config.definition import PUBLIC_READ_SID, public_prefixes, public_read_statement


def test_public_delivery_opens_every_presets_prefix_and_never_originals():
    prefixes = public_prefixes("public", BUILT_IN.names)
    assert prefixes == ["resized/", "compressed/", "thumbnails/"]
    assert public_prefixes("private", BUILT_IN.names) == []
    statement = public_read_statement("uploads", prefixes)
    assert statement == {"Sid": PUBLIC_READ_SID, "Effect": "Allow", "Principal": {"AWS": ["*"]},
                         "Action": ["s3:GetObject"],
                         "Resource": ["arn:aws:s3:::uploads/compressed/*", "arn:aws:s3:::uploads/resized/*",
                                      "arn:aws:s3:::uploads/thumbnails/*"]}


@pytest.mark.parametrize("prefixes", [["originals/"], ["originals/sub/"], ["resized"], [""]])
def test_a_prefix_that_is_not_a_derivative_prefix_is_refused(prefixes):
    with pytest.raises(ValueError, match="not derivative prefixes"):
        public_read_statement("uploads", prefixes)
