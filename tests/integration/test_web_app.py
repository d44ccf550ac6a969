"""A web app on its own origin uploading to imgpipe, as docs/guides/web-apps.md
tells it to: CORS, browser upload tokens minted by the app's backend, Uppy and plain fetch in
Chromium, and what the browser is kept from (framing, inline scripts, a polyglot original).

The app is a page served by this test on another port of 127.0.0.1 (another origin), with its
backend's token route; the API is a second gunicorn on the session's stack with
IMGPIPE_CORS_ORIGINS naming that origin, IMGPIPE_UPLOAD_TOKEN_SECRET, and IMGPIPE_API_TOKEN set,
which the page never has.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import secrets
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from playwright.sync_api import Error as PlaywrightError

from imagegen import encode, photo_like, photo_like_jpeg
from pipeline_client import put_file
from imgpipe import uploads
from cli.stack import free_port, wait_until
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from imgpipe.upload_tokens import mint
from doc_examples import doc_example
from web_app_server import WebApp, assert_thumbnail_loaded, finished_entries
from web_bundle import pinned_versions

SECRET = "web-app-test-secret-" + "x" * 20
API_TOKEN = "the-api-token-no-page-ever-sees"
TIMEOUT_MS = 60_000
POLYGLOT_TITLE = "the polyglot ran"


@pytest.fixture(scope="module")
def web_app():
    with WebApp(SECRET) as app:
        yield app


@pytest.fixture(scope="module")
def web_api(stack, web_app):
    """The API as a web app's deployment runs it, beside the session's own, sharing its stack."""
    port = free_port()
    env = {**stack.env(), "IMGPIPE_CORS_ORIGINS": web_app.origin, "IMGPIPE_UPLOAD_TOKEN_SECRET": SECRET,
           "IMGPIPE_API_TOKEN": API_TOKEN}
    process = stack.spawn("api-web", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                                      "--workers", "2", "--graceful-timeout", "5", "api.wsgi:app"], env)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return response.status == 200

    try:
        wait_until(healthy, 30, "the web app's API", process, stack.path("log", "api-web.log"))
        yield url
    finally:
        stack.stop_process("api-web")


@pytest.fixture
def page(browser, web_app, web_api):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{web_app.origin}/?api={web_api}")
    yield page
    context.close()


def test_uppy_on_another_origin_uploads_three_images_with_a_browser_token(page, web_app, web_api, stack, tmp_path):
    transparent = photo_like(800, 600, seed=3).convert("RGBA")
    transparent.putalpha(Image.linear_gradient("L").resize((800, 600)))
    files = {"harbour.jpg": photo_like_jpeg(1600, 1000, seed=1),
             "sticker.png": encode(transparent, "PNG"),
             "camera-12mp.jpg": photo_like_jpeg(4000, 3000, seed=2)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    versions = page.evaluate("[WebApp.Uppy.VERSION, WebApp.AwsS3.VERSION]")
    assert versions == [pinned_versions()["@uppy/core"], pinned_versions()["@uppy/aws-s3"]]

    page.set_input_files("#uppy-files", [str(tmp_path / name) for name in files])
    entries = finished_entries(page, 3)

    assert sorted(entries) == sorted(files)
    for entry in entries.values():
        assert_thumbnail_loaded(page, entry)
    token_id = web_app.minted[-1]
    database = uploads.connect(stack.settings.database)
    for name, entry in entries.items():
        results = json.loads(entry.get_attribute("data-results"))
        row = uploads.get_upload(database, results["id"])
        assert (row["filename"], row["status"], row["upload_token_id"]) == (name, "completed", token_id)
        assert row["bytes"] == len(files[name])


def test_plain_fetch_from_another_origin_uploads_with_a_browser_token(page, tmp_path):
    (tmp_path / "garden.jpg").write_bytes(photo_like_jpeg(900, 700, seed=4))

    page.set_input_files("#fetch-files", [str(tmp_path / "garden.jpg")])

    assert_thumbnail_loaded(page, finished_entries(page, 1)["garden.jpg"])


def test_without_cors_the_browser_blocks_the_same_app(browser, web_app, stack, tmp_path):
    """The session's own API has no IMGPIPE_CORS_ORIGINS: the same page cannot even ask it for an upload."""
    (tmp_path / "blocked.jpg").write_bytes(photo_like_jpeg(64, 48))
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{web_app.origin}/?api={stack.api_url}")
        page.set_input_files("#fetch-files", [str(tmp_path / "blocked.jpg")])
        page.wait_for_selector("#uploads li[data-status='failed']")
        assert "Failed to fetch" in page.locator("#uploads li").inner_text()
    finally:
        context.close()


