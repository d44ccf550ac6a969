"""The upload page in headless Chromium against the real stack: choose files, watch them finish.

Set IMGPIPE_PAGE_SCREENSHOT=docs/upload-page.png to save what the finished page looks like.
"""

from __future__ import annotations

import io
import os

import pytest
import requests
from PIL import Image, ImageDraw

from imgpipe.storage import Storage
from imgpipe.store_identities import ROOT
from stored_objects import objects_of
TIMEOUT_MS = 30_000


@pytest.fixture
def page(browser, stack):
    context = browser.new_context(viewport={"width": 900, "height": 760})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(stack.login_link())  # as its owner opens it: the link `imgpipe up` prints
    page.wait_for_url(stack.api_url + "/")
    yield page
    context.close()


def picture(path, size, colours):
    """A small picture with something to see in a thumbnail: a gradient sky and a sun."""
    width, height = size
    sky = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGB", [sky.point(lambda v, c=c: int(c * (0.35 + v / 400))) for c in colours])
    ImageDraw.Draw(image).ellipse([width * 0.6, height * 0.15, width * 0.8, height * 0.15 + width * 0.2],
                                  fill=(255, 214, 90))
    image.save(path)
    return path


def cards_with_status(page, status: str, count: int, where: str = "#uploads"):
    """The cards of uploads made from this page (#uploads), or of those listed when it loaded (#recent)."""
    page.wait_for_function(
        "([where, status, count]) =>"
        " document.querySelectorAll(`${where} .upload[data-status='${status}']`).length === count",
        arg=[where, status, count])
    return page.locator(f"{where} .upload[data-status='{status}']")


def test_two_images_show_their_thumbnails_and_working_links(page, tmp_path):
    files = [picture(tmp_path / "harbour.jpg", (1600, 1000), (60, 140, 230)),
             picture(tmp_path / "desert.png", (900, 1200), (230, 150, 80))]

    page.set_input_files("#files", [str(path) for path in files])
    done = cards_with_status(page, "completed", 2)

    assert sorted(done.locator(".name").all_inner_texts()) == ["desert.png", "harbour.jpg"]
    for index in range(2):
        card = done.nth(index)
        assert card.locator("progress").evaluate("bar => bar.value") == 100
        assert card.locator(".state").inner_text() == "Done"
        thumbnail = card.locator("img")
        thumbnail.wait_for(state="visible")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
        links = {link.get_attribute("data-version"): link.get_attribute("href")
                 for link in card.locator(".links a").all()}
        assert list(links) == ["original", "resized", "compressed", "thumbnail"]
        assert thumbnail.get_attribute("src") == links["thumbnail"]
        for version, url in links.items():
            response = requests.get(url, timeout=10)
            assert response.status_code == 200, (version, response.text)
            image = Image.open(io.BytesIO(response.content))
            if version == "thumbnail":
                assert max(image.size) == 300

    bad = tmp_path / "scan.jpg"
    bad.write_text("this was meant to be a scan\n" * 20)
    page.set_input_files("#files", [str(bad)])
    failed = cards_with_status(page, "failed", 1)
    assert failed.locator(".state").inner_text() == "This file is not an image."
    assert failed.locator(".error-code").inner_text().startswith("not_an_image: ")
    assert page.locator("#uploads .upload").count() == 3

    screenshot = os.environ.get("IMGPIPE_PAGE_SCREENSHOT")
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)


def test_a_file_the_api_refuses_shows_why_in_words(page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image\n")

    page.set_input_files("#files", [str(notes)])
    failed = cards_with_status(page, "failed", 1)

    assert failed.locator(".state").inner_text().startswith("This type of file is not accepted")
    assert failed.locator(".error-code").inner_text().startswith("unsupported_media_type: 'text/plain'")
    assert failed.get_attribute("data-upload-id") is None


def test_several_files_are_asked_for_in_one_batch_request(page, tmp_path):
    files = [picture(tmp_path / f"view-{index}.jpg", (400, 300), (40 * index, 120, 200)) for index in range(3)]
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image\n")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    page.set_input_files("#files", [str(path) for path in files] + [str(notes)])
    done = cards_with_status(page, "completed", 3)
    refused = cards_with_status(page, "failed", 1)

    assert [url.removeprefix(page.url.rstrip("/")) for url in posts] == ["/uploads/batch"]
    assert sorted(done.locator(".name").all_inner_texts()) == ["view-0.jpg", "view-1.jpg", "view-2.jpg"]
    assert refused.locator(".name").inner_text() == "notes.txt"
    assert refused.locator(".error-code").inner_text().startswith("unsupported_media_type: 'text/plain'")


def test_recent_uploads_come_back_after_a_reload_and_one_can_be_deleted(page, stack, tmp_path):
    photo = picture(tmp_path / "lighthouse.jpg", (800, 600), (50, 90, 160))
    scan = tmp_path / "scan.jpg"
    scan.write_text("not a scan after all\n" * 20)
    page.set_input_files("#files", [str(photo), str(scan)])
    ids = {card.locator(".name").inner_text(): card.get_attribute("data-upload-id")
           for status in ("completed", "failed") for card in cards_with_status(page, status, 1).all()}

    page.reload()
    recent = {name: page.locator(f"#recent .upload[data-upload-id='{upload_id}']") for name, upload_id in ids.items()}
    for card in recent.values():
        card.wait_for()
    assert page.locator("#uploads .upload").count() == 0
    assert page.locator("#recent .upload").count() <= 20
    done = recent["lighthouse.jpg"]
    assert (done.get_attribute("data-status"), done.locator(".state").inner_text()) == ("completed", "Done")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=done.locator("img").element_handle())
    thumbnail = requests.get(done.locator("img").get_attribute("src"), timeout=10)
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) == 300
    failed = recent["scan.jpg"]
    assert failed.get_attribute("data-status") == "failed"
    assert failed.locator(".error-code").inner_text().startswith("not_an_image: ")

    done.locator(".delete").click()
    done.wait_for(state="detached")
    upload_id = ids["lighthouse.jpg"]
    assert requests.get(f"{stack.api_url}/uploads/{upload_id}/status", timeout=10,
                        headers={"Authorization": f"Bearer {stack.settings.api_token}"}).json()["status"] == "deleted"
    storage = Storage(stack.settings, ROOT)
    assert objects_of(storage, upload_id, f"originals/{upload_id}.jpg") == []
    page.reload()
    recent["scan.jpg"].wait_for()
    assert page.locator(f"#recent .upload[data-upload-id='{upload_id}']").count() == 0
