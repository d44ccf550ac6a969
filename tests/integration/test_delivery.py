"""GET /uploads/<id>/<preset> on a real stack in private delivery mode: signed URLs open it and
nothing else does, the redirect leads to the image, the format follows Accept, and caches are told
enough to keep the answer (Vary, ETag, 304)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from doc_examples import doc_example
from imgpipe import delivery_urls
from imgpipe.error_codes import ApiError
from loopback_server import html_page, serving
from pipeline_client import Api, fetched_image, make_jpegs, put_file
from stacks import running_stack

SECRET = secrets.token_hex(32)
ANONYMOUS_LIMIT = 8  # per minute; the last test meets it, the others make fewer such requests
FORMATS = ["avif", "webp", "jpeg"]
THUMBNAIL = (300, 225)  # of a 320x240 original: the built-in thumbnail fits a 300x300 box
PILLOW_NAMES = {"avif": "AVIF", "webp": "WEBP", "jpeg": "JPEG"}
EXTENSIONS = {"avif": ".avif", "webp": ".webp", "jpeg": ".jpg"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("delivery"), delivery_secret=SECRET,
                       rate_limit_anonymous=f"{ANONYMOUS_LIMIT} per minute") as running:
        yield running


@pytest.fixture(scope="module")
def api(stack):
    return Api.of(stack)


@pytest.fixture(scope="module")
def anonymous(stack):
    return requests.Session()


@pytest.fixture(scope="module")
def upload_id(api, tmp_path_factory):
    """A completed upload with the thumbnail in AVIF, WebP and JPEG."""
    [source] = make_jpegs(tmp_path_factory.mktemp("sources"), 1, size=(320, 240))
    created = api.create_for(source, formats=FORMATS)
    put_file(created["upload"], source)
    assert api.wait_final(created["id"], 60)["status"] == "completed"
    return created["id"]


def address(stack, upload_id: str, preset: str = "thumbnail", query: str = "") -> str:
    return f"{stack.api_url}/uploads/{upload_id}/{preset}" + (f"?{query}" if query else "")


def signed(stack, upload_id: str, preset: str = "thumbnail", expires_at: int | None = None,
           secret: str = SECRET) -> str:
    return stack.api_url + delivery_urls.path(secret, upload_id, preset, expires_at)


def refused(response: requests.Response, status: int, code: ApiError) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert response.headers["Cache-Control"] == "no-store"
    return body


def test_a_signed_url_redirects_to_the_image(stack, anonymous, upload_id):
    for expires_at in (None, int(time.time()) + 3600):
        response = anonymous.get(signed(stack, upload_id, expires_at=expires_at), allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text
        location = response.headers["Location"]
        assert urlsplit(location).netloc == urlsplit(stack.settings.public_s3_url).netloc
        assert "X-Amz-Signature" in parse_qs(urlsplit(location).query), "a presigned GET in private mode"
        assert response.headers["Cache-Control"] == f"public, max-age={stack.settings.delivery_max_age}"
        image = fetched_image(location)
        assert (image.format, image.size) == ("JPEG", THUMBNAIL)


def test_the_api_credential_opens_it_too_but_only_for_its_own_cache(stack, api, upload_id):
    response = api.http.get(address(stack, upload_id), allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    assert response.headers["Cache-Control"] == f"private, max-age={stack.settings.delivery_max_age}"
    assert fetched_image(response.headers["Location"]).size == THUMBNAIL


def test_nothing_else_opens_it(stack, anonymous, upload_id):
    response = anonymous.get(address(stack, upload_id), allow_redirects=False, timeout=10)
    refused(response, 401, ApiError.UNAUTHORIZED)
    assert "Location" not in response.headers


def test_an_altered_url_is_refused(stack, anonymous, upload_id, api):
    expires_at = int(time.time()) + 3600
    good = parse_qs(urlsplit(signed(stack, upload_id, expires_at=expires_at)).query)
    sig, exp = good["sig"][0], good["exp"][0]
    other_id = api.create()["id"]  # a real upload: the URL names it, but was signed for another
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    for url in (address(stack, other_id, query=f"sig={sig}&exp={exp}"),
                address(stack, upload_id, "resized", f"sig={sig}&exp={exp}"),
                address(stack, upload_id, query=f"sig={sig}&exp={int(exp) + 1}"),
                address(stack, upload_id, query=f"sig={sig}"),
                address(stack, upload_id, query=f"sig={flipped}&exp={exp}")):
        refused(anonymous.get(url, allow_redirects=False, timeout=10), 403, ApiError.INVALID_DELIVERY_SIGNATURE)


def test_an_expired_url_is_refused(stack, anonymous, upload_id):
    url = signed(stack, upload_id, expires_at=int(time.time()) - 1)
    refused(anonymous.get(url, allow_redirects=False, timeout=10), 403, ApiError.DELIVERY_URL_EXPIRED)


def test_a_url_signed_before_the_secret_was_rotated_is_refused(stack, anonymous, upload_id):
    before_rotation = secrets.token_hex(32)  # the secret this stack had before its operator changed it
    url = signed(stack, upload_id, secret=before_rotation)
    refused(anonymous.get(url, allow_redirects=False, timeout=10), 403, ApiError.INVALID_DELIVERY_SIGNATURE)


@pytest.mark.parametrize("query", ["sig=", "sig=short", "sig=%00%ff%fe", "sig=" + "x" * 2000, "sig=a&exp=soon",
                                   "sig=a&exp=-5", "exp=1&sig=" + "=" * 43, "sig=%E2%82%AC" * 3])
def test_a_malformed_signature_is_refused_as_json(stack, anonymous, upload_id, query):
    refused(anonymous.get(address(stack, upload_id, query=query), allow_redirects=False, timeout=10), 403,
            ApiError.INVALID_DELIVERY_SIGNATURE)


@pytest.mark.parametrize("accept, expected", [
    ("image/avif,image/webp,*/*", "avif"),
    ("image/webp,*/*", "webp"),
    ("image/jpeg", "jpeg"),
    (None, "jpeg"),
])
def test_the_format_follows_accept(stack, anonymous, upload_id, accept, expected):
    headers = {"Accept": accept} if accept else {}
    session = requests.Session()
    session.headers.pop("Accept")  # requests sends */* of its own
    response = session.get(signed(stack, upload_id), headers=headers, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    assert response.headers["Vary"] == "Accept"
    location = response.headers["Location"]
    assert urlsplit(location).path.endswith(EXTENSIONS[expected])
    image = fetched_image(location)
    assert (image.format, image.size) == (PILLOW_NAMES[expected], THUMBNAIL)


def test_each_format_has_its_own_etag_and_a_matching_one_gets_304(stack, anonymous, upload_id):
    url = signed(stack, upload_id)
    etags = {}
    for accept in ("image/avif", "image/webp", "image/jpeg"):
        response = anonymous.get(url, headers={"Accept": accept}, allow_redirects=False, timeout=10)
        etag = response.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/"), "a strong ETag"
        assert anonymous.get(url, headers={"Accept": accept}, allow_redirects=False, timeout=10).headers["ETag"] == etag
        etags[accept] = etag
    assert len(set(etags.values())) == 3

    avif = etags["image/avif"]
    for if_none_match in (avif, f'"other", {avif}', "*", f"W/{avif}"):
        response = anonymous.get(url, headers={"Accept": "image/avif", "If-None-Match": if_none_match},
                                 allow_redirects=False, timeout=10)
        assert response.status_code == 304, if_none_match
        assert (response.headers["ETag"], response.headers["Vary"]) == (avif, "Accept")
        assert "Location" not in response.headers and response.content == b""
    response = anonymous.get(url, headers={"Accept": "image/webp", "If-None-Match": avif}, allow_redirects=False,
                             timeout=10)
    assert response.status_code == 302, "another format, another ETag"


def test_head_answers_as_get_without_a_body(stack, anonymous, upload_id):
    response = anonymous.head(signed(stack, upload_id), headers={"Accept": "image/webp"}, allow_redirects=False,
                              timeout=10)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path.endswith(".webp")
    assert response.content == b""


def test_unknown_presets_and_uploads_get_404_json(stack, api, upload_id):
    unknown_upload = "f" * 32
    refused(api.http.get(address(stack, unknown_upload), allow_redirects=False, timeout=10), 404,
            ApiError.NOT_FOUND)
    for preset in ("square", "Thumbnail", "x" * 300):
        body = refused(api.http.get(address(stack, upload_id, preset), allow_redirects=False, timeout=10), 404,
                       ApiError.NOT_FOUND)
        assert "thumbnail" in body["error"]["message"], "it names the presets there are"
    # Signed for a preset the server does not have: the signature opens it, the preset is still unknown.
    refused(requests.get(signed(stack, upload_id, "square"), allow_redirects=False, timeout=10), 404,
            ApiError.NOT_FOUND)


def test_a_preset_the_upload_lacks_gets_404(stack, api, tmp_path):
    [source] = make_jpegs(tmp_path, 1, size=(320, 240))
    created = api.create_for(source, presets=["thumbnail"])
    put_file(created["upload"], source)
    assert api.wait_final(created["id"], 60)["status"] == "completed"
    body = refused(api.http.get(address(stack, created["id"], "resized"), allow_redirects=False, timeout=10), 404,
                   ApiError.NOT_FOUND)
    assert "no 'resized' derivative" in body["error"]["message"]
    assert api.http.get(address(stack, created["id"]), allow_redirects=False, timeout=10).status_code == 302


def test_an_upload_not_completed_or_deleted_says_so(stack, api, upload_id, tmp_path):
    pending = api.create()["id"]
    body = refused(api.http.get(address(stack, pending), allow_redirects=False, timeout=10), 409,
                   ApiError.UPLOAD_NOT_COMPLETED)
    assert "pending" in body["error"]["message"]

    [source] = make_jpegs(tmp_path, 1, size=(320, 240))
    created = api.create_for(source)
    put_file(created["upload"], source)
    assert api.wait_final(created["id"], 60)["status"] == "completed"
    url = signed(stack, created["id"])
    assert requests.get(url, allow_redirects=False, timeout=10).status_code == 302
    assert api.delete(created["id"]).status_code == 200
    refused(requests.get(url, allow_redirects=False, timeout=10), 410, ApiError.UPLOAD_DELETED)


def test_the_cli_mints_a_url_that_opens_it(stack, upload_id):
    from click.testing import CliRunner

    from cli.main import cli

    env = {"IMGPIPE_DELIVERY_SECRET": SECRET, "IMGPIPE_API": stack.api_url}
    minted = CliRunner().invoke(cli, ["delivery-url", upload_id, "thumbnail", "--ttl", "600", "--json"], env=env)
    assert minted.exit_code == 0, minted.output
    url = json.loads(minted.output)["url"]
    assert url.startswith(f"{stack.api_url}/uploads/{upload_id}/thumbnail?sig=") and "&exp=" in url
    response = requests.get(url, headers={"Accept": "image/webp"}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    assert fetched_image(response.headers["Location"]).format == "WEBP"

    refused_cli = CliRunner().invoke(cli, ["delivery-url", upload_id, "thumbnail"], env={"IMGPIPE_DELIVERY_SECRET": ""})
    assert refused_cli.exit_code != 0 and "IMGPIPE_DELIVERY_SECRET" in refused_cli.output


def test_the_guide_s_snippets_mint_urls_the_api_accepts(stack, upload_id, tmp_path):
    python_snippet = tmp_path / "mint_delivery_url.py"
    python_snippet.write_text(doc_example("mint_delivery_url.py") + "\nimport sys\n"
                              "print(delivery_url(sys.argv[1], 'thumbnail', *map(int, sys.argv[2:])))\n")
    node_snippet = tmp_path / "mint_delivery_url.mjs"
    node_snippet.write_text(doc_example("mint_delivery_url.mjs") + "\nconst [id, seconds] = process.argv.slice(2);\n"
                            "console.log(deliveryUrl(id, 'thumbnail', seconds && Number(seconds)));\n")
    environment = {"IMGPIPE_DELIVERY_SECRET": SECRET, "IMGPIPE_PUBLIC_API": stack.api_url, "PATH": "/usr/bin:/bin"}

    for command in ([sys.executable, str(python_snippet)], ["node", str(node_snippet)]):
        for seconds in ([], ["600"], ["-5"]):
            url = subprocess.run([*command, upload_id, *seconds], env=environment, capture_output=True, text=True,
                                 check=True).stdout.strip()
            assert url.startswith(f"{stack.api_url}/uploads/{upload_id}/thumbnail?sig="), url
            response = requests.get(url, allow_redirects=False, timeout=10)
            if seconds == ["-5"]:
                refused(response, 403, ApiError.DELIVERY_URL_EXPIRED)
            else:
                assert response.status_code == 302, (command[0], seconds, response.text)


def test_a_window_s_redirects_share_one_url_that_outlives_any_kept_redirect(stack, anonymous, upload_id):
    """Browsers keep one copy of the image for all the redirects of a window, and a redirect kept
    max-age seconds (or renewed by a 304, which only its own window's ETag gets) points at a URL
    that is still valid."""
    url, max_age = signed(stack, upload_id), stack.settings.delivery_max_age
    answers = []
    for _ in range(3):  # a window is TTL - max-age long: at most one of two gaps crosses into the next
        before = time.time()
        response = anonymous.get(url, allow_redirects=False, timeout=10)
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        assert signed_at.timestamp() <= before
        assert signed_at.timestamp() + int(query["X-Amz-Expires"][0]) >= time.time() + max_age
        answers.append((response.headers["Location"], response.headers["ETag"]))
    assert answers[0] == answers[1] or answers[1] == answers[2], answers
    assert len({location for location, _ in answers}) == len({etag for _, etag in answers}), "one ETag per URL"


def test_chromium_on_another_origin_shows_the_avif_through_a_signed_url(browser, stack, upload_id):
    url = signed(stack, upload_id)
    html = f'<img id="a" src="{url}" width="300"><img id="b" src="{signed(stack, upload_id, "resized")}">'
    context = browser.new_context()
    try:
        page = context.new_page()
        types = {}
        page.on("response", lambda response: types.update({response.url: response.headers.get("content-type")}))
        with serving(lambda path, headers: html_page(html)) as origin:
            page.goto(origin)
            page.wait_for_function("[...document.images].every(image => image.complete)")
            sizes = page.evaluate("[...document.images].map(image => [image.naturalWidth, image.naturalHeight])")
        assert sizes == [list(THUMBNAIL), [320, 240]], "the resized one is the upright original, not upscaled"
        images = {address: kind for address, kind in types.items() if kind and kind.startswith("image/")}
        assert sorted(images.values()) == ["image/avif", "image/avif"], types
        assert all(urlsplit(address).netloc == urlsplit(stack.settings.public_s3_url).netloc for address in images)
    finally:
        context.close()


def test_signed_urls_are_not_held_to_the_anonymous_limit(stack, upload_id):
    """A gallery page loads many images at once: its signed URLs pass even once the address has
    used up what it may ask without a credential. Last in this module: it uses that limit up."""
    url = signed(stack, upload_id)
    with requests.Session() as session:
        assert all(session.get(url, allow_redirects=False, timeout=10).status_code == 302
                   for _ in range(ANONYMOUS_LIMIT * 2))
        unsigned = [session.get(address(stack, upload_id), allow_redirects=False, timeout=10).status_code
                    for _ in range(ANONYMOUS_LIMIT + 2)]
        assert 429 in unsigned and set(unsigned) <= {401, 429}, unsigned
        assert all(session.get(url, allow_redirects=False, timeout=10).status_code == 302
                   for _ in range(ANONYMOUS_LIMIT * 2))
