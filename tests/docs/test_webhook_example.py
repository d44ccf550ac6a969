"""The webhook guide's verification snippet accepts what imgpipe signs and refuses the rest."""

from __future__ import annotations

import time

from doc_examples import doc_example
from imgpipe.webhook_signature import signed_headers


def snippet():
    namespace = {}
    exec(doc_example("verify_webhook.py"), namespace)
    return namespace["is_from_imgpipe"]


def test_the_snippet_verifies_imgpipe_s_signature():
    is_from_imgpipe = snippet()
    body = b'{"id": "abc", "status": "completed"}'
    headers = signed_headers("a-secret", int(time.time()), body)
    assert is_from_imgpipe("a-secret", headers, body)
    assert not is_from_imgpipe("another-secret", headers, body)
    assert not is_from_imgpipe("a-secret", headers, body + b" ")
    old = signed_headers("a-secret", int(time.time()) - 3600, body)
    assert not is_from_imgpipe("a-secret", old, body)
