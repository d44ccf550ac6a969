"""Big files from browsers, in parts straight to MinIO: Uppy on another origin (the web-apps
guide's module) and the service's own page, in Chromium, with a cut connection in the middle of a
part.

Every browser request to the store goes through a TCP proxy on loopback (tests/cutting_proxy.py):
the stack's S3_BASE_URL is the proxy, so every URL the API signs is signed for it. The proxy
counts the part PUTs it passed on and cuts one when asked; MinIO's own request counters, and the
part count in the finished object's ETag, say the same from the store's side.
"""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import timedelta

import pytest
import requests
from minio.error import S3Error

from bench.minio_requests import request_counts
from big_files import noise_png
from cli.stack import free_port
from cutting_proxy import CuttingProxy
from imgpipe import uploads
from imgpipe.multipart import plan_parts
from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from imagegen import photo_like_jpeg
from polling import eventually
from stacks import running_stack
from web_app_server import WebApp, assert_thumbnail_loaded, finished_entries

SECRET = "multipart-web-test-secret-" + "x" * 20
TIMEOUT_MS = 120_000
MAX_UPLOAD_BYTES = 100 * 2**20  # above the 60 MB image; the default (50 MiB) is below it
PART_PUT = "PutObjectPart"


@pytest.fixture(scope="module")
def web_app():
    with WebApp(SECRET) as app:
        yield app


@pytest.fixture(scope="module")
def proxy():
    proxy = CuttingProxy(upstream_port=free_port()).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, proxy, web_app):
    """A stack of its own (on SQLite): MinIO behind the proxy, a size limit above the big image,
    and CORS and upload tokens for the web app's origin."""
    with running_stack(tmp_path_factory.mktemp("multipart-web"), s3_endpoint_url=f"http://127.0.0.1:{proxy.upstream_port}",
                       s3_base_url=proxy.url, max_upload_bytes=MAX_UPLOAD_BYTES, cors_origins=web_app.origin,
                       upload_token_secret=SECRET) as running:
        yield running


@pytest.fixture(scope="module")
def api_proxy(stack):
    """The web app's page calls the API through a proxy too, which counts the calls it makes."""
    proxy = CuttingProxy(upstream_port=stack.api_port).start()
    yield proxy
    proxy.stop()


def api_calls(proxy, since: int, path_end: str) -> list:
    return [request for request in proxy.requests[since:] if request.method == "GET" and request.path.endswith(path_end)]


@pytest.fixture(scope="module")
def big_image():
    return noise_png(60, seed=26)


@pytest.fixture(scope="module")
def medium_image():
    return noise_png(24, seed=27)


def new_page(browser, timeout_ms: int = TIMEOUT_MS):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    return context, page


@pytest.fixture
def app_page(browser, web_app, api_proxy):
    context, page = new_page(browser)
    page.goto(f"{web_app.origin}/?api={api_proxy.url}")
    yield page
    context.close()


def parts_in_store(stack, key: str) -> int:
    """How many parts MinIO says the object was completed from: its ETag ends in -<count>."""
    etag = Storage(stack.settings, ROOT).client.stat_object(stack.settings.s3_bucket_name, key).etag
    assert "-" in etag, f"{key} was not completed from parts (ETag {etag})"
    return int(etag.rsplit("-", 1)[1])


def part_puts_between(before: list, after: list) -> list:
    return after[len(before):]


def stored_parts(stack, upload_id: str) -> set[int]:
    """The numbers of the parts MinIO holds for an open upload in parts."""
    row = uploads.get_upload(uploads.connect(stack.settings.database), upload_id)
    listed = Storage(stack.settings, ROOT).client._list_parts(stack.settings.s3_bucket_name, row["key"],
                                                              row["multipart_upload_id"])
    return {part.part_number for part in listed.parts}


def held_in_flight(stack, proxy, upload_id: str, size: int, puts_before: list) -> None:
    """Waits until every part of the upload but part 2, which the proxy stalls, is in the store."""
    count = plan_parts(size).count
    eventually(lambda: stored_parts(stack, upload_id) == set(range(1, count + 1)) - {2}, 60,
               "every part but the held one in the store")
    assert [put.part_number for put in part_puts_between(puts_before, proxy.part_puts()) if put.stalled] == [2]


