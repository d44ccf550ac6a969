"""A real cache in front of the delivery path, with Chromium on another origin: public delivery
mode, the stack's S3_BASE_URL is the caching proxy's store port (tests/caching_proxy.py), and the
page's `<img>` asks the proxy's API port for GET /uploads/<id>/thumbnail.

The browser loads the thumbnail twice, its own cache switched off for the second load (CDP's
Network.setCacheDisabled), so only the proxy can spare the store: its log says HIT for both the
redirect and the object, and MinIO's own request counters say the store answered nothing for it.
Negotiation goes through the same cache: Chromium, which names image/avif in its Accept, gets the
AVIF; a client that accepts only JPEG gets the JPEG, not the AVIF the cache holds (the API's
`Vary: Accept` keeps a variant per Accept). In private mode the cache keeps the redirect a signed
delivery URL gets, never the presigned image behind it.
"""

from __future__ import annotations

import calendar
import contextlib
import io
import re
import time
from html import escape
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from PIL import Image

from bench.minio_requests import request_counts
from caching_proxy import CACHE_STATUS, caching_proxy
from cli.stack import free_port
from imagegen import photo_like_jpeg
from imgpipe import delivery_urls
from loopback_server import html_page, serving
from pipeline_client import Api, put_file
from polling import eventually
from stacks import running_stack

FORMATS = ["avif", "webp", "jpeg"]
TIMEOUT_MS = 30_000
STORE_READS = ("GetObject", "HeadObject")


class ImagePage:
    """Another site's page, on its own origin: one `<img>` of the address it is given."""

    def __init__(self, origin: str):
        self.origin = origin

    def showing(self, src: str) -> str:
        return f"{self.origin}/?src={quote(src, safe='')}"


def image_page(path: str, headers) -> tuple[int, dict[str, str], bytes]:
    src = parse_qs(path.partition("?")[2]).get("src", [""])[0]
    return html_page(f'<!doctype html><title>gallery</title><img id="thumb" src="{escape(src)}">')


@pytest.fixture(scope="module")
def gallery():
    with serving(image_page) as origin:
        yield ImagePage(origin)


@contextlib.contextmanager
def proxied_stack(var_dir, **overrides):
    """A stack (on SQLite) and the proxy in front of both its API and its store (S3_BASE_URL)."""
    minio_url, api_port = f"http://127.0.0.1:{free_port()}", free_port()
    with caching_proxy({"api": f"http://127.0.0.1:{api_port}", "store": minio_url}) as proxy, \
            running_stack(var_dir, api_port=api_port, s3_endpoint_url=minio_url, s3_base_url=proxy.url("store"),
                          **overrides) as stack:
        yield stack, proxy


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    with proxied_stack(tmp_path_factory.mktemp("delivery-cache"), delivery="public") as running:
        yield running


def completed_upload(stack, directory, formats=FORMATS) -> str:
    """A fresh upload with its derivatives in `formats`, so nothing of it is cached yet."""
    photo = directory / "photo.jpg"
    photo.write_bytes(photo_like_jpeg(800, 600, seed=27))
    api = Api.of(stack)
    created = api.create_for(photo, formats=list(formats))
    put_file(created["upload"], photo)
    assert api.wait_final(created["id"], 60)["status"] == "completed"
    return created["id"]


@pytest.fixture
def completed(proxied, tmp_path):
    return completed_upload(proxied[0], tmp_path)


def store_reads(stack) -> int:
    counts = request_counts(stack.settings)
    return sum(counts[name] for name in STORE_READS)


