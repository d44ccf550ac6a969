"""The test's web app on its own origin (another port of 127.0.0.1): its page (tests/web), the
bundled script made of Uppy and the web-apps guide's modules, and its backend's token route,
which mints browser upload tokens with the secret the API was given. With helpers that read
what the page shows.

A token's id is new for every token, unless the browser sends a `visitor` cookie: its value is
then the id of every token minted for it, as a backend that knows its signed-in visitor would do."""

from __future__ import annotations

import secrets
import threading
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from imgpipe.upload_tokens import mint
from web_bundle import WEB, web_app_bundle


class WebApp:
    """The app's own server: its page, its bundled script, and its backend's token route."""

    def __init__(self, secret: str):
        self.secret = secret
        self.minted: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.bundle = web_app_bundle()

    def _handler(self):
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path, _, query = self.path.partition("?")
                if path == "/token":
                    files = int(parse_qs(query).get("files", ["1"])[0])
                    cookies = SimpleCookie(self.headers.get("Cookie", ""))
                    token_id = cookies["visitor"].value if "visitor" in cookies else secrets.token_hex(8)
                    app.minted.append(token_id)
                    return self.answer(mint(app.secret, token_id, int(time.time()) + 600, max_files=files), "text/plain")
                if path == "/frame":  # another site trying to show a page inside its own
                    src = parse_qs(query)["src"][0]
                    return self.answer(f'<!doctype html><iframe id="framed" src="{src}"></iframe>', "text/html")
                files = {"/": (WEB / "app.html", "text/html"), "/app.js": (WEB / "app.js", "text/javascript"),
                         "/web-app.js": (app.bundle, "text/javascript")}
                if path not in files:
                    return self.send_error(404)
                file, content_type = files[path]
                self.answer(Path(file).read_text(), content_type)

            def answer(self, text: str, content_type: str):
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self) -> "WebApp":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def finished_entries(page, count: int):
    page.wait_for_function("count => document.querySelectorAll('#uploads li[data-status]').length === count",
                           arg=count)
    entries = page.locator("#uploads li")
    failed = [entries.nth(index).inner_text() for index in range(count)
              if entries.nth(index).get_attribute("data-status") != "completed"]
    assert not failed, failed
    return {entries.nth(index).get_attribute("data-name"): entries.nth(index) for index in range(count)}


def assert_thumbnail_loaded(page, entry) -> None:
    image = entry.locator("img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    size = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert max(size) == 300, size