def expected_parts(size: int, puts) -> int:
    """The part count the API's plan makes for `size` bytes, once every PUT is checked to carry
    its part's planned length."""
    plan = plan_parts(size)
    assert {(put.part_number, put.length) for put in puts} == {(n, plan.length(n)) for n in range(1, plan.count + 1)}
    return plan.count


# --- MinIO's CORS --------------------------------------------------------------------------------


def test_minio_lets_a_page_of_another_origin_read_the_etag_of_a_part_it_put(browser, web_app, stack):
    """MinIO's CORS comes from its configuration (MINIO_API_CORS_ALLOW_ORIGIN, `*` unless set),
    not from the bucket, and exposes a fixed list of headers that includes ETag: a page of
    another origin reads each part's ETag, the one MinIO lists for the part."""
    client = Storage(stack.settings, ROOT).client
    bucket, key = stack.settings.s3_bucket_name, f"originals/cors-check-{secrets.token_hex(4)}.png"
    upload_id = client._create_multipart_upload(bucket, key, {"Content-Type": "image/png"})
    try:
        url = client.get_presigned_url("PUT", bucket, key, expires=timedelta(minutes=5),
                                       extra_query_params={"uploadId": upload_id, "partNumber": "1"})
        context, page = new_page(browser)
        try:
            page.goto(f"{web_app.origin}/")
            status, etag = page.evaluate("""async (url) => {
                const response = await fetch(url, { method: "PUT", body: new Blob([new Uint8Array(1024)]) });
                return [response.status, response.headers.get("ETag")];
            }""", url)
        finally:
            context.close()
        listed = client._list_parts(bucket, key, upload_id).parts
        assert status == 200
        assert [(part.part_number, part.etag) for part in listed] == [(1, etag.strip('"'))]
        # PutBucketCors is not how: this server answers it NotImplemented.
        with pytest.raises(S3Error) as refused:
            client._execute("PUT", bucket, body=b"<CORSConfiguration/>", query_params={"cors": ""})
        assert refused.value.code == "NotImplemented"
    finally:
        client._abort_multipart_upload(bucket, key, upload_id)


# --- Uppy on another origin ----------------------------------------------------------------------


def test_uppy_uploads_a_60_mb_image_in_parts_and_its_thumbnail_loads(app_page, web_app, stack, proxy, big_image):
    size = big_image.stat().st_size
    before = proxy.part_puts()

    app_page.set_input_files("#uppy-files", [str(big_image)])
    entry = finished_entries(app_page, 1)[big_image.name]

    assert_thumbnail_loaded(app_page, entry)
    results = app_page.evaluate("e => JSON.parse(e.dataset.results)", entry.element_handle())
    row = uploads.get_upload(uploads.connect(stack.settings.database), results["id"])
    assert (row["status"], row["bytes"], row["upload_token_id"]) == ("completed", size, web_app.minted[-1])
    puts = part_puts_between(before, proxy.part_puts())
    sent = Counter(put.part_number for put in puts)
    count = expected_parts(size, puts)
    assert count > 1
    assert sent == Counter(range(1, count + 1))  # every part once
    assert sum(put.sent for put in puts) == size
    assert parts_in_store(stack, row["key"]) == count


def test_a_part_cut_in_the_middle_is_sent_again_and_nothing_else_is(app_page, stack, proxy, api_proxy, medium_image):
    size = medium_image.stat().st_size
    calls_before = len(api_proxy.requests)
    before, counted_before = proxy.part_puts(), request_counts(stack.settings)
    canceled_before = request_counts(stack.settings, "canceled_total")
    proxy.cut_part(2, after=3 * 2**20)

    app_page.set_input_files("#uppy-files", [str(medium_image)])
    entry = finished_entries(app_page, 1)[medium_image.name]

    assert_thumbnail_loaded(app_page, entry)
    results = app_page.evaluate("e => JSON.parse(e.dataset.results)", entry.element_handle())
    row = uploads.get_upload(uploads.connect(stack.settings.database), results["id"])
    assert (row["status"], row["bytes"]) == ("completed", size)
    puts = part_puts_between(before, proxy.part_puts())
    count = expected_parts(size, puts)
    cut = [put for put in puts if put.cut]
    assert [(put.part_number, put.sent) for put in cut] == [(2, 3 * 2**20)]
    assert Counter(put.part_number for put in puts) == Counter(range(1, count + 1)) + Counter([2])
    assert sum(put.sent for put in puts if not put.cut) == size
    # Uppy itself sent the part again, with a URL it asked for afresh.
    signed = Counter(int(call.path.rsplit("/", 1)[1]) for call in api_calls(api_proxy, calls_before, "") if
                     "/multipart/parts/" in call.path)
    assert signed == Counter(range(1, count + 1)) + Counter([2])
    # The store's side: one PutObjectPart more than there are parts, that one cancelled by its
    # client going away, and the object made of `count` parts.
    counted, canceled = request_counts(stack.settings), request_counts(stack.settings, "canceled_total")
    assert counted[PART_PUT] - counted_before[PART_PUT] == count + 1
    assert canceled[PART_PUT] - canceled_before[PART_PUT] == 1
    assert parts_in_store(stack, row["key"]) == count


