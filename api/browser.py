"""What browsers get from the API besides JSON: CORS for web apps on their own origin, and the
headers that keep the page and every answer from being framed, sniffed or scripted.

CORS is flask-cors, switched on only when IMGPIPE_CORS_ORIGINS names origins. It covers the
upload calls alone (the page, /metrics and the dashboard stay same-origin), DELETE included: a
page aborts its multipart upload with `DELETE /uploads/<id>/multipart` (what else a credential
may delete, api.access decides). Cross-origin calls
carry their token in `Authorization` (the login cookie is SameSite=Strict and never crosses
origins), so Access-Control-Allow-Credentials is never sent, and `*` can mean any origin.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask, request
from flask_cors import CORS

from api.dashboard import is_dashboard_path
from imgpipe.settings import Settings

UPLOAD_CALLS = r"^/uploads?(/.*)?$"
PREFLIGHT_MAX_AGE = 3600
# A JSON answer is never a document: nothing in it may load or run, and nothing may frame it.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The dashboard's templates carry inline scripts and styles: it is only kept from being framed.
DASHBOARD_POLICY = "frame-ancestors 'none'"


def install(app: Flask, settings: Settings) -> None:
    origins = settings.cors_origins
    if origins:
        CORS(app, resources={UPLOAD_CALLS: {}}, origins=_origin_patterns(origins), send_wildcard=True,
             methods=["GET", "HEAD", "POST", "DELETE", "OPTIONS"], allow_headers=["Authorization", "Content-Type"],
             supports_credentials=False, always_send=False, max_age=PREFLIGHT_MAX_AGE)
    app.after_request(add_security_headers)


def _origin_patterns(origins: tuple[str, ...]):
    """Each origin as an exact, case-insensitive pattern: flask-cors would read an origin holding
    a regex character (an IPv6 host's brackets) as a regex, and a bare string regex matches prefixes."""
    if origins == ("*",):
        return "*"
    return [re.compile(re.escape(origin) + r"\Z", re.IGNORECASE) for origin in origins]


def is_preflight() -> bool:
    """A browser asking whether it may make a cross-origin call: answered before any token check,
    since browsers never send credentials with it."""
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def page_policy(settings: Settings) -> str:
    """The upload page: its own script and styles, calls to the API and PUTs to the store, the
    store's thumbnails; nothing inline, no plugins, no forms elsewhere, no framing."""
    parts = urlsplit(settings.public_s3_url)
    store = f"{parts.scheme}://{parts.netloc}"
    return (f"default-src 'self'; img-src 'self' data: {store}; connect-src 'self' {store}; object-src 'none'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def add_security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if is_dashboard_path(request.path):
        response.headers.setdefault("Content-Security-Policy", DASHBOARD_POLICY)
    else:
        response.headers.setdefault("Content-Security-Policy", API_POLICY)
    return response
