"""Who may call what. IMGPIPE_API_TOKEN opens every call; a browser upload token (signed with
IMGPIPE_UPLOAD_TOKEN_SECRET by a web app's backend, see imgpipe.upload_tokens) opens only
creating uploads and reading the uploads made with it. /healthz and CORS preflights are open.

With neither setting, the API is open, as it always was.
"""

from __future__ import annotations

import hmac
import time

from flask import Flask, g, request

from api.browser import is_preflight
from api.errors import error_response
from imgpipe.settings import Settings
from imgpipe.upload_tokens import TokenRefused, looks_like_upload_token, verify

OPEN_PATHS = ("/healthz",)
# What a browser upload token may call; reading is further limited to its own uploads (api.uploads).
UPLOAD_TOKEN_ENDPOINTS = frozenset({
    "uploads.create_upload", "uploads.create_batch", "uploads.get_record", "uploads.get_status",
    "uploads.get_results",
})


def install(app: Flask, settings: Settings) -> None:
    if not (settings.api_token or settings.upload_token_secret):
        return

    @app.before_request
    def authorize():
        """Guards every path but /healthz and CORS preflights: the API calls, the page, /rq and
        all static files."""
        if request.path in OPEN_PATHS or is_preflight():
            return None
        supplied = supplied_token()
        if settings.api_token and hmac.compare_digest(supplied.encode(), settings.api_token.encode()):
            return None
        if settings.upload_token_secret and _is_bearer() and looks_like_upload_token(supplied):
            return _admit_upload_token(settings.upload_token_secret, supplied)
        if settings.api_token:
            response = error_response(401, "unauthorized", "a valid API token is required")
            response.headers["WWW-Authenticate"] = 'Basic realm="imgpipe"'
            return response
        return None


def _admit_upload_token(secret: str, supplied: str):
    try:
        token = verify(secret, supplied, time.time())
    except TokenRefused as refused:
        response = error_response(refused.status, refused.code, refused.message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="imgpipe", error="invalid_token"'
        return response
    if request.endpoint not in UPLOAD_TOKEN_ENDPOINTS:
        return error_response(403, "forbidden", "an upload token may only create uploads and read the uploads made with it")
    g.upload_token = token
    return None


def supplied_token() -> str:
    """The token from `Authorization: Bearer <token>`, or the password of Basic authentication,
    which is how a browser sends it for the page and the dashboard after asking once."""
    authorization = request.authorization
    if authorization is None:
        return ""
    if authorization.type == "basic":
        return authorization.password or ""
    return (authorization.token or "").strip() if authorization.type == "bearer" else ""


def _is_bearer() -> bool:
    return request.authorization is not None and request.authorization.type == "bearer"