CANCEL_AFTER_FIRST_PART = """
document.addEventListener("uppy-ready", ({ detail: uppy }) => {
  uppy.once("s3-multipart:part-uploaded", () => uppy.cancelAll());
});
"""


def test_uppy_cancelled_after_a_part_aborts_the_upload_and_leaves_no_parts(browser, web_app, stack, api_proxy,
                                                                            medium_image):
    context, page = new_page(browser)
    page.add_init_script(CANCEL_AFTER_FIRST_PART)
    database = uploads.connect(stack.settings.database)
    tokens_before = len(web_app.minted)

    def the_upload():
        rows = uploads.list_uploads(database, status=None, limit=10)
        return len(web_app.minted) > tokens_before and next(
            (row for row in rows if row["upload_token_id"] == web_app.minted[-1]), None)

    try:
        page.goto(f"{web_app.origin}/?api={api_proxy.url}")
        page.set_input_files("#uppy-files", [str(medium_image)])
        upload_id = eventually(the_upload, 30, "the upload's row")["id"]
        row = eventually(lambda: (found := uploads.get_upload(database, upload_id))["status"] != "pending" and found,
                         30, "the upload to end")
    finally:
        context.close()

    assert (row["status"], row["error_code"]) == ("failed", "upload_aborted")
    client = Storage(stack.settings, ROOT).client
    with pytest.raises(S3Error) as gone:
        client._list_parts(stack.settings.s3_bucket_name, row["key"], row["multipart_upload_id"])
    assert gone.value.code == "NoSuchUpload"


PAUSE_AND_RESUME_AFTER_FIRST_PART = """
document.addEventListener("uppy-ready", ({ detail: uppy }) => {
  uppy.once("s3-multipart:part-uploaded", (file, part) => {
    window.pausedAfterPart = part.PartNumber;
    uppy.pauseAll();
    uppy.resumeAll();
  });
});
"""


def test_uppy_paused_and_resumed_lists_the_parts_and_sends_only_the_missing_ones(browser, web_app, proxy, api_proxy,
                                                                                   medium_image):
    """Resuming, Uppy asks listParts which parts the store holds: the part it had finished is not
    sent again. (A part in flight at the pause is sent again, even one whose bytes had all gone:
    its answer was given up, and the store may not have kept it.)"""
    size = medium_image.stat().st_size
    before, calls_before = proxy.part_puts(), len(api_proxy.requests)
    context, page = new_page(browser)
    page.add_init_script(PAUSE_AND_RESUME_AFTER_FIRST_PART)
    try:
        page.goto(f"{web_app.origin}/?api={api_proxy.url}")
        page.set_input_files("#uppy-files", [str(medium_image)])
        entry = finished_entries(page, 1)[medium_image.name]
        assert_thumbnail_loaded(page, entry)
        finished = page.evaluate("window.pausedAfterPart")
    finally:
        context.close()

    puts = part_puts_between(before, proxy.part_puts())
    whole = Counter(put.part_number for put in puts if put.sent == put.length)
    count = expected_parts(size, [put for put in puts if put.sent == put.length])
    assert set(whole) == set(range(1, count + 1))
    assert whole[finished] == 1 and Counter(put.part_number for put in puts)[finished] == 1
    assert len(api_calls(api_proxy, calls_before, "/multipart/parts")) == 1


KEPT_UPLOAD_IDS = "() => Object.values(JSON.parse(localStorage.getItem('imgpipe.uploads')) || {}).map((a) => a.id)"


