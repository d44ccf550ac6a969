"""GET /uploads/<id>/<preset> in public delivery mode: open to anyone, a redirect to the object's
permanent URL, which a shared cache may keep. (That the bucket serves that URL anonymously is the
public-derivatives setup's to prove.)"""

from __future__ import annotations

import pytest
import requests

from imgpipe import uploads
from imgpipe.error_codes import ApiError
from pipeline_client import Api, make_jpegs, put_file
from stacks import running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("public-delivery"), delivery="public") as running:
        yield running


def test_anyone_is_sent_to_the_permanent_url(stack, tmp_path):
    api = Api.of(stack)
    [source] = make_jpegs(tmp_path, 1, size=(320, 240))
    created = api.create_for(source, formats=["webp", "jpeg"])
    put_file(created["upload"], source)
    assert api.wait_final(created["id"], 60)["status"] == "completed"
    address = f"{stack.api_url}/uploads/{created['id']}/thumbnail"
    bucket_url = f"{stack.settings.public_s3_url}/{stack.settings.s3_bucket_name}"
    objects = uploads.derivative_objects(uploads.get_upload(uploads.connect(stack.settings.database), created["id"]))

    for accept, fmt in (("image/webp,*/*", "webp"), ("*/*", "jpeg")):
        response = requests.get(address, headers={"Accept": accept}, allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text
        assert response.headers["Location"] == f"{bucket_url}/{objects['thumbnail'][fmt].key}"
        assert response.headers["Cache-Control"] == f"public, max-age={stack.settings.delivery_max_age}"
        assert response.headers["Vary"] == "Accept"
    assert requests.get(address + "?sig=forged", allow_redirects=False, timeout=10).status_code == 302, \
        "public mode asks for no signature"


def test_the_rest_of_the_api_stays_closed(stack):
    upload_id = Api.of(stack).create()["id"]
    for path in (f"/uploads/{upload_id}", f"/uploads/{upload_id}/results", f"/uploads/{upload_id}/status"):
        response = requests.get(stack.api_url + path, timeout=10)
        assert (response.status_code, response.json()["error"]["code"]) == (401, ApiError.UNAUTHORIZED), path
    response = requests.get(f"{stack.api_url}/uploads/{upload_id}/thumbnail", timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (409, ApiError.UPLOAD_NOT_COMPLETED)
    response = requests.get(f"{stack.api_url}/uploads/{upload_id}/originals", timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (404, ApiError.NOT_FOUND), \
        "an original is no preset"
