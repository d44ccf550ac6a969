"""Who may call what, failing closed.

IMGPIPE_API_TOKEN opens every call, sent as `Authorization: Bearer`, as the password of Basic
authentication, or as the session cookie of a login link (api.login). A signed delivery URL
(imgpipe.delivery_urls) opens the one derivative address it names, and in public delivery mode
those addresses are open to anyone (api.delivery). A browser upload token
(signed with IMGPIPE_UPLOAD_TOKEN_SECRET by a web app's backend, see imgpipe.upload_tokens)
opens only creating uploads and reading the uploads made with it. Once either setting is made,
everything else gets 401: /healthz, CORS preflights and the login link alone are open.

With neither setting the API answers anyone, which it is allowed to do only on loopback
(check_binding) or on a network its operator declared trusted by name
(IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK, which also opens an API that has credentials).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time

from flask import Flask, g, request

from api import delivery
from api.browser import is_preflight
from api.errors import error_response
from api.login import LOGIN_PATH, has_session
from api.sites import is_cross_site
from imgpipe.error_codes import ApiError
from imgpipe.settings import NO_AUTH_CONSENT, Settings
from imgpipe.upload_tokens import TokenRefused, looks_like_upload_token, verify

log = logging.getLogger(__name__)

OPEN_PATHS = ("/healthz",)
# What a browser upload token may call; reading, and sending in parts, is further limited to its own
# uploads (api.uploads).
UPLOAD_TOKEN_ENDPOINTS = frozenset({
    "uploads.create_upload", "uploads.create_batch", "uploads.get_record", "uploads.get_status",
    "uploads.get_results", "multipart.sign_part", "multipart.list_parts", "multipart.complete", "multipart.abort",
})


class StartRefused(RuntimeError):
    """The settings would open a door nobody meant to open; the message says how to close it."""


def check_settings(settings: Settings) -> None:
    if settings.cors_origins and not settings.api_token:
        raise StartRefused("IMGPIPE_CORS_ORIGINS is set without IMGPIPE_API_TOKEN: set an API token"
                           " (for example `openssl rand -hex 32`) so that the API is not open to those origins")


def check_binding(settings: Settings, binds: list[str]) -> None:
    """Refuse to listen beyond loopback without an API token, unless the operator opted out."""
    check_settings(settings)
    exposed = [bind for bind in binds if not is_loopback_bind(bind)]
    if exposed and not (settings.api_token or settings.insecure_no_auth_on_trusted_network):
        raise StartRefused(
            f"the API would listen on {', '.join(exposed)} without IMGPIPE_API_TOKEN: set one (for example"
            " `openssl rand -hex 32`), listen on 127.0.0.1 only, or, on a network where everyone may use it,"
            f" set IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK={NO_AUTH_CONSENT}")


def is_loopback_bind(bind: str) -> bool:
    """Whether a gunicorn bind (HOST, HOST:PORT, [IPv6]:PORT, unix:PATH, fd://N) is reachable only
    from this machine. A name other than localhost, or an inherited descriptor, is not known to be."""
    if bind.startswith("unix:"):
        return True
    if bind.startswith("fd://"):
        return False
    if bind.startswith("["):
        host = bind[1:].split("]", 1)[0]
    elif bind.count(":") == 1:
        host = bind.split(":")[0]
    else:
        host = bind  # a name, an IPv4 address or an IPv6 one, without a port
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install(app: Flask, settings: Settings) -> None:
    check_settings(settings)
    if settings.insecure_no_auth_on_trusted_network:
        log.warning("IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK is set: this API answers every request"
                    " without a credential; anyone who can reach it can list, read and delete every upload")
    guarded = bool(settings.api_token or settings.upload_token_secret)

    @app.before_request
    def authorize():
        """Guards every path but /healthz, CORS preflights and the login link: the API calls,
        the page, /rq and all static files."""
        if request.path in OPEN_PATHS or request.path == LOGIN_PATH or is_preflight():
            return None
        if delivery.judged_by_url(settings):
            return _admit_delivery_url(settings)
        if settings.api_token:
            how = owner_credential(settings.api_token)
            if how is not None:
                if how != "bearer" and is_cross_site():  # a browser sends a cookie or Basic by itself
                    return _cross_site_refusal()
                return None
        supplied = bearer_token()
        if settings.upload_token_secret and looks_like_upload_token(supplied):
            return _admit_upload_token(settings.upload_token_secret, supplied)
        if settings.insecure_no_auth_on_trusted_network or not guarded:
            return _cross_site_refusal() if is_cross_site() else None
        response = error_response(401, ApiError.UNAUTHORIZED, "a valid API token is required" if settings.api_token
                                  else "a valid upload token is required")
        response.headers["WWW-Authenticate"] = 'Basic realm="imgpipe"' if settings.api_token else 'Bearer realm="imgpipe"'
        return response


def _cross_site_refusal():
    return error_response(403, ApiError.CROSS_SITE, "a request made by another site's page is refused")


def owner_credential(api_token: str) -> str | None:
    """How the request proves it holds the API token: "bearer", "basic", "cookie", or None."""
    authorization = request.authorization
    if authorization is not None and authorization.type in ("bearer", "basic"):
        supplied = (authorization.token or "").strip() if authorization.type == "bearer" else authorization.password or ""
        if hmac.compare_digest(supplied.encode(), api_token.encode()):
            return authorization.type
    return "cookie" if has_session(api_token) else None


def bearer_token() -> str:
    authorization = request.authorization
    if authorization is None or authorization.type != "bearer":
        return ""
    return (authorization.token or "").strip()


def _admit_delivery_url(settings: Settings):
    """A page's <img> on another site is the point of these addresses: no cross-site check."""
    refused = delivery.url_refusal(settings)
    if refused is not None:
        return error_response(refused.status, refused.code, refused.message)
    g.delivery_access = delivery.BY_URL
    return None


def _admit_upload_token(secret: str, supplied: str):
    try:
        token = verify(secret, supplied, time.time())
    except TokenRefused as refused:
        response = error_response(refused.status, refused.code, refused.message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="imgpipe", error="invalid_token"'
        return response
    if request.endpoint not in UPLOAD_TOKEN_ENDPOINTS:
        return error_response(403, ApiError.FORBIDDEN,
                              "an upload token may only create uploads and read the uploads made with it")
    g.upload_token = token
    return None