def uppy_reloaded_mid_upload(browser, web_app, stack, proxy, api_proxy, image, visitors: list[str]):
    """Adds `image` to the web app's Uppy, reloads the page while its part 2 is held in flight
    and every other part is in the store, then adds it again. The app's `visitor` cookie is
    visitors[0] before the reload and visitors[1] after: the ids of the tokens it mints.
    Returns the first upload's id, the results of the finished one, the POST /uploads and the
    part PUTs made after the reload, and the upload ids the page still keeps."""
    context, page = new_page(browser)
    proxy.stall_part(2, after=2**20)
    before = proxy.part_puts()
    try:
        context.add_cookies([{"name": "visitor", "value": visitors[0], "url": web_app.origin}])
        page.goto(f"{web_app.origin}/?api={api_proxy.url}")
        page.set_input_files("#uppy-files", [str(image)])
        [upload_id] = eventually(lambda: page.evaluate(KEPT_UPLOAD_IDS), 30, "the kept upload")
        held_in_flight(stack, proxy, upload_id, image.stat().st_size, before)
        context.add_cookies([{"name": "visitor", "value": visitors[1], "url": web_app.origin}])
        page.reload()
        puts_before, calls_before = proxy.part_puts(), len(api_proxy.requests)
        page.set_input_files("#uppy-files", [str(image)])
        entry = finished_entries(page, 1)[image.name]
        assert_thumbnail_loaded(page, entry)
        results = page.evaluate("e => JSON.parse(e.dataset.results)", entry.element_handle())
        kept = page.evaluate(KEPT_UPLOAD_IDS)
    finally:
        context.close()
    posts = [call for call in api_proxy.requests[calls_before:] if call.method == "POST" and call.path == "/uploads"]
    return upload_id, results, posts, part_puts_between(puts_before, proxy.part_puts()), kept


def test_uppy_reloaded_mid_upload_sends_only_the_missing_part_when_the_file_is_added_again(
        browser, web_app, stack, proxy, api_proxy, medium_image):
    """The guide's module keeps the upload across the reload, and the visitor's tokens share one
    id, so the new page's token may take it up: Uppy lists the parts and sends the one the reload
    cut off."""
    size = medium_image.stat().st_size
    plan = plan_parts(size)
    visitor = f"visitor-{secrets.token_hex(4)}"
    upload_id, results, posts, puts, kept = uppy_reloaded_mid_upload(
        browser, web_app, stack, proxy, api_proxy, medium_image, [visitor, visitor])

    assert (results["id"], posts, kept) == (upload_id, [], [])
    assert [(put.part_number, put.sent, put.cut or put.stalled) for put in puts] == [(2, plan.length(2), False)]
    row = uploads.get_upload(uploads.connect(stack.settings.database), upload_id)
    assert (row["status"], row["bytes"]) == ("completed", size)
    assert parts_in_store(stack, row["key"]) == plan.count


def test_uppy_reloaded_with_a_token_of_another_id_uploads_the_file_anew(browser, web_app, stack, proxy, api_proxy,
                                                                        medium_image):
    """A token of another id may not read the kept upload, so the module makes a new one."""
    size = medium_image.stat().st_size
    before, after = (f"visitor-{secrets.token_hex(4)}" for _ in range(2))
    upload_id, results, posts, puts, kept = uppy_reloaded_mid_upload(
        browser, web_app, stack, proxy, api_proxy, medium_image, [before, after])

    assert results["id"] != upload_id and len(posts) == 1 and kept == []
    count = expected_parts(size, puts)
    database = uploads.connect(stack.settings.database)
    assert uploads.get_upload(database, upload_id)["status"] == "pending"
    row = uploads.get_upload(database, results["id"])
    assert (row["status"], row["bytes"], row["upload_token_id"]) == ("completed", size, after)
    assert parts_in_store(stack, row["key"]) == count


# --- the service's own page ----------------------------------------------------------------------


PROGRESS_RECORDER = """
window.progressSeen = [];
new MutationObserver((records) => {
  for (const record of records) {
    if (record.target.tagName === "PROGRESS") window.progressSeen.push(record.target.value);
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["value"] });
"""