def load_thumbnail(page, url: str) -> tuple[int, int]:
    page.goto(url)
    image = page.locator("#thumb")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    return tuple(image.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


def logged_after(proxy, since: int, count: int) -> list[dict]:
    """The `count` requests the proxy logged after its `since`-th, once they are all there (each
    line is written after its answer has gone); more than `count` fails."""
    entries = eventually(lambda: len(found := proxy.entries(since)) >= count and found, 10,
                         lambda: f"{count} log lines, got {proxy.entries(since)}")
    assert len(entries) == count, entries
    return entries


def verdicts(entries: list[dict]) -> list[tuple]:
    """What each request through the proxy was, and the type of what the store sent."""
    return [(entry["name"], entry["status"], entry["cache"], entry["content_type"] if entry["name"] == "store" else "")
            for entry in entries]


@pytest.fixture
def browser_page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield context, page
    context.close()


def test_the_second_load_of_a_thumbnail_is_a_cache_hit_and_the_store_serves_nothing_for_it(
        proxied, completed, gallery, browser_page):
    stack, proxy = proxied
    context, page = browser_page
    address = f"{proxy.url('api')}/uploads/{completed}/thumbnail"
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    logged, reads_before = len(proxy.entries()), store_reads(stack)

    first_size = load_thumbnail(page, gallery.showing(address))
    first = logged_after(proxy, logged, 2)
    reads_after_first = eventually(lambda: (reads := store_reads(stack)) > reads_before and reads, 10,
                                   "the store to count the first load's read")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    seen_by_browser = []

    def note(response):
        if response.url.startswith((proxy.url("api"), proxy.url("store"))):
            seen_by_browser.append((response.status, response.headers.get(CACHE_STATUS.lower())))

    page.on("response", note)
    second_size = load_thumbnail(page, gallery.showing(address))
    second = logged_after(proxy, logged + len(first), 2)
    reads_after_second = store_reads(stack)

    assert first_size == second_size and max(first_size) == 300
    assert verdicts(first) == [("api", "302", "MISS", ""), ("store", "200", "MISS", "image/avif")]
    assert verdicts(second) == [("api", "302", "HIT", ""), ("store", "200", "HIT", "image/avif")]
    assert seen_by_browser == [(302, "HIT"), (200, "HIT")]  # the proxy's header, as the page got it
    assert all(entry["upstream"] == "" for entry in second)  # neither the API nor the store was asked
    assert all(entry["uri"].startswith(f"/{stack.settings.s3_bucket_name}/") for entry in first + second
               if entry["name"] == "store")
    assert reads_after_first - reads_before == 1  # the store's counters do see the proxy's request
    assert reads_after_second == reads_after_first


def test_the_browser_gets_avif_and_a_jpeg_only_client_gets_jpeg_through_the_same_cache(
        proxied, completed, gallery, browser_page):
    stack, proxy = proxied
    _, page = browser_page
    address = f"{proxy.url('api')}/uploads/{completed}/thumbnail"
    logged = len(proxy.entries())

    load_thumbnail(page, gallery.showing(address))
    browser_entries = logged_after(proxy, logged, 2)
    jpeg_only = [proxy.get(address, headers={"Accept": "image/jpeg"}) for _ in range(2)]
    webp_first = proxy.get(address, headers={"Accept": "image/webp,image/*;q=0.8"})

    assert "image/avif" in browser_entries[0]["accept"]
    assert verdicts(browser_entries)[1][3] == "image/avif"
    for answer in jpeg_only:
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "image/jpeg"
        assert Image.open(io.BytesIO(answer.content)).format == "JPEG"
    # The redirect and the object each by Accept: the JPEG-only client's first request was a miss
    # of its own, not the AVIF the browser's had put in the cache; its second, a hit of its own.
    redirects = [answer.history[0] for answer in jpeg_only]
    assert [redirect.status_code for redirect in redirects] == [302, 302]
    assert [redirect.headers[CACHE_STATUS] for redirect in redirects] == ["MISS", "HIT"]
    assert "Accept" in redirects[0].headers["Vary"]
    assert [answer.headers[CACHE_STATUS] for answer in jpeg_only] == ["MISS", "HIT"]
    assert webp_first.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(webp_first.content)).format == "WEBP"


def test_in_private_mode_the_cache_keeps_the_signed_redirect_but_never_the_presigned_image(tmp_path):
    """A redirect opened by a signed delivery URL may be kept by a shared cache, for less time
    than the presigned URL it points to lives; the image behind it is marked private, so every
    view of it is the store's."""
    secret = "cache-test-delivery-secret-" + "x" * 20
    with proxied_stack(tmp_path / "stack", delivery_secret=secret) as (stack, proxy):
        upload_id = completed_upload(stack, tmp_path, ("jpeg",))
        address = proxy.url("api") + delivery_urls.path(secret, upload_id, "thumbnail")
        reads_before = store_reads(stack)
        answers = [proxy.get(address, headers={"Accept": "image/jpeg"}) for _ in range(2)]
        eventually(lambda: len(proxy.entries()) >= 4, 10, "the four requests' log lines")
        reads = store_reads(stack) - reads_before
        asked_at = time.time()

    redirects = [answer.history[0] for answer in answers]
    assert [redirect.headers[CACHE_STATUS] for redirect in redirects] == ["MISS", "HIT"]
    assert [(answer.status_code, answer.headers[CACHE_STATUS]) for answer in answers] == [(200, "MISS")] * 2
    assert [answer.headers["Cache-Control"] for answer in answers] == ["private"] * 2
    assert reads == 2
    # The kept redirect leads to a URL that still verifies for as long as the cache may keep it.
    location = redirects[1].headers["Location"]
    assert location.startswith(proxy.url("store"))
    query = parse_qs(urlsplit(location).query)
    signed_at = calendar.timegm(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
    max_age = int(re.search(r"max-age=(\d+)", redirects[1].headers["Cache-Control"])[1])
    assert asked_at + max_age < signed_at + int(query["X-Amz-Expires"][0])
