"""An upload URL that is never used: the row ends failed/upload_expired, and the URL dies."""

from __future__ import annotations

import time

from pipeline_client import Api, curl_put, make_jpegs


def test_an_unused_upload_url_expires(stack_with, tmp_path):
    stack = stack_with(upload_url_ttl=2, upload_grace=1, sweep_min_age=0.5)
    api = Api(stack.api_url)
    [late] = make_jpegs(tmp_path / "in", 1)
    created = api.create_for(late)

    final = api.wait_final(created["id"], timeout=20)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "upload_expired"
    assert curl_put(created["upload"], late).stdout == "403"
    time.sleep(1.5)
    assert api.get(f"/uploads/{created['id']}/status").json()["status"] == "failed"