def test_the_page_uploads_in_parts_and_its_bar_reaches_100_after_a_retry(browser, stack, proxy, medium_image):
    size = medium_image.stat().st_size
    before = proxy.part_puts()
    proxy.cut_part(2, after=2 * 2**20)
    context, page = new_page(browser)
    page.add_init_script(PROGRESS_RECORDER)
    try:
        page.goto(stack.login_link())
        page.wait_for_url(stack.api_url + "/")
        page.set_input_files("#files", [str(medium_image)])
        card = page.locator("#uploads .upload")
        page.wait_for_selector("#uploads .upload[data-status='completed'] img")
        assert card.count() == 1
        thumbnail = card.locator("img")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
        seen = page.evaluate("window.progressSeen")
        upload_id = card.get_attribute("data-upload-id")
    finally:
        context.close()

    puts = part_puts_between(before, proxy.part_puts())
    count = expected_parts(size, puts)
    assert [put.part_number for put in puts if put.cut] == [2]
    assert Counter(put.part_number for put in puts) == Counter(range(1, count + 1)) + Counter([2])
    # One bar for the file throughout, which the retry never set back, and which ended full.
    assert seen == sorted(seen) and seen[-1] == 100, seen
    row = uploads.get_upload(uploads.connect(stack.settings.database), upload_id)
    assert (row["status"], row["bytes"]) == ("completed", size)
    assert parts_in_store(stack, row["key"]) == count


def test_the_page_gives_up_on_a_part_that_never_gets_through_and_leaves_no_parts(browser, stack, proxy, medium_image):
    """Five tries (the page waits 0, 1, 3 and 5 s between them), then the upload is aborted."""
    before = proxy.part_puts()
    proxy.cut_part(2, after=2**20, times=5)
    context, page = new_page(browser)
    try:
        page.goto(stack.login_link())
        page.wait_for_url(stack.api_url + "/")
        page.set_input_files("#files", [str(medium_image)])
        card = page.locator("#uploads .upload[data-status='failed']")
        card.wait_for(state="attached", timeout=30_000)
        code, upload_id = card.get_attribute("data-error-code"), card.get_attribute("data-upload-id")
    finally:
        context.close()

    assert code == "upload_failed"
    assert [put.part_number for put in part_puts_between(before, proxy.part_puts()) if put.cut] == [2] * 5
    database = uploads.connect(stack.settings.database)
    row = eventually(lambda: (found := uploads.get_upload(database, upload_id))["status"] != "pending" and found,
                     10, "the abort")
    assert (row["status"], row["error_code"]) == ("failed", "upload_aborted")
    with pytest.raises(S3Error) as gone:
        Storage(stack.settings, ROOT).client._list_parts(stack.settings.s3_bucket_name, row["key"],
                                                         row["multipart_upload_id"])
    assert gone.value.code == "NoSuchUpload"


def test_the_page_sends_a_big_and_a_small_file_chosen_together_each_its_own_way(browser, stack, proxy, medium_image,
                                                                                tmp_path):
    """Chosen together, the two are asked for in one batch; the big one goes in parts, the small
    one in one PUT."""
    small = tmp_path / "small.jpg"
    small.write_bytes(photo_like_jpeg(800, 600, seed=28))
    before = len(proxy.requests)
    context, page = new_page(browser)
    try:
        page.goto(stack.login_link())
        page.wait_for_url(stack.api_url + "/")
        page.set_input_files("#files", [str(medium_image), str(small)])
        page.wait_for_function("() => document.querySelectorAll(`#uploads .upload[data-status='completed']`).length === 2")
        assert page.locator("#uploads .upload").count() == 2
    finally:
        context.close()

    puts = [request for request in proxy.requests[before:] if request.method == "PUT"]
    whole_puts = [put for put in puts if put.part_number is None]
    assert [put.length for put in whole_puts] == [small.stat().st_size]
    expected_parts(medium_image.stat().st_size, [put for put in puts if put.part_number is not None])


def choose_and_hold_part_2(page, stack, proxy, image) -> str:
    """Chooses `image` on a freshly logged-in page and holds its part 2 in flight; returns the
    upload's id once every other part is in the store."""
    proxy.stall_part(2, after=2**20)
    before = proxy.part_puts()
    page.goto(stack.login_link())
    page.wait_for_url(stack.api_url + "/")
    page.set_input_files("#files", [str(image)])
    upload_id = page.locator("#uploads .upload[data-upload-id]").get_attribute("data-upload-id")
    held_in_flight(stack, proxy, upload_id, image.stat().st_size, before)
    return upload_id