def test_the_guide_s_snippets_mint_tokens_the_api_accepts(web_api, tmp_path):
    python_snippet = tmp_path / "mint_token.py"
    python_snippet.write_text(doc_example("mint_token.py") + "\nprint(upload_token(files=1))\n")
    node_snippet = tmp_path / "mint_token.mjs"
    node_snippet.write_text(doc_example("mint_token.mjs") + "\nconsole.log(uploadToken({ files: 1 }));\n")
    environment = {"IMGPIPE_UPLOAD_TOKEN_SECRET": SECRET, "PATH": "/usr/bin:/bin"}

    for command in ([sys.executable, str(python_snippet)], ["node", str(node_snippet)]):
        token = subprocess.run(command, env=environment, capture_output=True, text=True, check=True).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        body = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000}
        created = requests.post(f"{web_api}/uploads", json=body, headers=headers, timeout=10)
        assert created.status_code == 201, (command[0], created.text)
        upload_id = created.json()["id"]
        assert requests.get(f"{web_api}/uploads/{upload_id}/status", headers=headers, timeout=10).status_code == 200
        over = requests.post(f"{web_api}/uploads", json=body, headers=headers, timeout=10)  # the snippet's cap: 1 file
        assert (over.status_code, over.json()["error"]["code"]) == (403, "token_exhausted"), command[0]
        tampered = {"Authorization": f"Bearer {token[:-2]}{'AB' if token[-2:] != 'AB' else 'CD'}"}
        assert requests.get(f"{web_api}/uploads/{upload_id}/status", headers=tampered, timeout=10).status_code == 401


def test_a_token_cap_holds_across_gunicorn_workers_under_concurrent_requests(web_api):
    token = mint(SECRET, "burst-" + secrets.token_hex(4), int(time.time()) + 600, max_files=5)

    def create(_):
        with requests.Session() as session:  # a connection each, so both workers take requests
            return session.post(f"{web_api}/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000},
                                headers={"Authorization": f"Bearer {token}"}, timeout=20)

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(create, range(24)))

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * 5 + [403] * 19
    assert {answer.json()["error"]["code"] for answer in answers if answer.status_code == 403} == {"token_exhausted"}


def polyglot_png() -> bytes:
    """A valid PNG whose text chunk is a script: rendered as HTML, it runs (the `">` first closes
    the tag the HTML parser makes of the chunk's name)."""
    info = PngInfo()
    info.add_text("Comment", f'"><script>document.title = {POLYGLOT_TITLE!r}</script>')
    buffer = io.BytesIO()
    photo_like(320, 240, seed=5).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def test_an_uploaded_html_polyglot_opens_as_a_download_not_as_a_page_of_the_store(browser, api, stack, tmp_path):
    (tmp_path / "polyglot.png").write_bytes(polyglot_png())
    created = api.create_for(tmp_path / "polyglot.png", "image/png")
    put_file(created["upload"], tmp_path / "polyglot.png")
    assert api.wait_final(created["id"])["status"] == "completed"
    original = api.get(f"/uploads/{created['id']}/results").json()["original"]
    answered = requests.get(original, timeout=10)
    assert answered.headers["Content-Type"] == "image/png"
    assert answered.headers["Content-Disposition"].startswith('attachment; filename="polyglot.png"')
    served_as_html = Storage(stack.settings, ROOT).presign_get(
        created["key"], 60, uploads.utcnow(), {"Content-Type": "text/html", "Content-Disposition": "inline"})

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(served_as_html)  # the danger the result URL avoids: the same bytes as a page
        assert page.title() == POLYGLOT_TITLE
        page.goto("about:blank")
        with page.expect_download() as download:
            with contextlib.suppress(PlaywrightError):  # a navigation that turns into a download is aborted
                page.goto(original)
        assert download.value.suggested_filename == "polyglot.png"
        assert page.title() != POLYGLOT_TITLE
    finally:
        context.close()


def test_the_upload_page_works_under_its_policy_which_blocks_inline_script(browser, stack, tmp_path):
    (tmp_path / "pier.jpg").write_bytes(photo_like_jpeg(640, 480, seed=6))
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.add_init_script("window.violations = []; document.addEventListener('securitypolicyviolation',"
                         " (event) => window.violations.push(`${event.violatedDirective} ${event.blockedURI}`));")
    try:
        page.goto(stack.login_link())  # the one-time link signs the browser in and opens the page
        page.set_input_files("#files", [str(tmp_path / "pier.jpg")])
        thumbnail = page.locator("#uploads .upload[data-status='completed'] img")
        thumbnail.wait_for(state="visible")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
        assert page.evaluate("window.violations") == []

        page.evaluate("""() => {
            const script = document.createElement('script');
            script.textContent = 'window.injected = true';
            document.head.append(script);
        }""")
        page.wait_for_function("window.violations.length > 0")
        assert page.evaluate("window.injected === undefined")
        assert page.evaluate("window.violations")[0].startswith("script-src")
    finally:
        context.close()


def test_another_site_cannot_frame_the_page_or_the_api(browser, web_app, stack):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(stack.login_link())  # even a browser signed in to the API gets nothing framed
        page.locator("#files").wait_for(state="attached")
        for target, mark in ((f"{web_app.origin}/", "#uppy-files"), (stack.api_url + "/", "#files"),
                             (stack.api_url + "/openapi.json", "body")):
            page.goto(f"{web_app.origin}/frame?src={target}")
            page.wait_for_load_state("load")
            frame = page.frame_locator("#framed")
            if urlsplit(target).netloc == urlsplit(web_app.origin).netloc:  # the app framing itself: allowed
                assert frame.locator(mark).count() == 1
            else:
                framed = page.frames[1]
                assert framed.url.startswith("chrome-error://") or framed.locator(mark).count() == 0, framed.url
    finally:
        context.close()