def reload_in_the_middle(page, stack, proxy, image) -> str:
    """The page reloaded with part 2 of `image` in flight; returns the upload's id, once the
    reloaded page lists it as interrupted."""
    upload_id = choose_and_hold_part_2(page, stack, proxy, image)
    page.reload()
    card = page.locator(f"#recent .upload[data-upload-id='{upload_id}']")
    card.wait_for()
    assert card.get_attribute("data-status") == "interrupted"
    assert card.locator(".state").inner_text() == "Interrupted: choose the same file again to upload the rest."
    return upload_id


def test_the_page_reloaded_mid_upload_sends_only_the_missing_part_when_the_file_is_chosen_again(
        browser, stack, proxy, medium_image):
    """The part in flight at the reload is lost, the others stay in the store; choosing the same
    file again goes on with the same upload, sends that one part and completes it."""
    size = medium_image.stat().st_size
    plan = plan_parts(size)
    context, page = new_page(browser)
    try:
        upload_id = reload_in_the_middle(page, stack, proxy, medium_image)
        resumed_from = proxy.part_puts()
        posts = []
        page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
        page.set_input_files("#files", [str(medium_image)])
        card = page.locator(f"#uploads .upload[data-upload-id='{upload_id}']")
        page.wait_for_selector(f"#uploads .upload[data-upload-id='{upload_id}'][data-status='completed'] img")
        assert card.get_attribute("data-resumed") == "true"
        assert page.locator(f"#recent .upload[data-upload-id='{upload_id}']").count() == 0
        kept = page.evaluate("() => localStorage.getItem('imgpipe.interrupted')")
    finally:
        context.close()

    assert [url.removeprefix(stack.api_url) for url in posts] == [f"/uploads/{upload_id}/multipart/complete"]
    puts = part_puts_between(resumed_from, proxy.part_puts())
    assert [(put.part_number, put.sent, put.cut or put.stalled) for put in puts] == [(2, plan.length(2), False)]
    row = uploads.get_upload(uploads.connect(stack.settings.database), upload_id)
    assert (row["status"], row["bytes"]) == ("completed", size)
    assert parts_in_store(stack, row["key"]) == plan.count
    assert kept == "{}"


def test_an_interrupted_upload_deleted_meanwhile_is_uploaded_anew_when_the_file_is_chosen_again(
        browser, stack, proxy, medium_image):
    size = medium_image.stat().st_size
    context, page = new_page(browser)
    try:
        deleted_id = reload_in_the_middle(page, stack, proxy, medium_image)
        answer = requests.delete(f"{stack.api_url}/uploads/{deleted_id}", timeout=10,
                                 headers={"Authorization": f"Bearer {stack.settings.api_token}"})
        assert answer.status_code == 200, answer.text
        anew_from = proxy.part_puts()
        page.set_input_files("#files", [str(medium_image)])
        card = page.locator("#uploads .upload[data-status='completed']")
        page.wait_for_selector("#uploads .upload[data-status='completed'] img")
        upload_id = card.get_attribute("data-upload-id")
        assert card.get_attribute("data-resumed") is None
        kept = page.evaluate("() => localStorage.getItem('imgpipe.interrupted')")
    finally:
        context.close()

    assert upload_id != deleted_id
    count = expected_parts(size, part_puts_between(anew_from, proxy.part_puts()))
    database = uploads.connect(stack.settings.database)
    assert uploads.get_upload(database, deleted_id)["status"] == "deleted"
    row = uploads.get_upload(database, upload_id)
    assert (row["status"], row["bytes"]) == ("completed", size)
    assert parts_in_store(stack, row["key"]) == count
    assert kept == "{}"


def test_the_same_file_chosen_again_while_it_is_being_sent_is_a_new_upload(browser, stack, proxy, medium_image):
    """Only an upload nothing on the page is sending any more is taken up again."""
    size = medium_image.stat().st_size
    context, page = new_page(browser)
    try:
        sending_id = choose_and_hold_part_2(page, stack, proxy, medium_image)
        page.set_input_files("#files", [str(medium_image)])
        page.wait_for_selector("#uploads .upload[data-status='completed'] img")
        upload_id = page.locator("#uploads .upload[data-status='completed']").get_attribute("data-upload-id")
        held = page.locator(f"#uploads .upload[data-upload-id='{sending_id}']").get_attribute("data-status")
    finally:
        context.close()

    assert upload_id != sending_id and held == "uploading"
    row = uploads.get_upload(uploads.connect(stack.settings.database), upload_id)
    assert (row["status"], row["bytes"]) == ("completed", size)
