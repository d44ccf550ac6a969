"""Rate limits, so that no one client can take the service from the others (flask-limiter).

Each request is limited by the credential it brings, counted in Redis so that every API process
(gunicorn worker, host) shares the same counts:

- a credential that is wrong (a guess at the API token, a forged or expired upload token or
  session cookie), and every use of the login link: IMGPIPE_RATE_LIMIT_BAD_CREDENTIAL per client
  address, the hardest limit, on every path;
- no credential at all, once one is configured: IMGPIPE_RATE_LIMIT_ANONYMOUS per client address,
  on every path but /healthz and CORS preflights;
- a browser upload token: IMGPIPE_RATE_LIMIT_UPLOAD_TOKEN per token, on the calls that create
  uploads (reading its uploads' status is not limited: a page polls);
- a derivative's address (api.delivery) opened by its signed delivery URL, or by anyone in public
  delivery mode: not limited, as a page shows many images at once and the cache in front of the
  API takes the repeats; a signature that does not match counts as a wrong credential;
- the operator's API token (or the session its login link made): IMGPIPE_RATE_LIMIT_API_TOKEN, empty (not limited) by default, so a
  bulk upload of thousands of files never meets a 429.

The client address is the connection's peer, or, with IMGPIPE_TRUSTED_PROXIES=n, the address
the n-th proxy from here saw in X-Forwarded-For (werkzeug's ProxyFix): behind a proxy every
client would otherwise share the proxy's address. Set it only to the number of proxies that
really are in front: a client reaching the API directly could claim any address.

An API with no credential configured, or opened on a trusted network
(IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK), has no outsiders by its operator's choice: every
request is then counted as the API token's. A limit is checked before the credential is (a refusal is
still counted: a client guessing gets 401s, then 429s). While Redis is down each process counts
on its own.
"""

from __future__ import annotations

import time

from flask import Flask, g, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from api import delivery
from api.access import OPEN_PATHS, bearer_token, owner_credential
from api.browser import is_preflight
from api.login import COOKIE, LOGIN_PATH
from imgpipe.error_codes import ApiError
from imgpipe.redis_connection import redis_client
from imgpipe.settings import Settings
from imgpipe.upload_tokens import TokenRefused, looks_like_upload_token, verify

CREATE_ENDPOINTS = frozenset({"uploads.create_upload", "uploads.create_batch"})
API_TOKEN, UPLOAD_TOKEN, BAD_CREDENTIAL, ANONYMOUS = "api_token", "upload_token", "bad_credential", "anonymous"
DELIVERY_URL = "delivery_url"  # no limit applies
KEY_PREFIX = "imgpipe:limits"  # of every key the counts are kept under in Redis


def install(app: Flask, settings: Settings) -> None:
    """Call before the access check is installed: the limits then run first."""
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0, x_host=0, x_port=0,
                                x_prefix=0)

    def applies_to(kind: str, *, create_only: bool = False, open_paths: bool = True):
        def exempt() -> bool:
            if credential(settings)[0] != kind:
                return True
            if create_only and request.endpoint not in CREATE_ENDPOINTS:
                return True
            return not open_paths and (request.path in OPEN_PATHS or is_preflight())
        return exempt

    def by_upload_token() -> str:
        return credential(settings)[1]

    limits = [
        ApplicationLimit(settings.rate_limit_bad_credential, scope=BAD_CREDENTIAL, exempt_when=applies_to(BAD_CREDENTIAL)),
        ApplicationLimit(settings.rate_limit_anonymous, scope=ANONYMOUS,
                         exempt_when=applies_to(ANONYMOUS, open_paths=False)),
        ApplicationLimit(settings.rate_limit_upload_token, scope=UPLOAD_TOKEN, key_function=by_upload_token,
                         exempt_when=applies_to(UPLOAD_TOKEN, create_only=True)),
        ApplicationLimit(settings.rate_limit_api_token, scope=API_TOKEN, key_function=lambda: API_TOKEN,
                         exempt_when=applies_to(API_TOKEN)),
    ]
    Limiter(
        get_remote_address, app=app, storage_uri=settings.redis_url, storage_options={
            "key_prefix": KEY_PREFIX, "connection_pool": redis_client(settings, "limits").connection_pool},
        strategy="moving-window", application_limits=[limit for limit in limits if limit.limit_provider],
        headers_enabled=False, swallow_errors=True, in_memory_fallback_enabled=True, on_breach=_note_retry_after)


def credential(settings: Settings) -> tuple[str, str]:
    """What the request brings, and the upload token's id when it is one; judged once per request.

    Mirrors api.access: the same token counts as the same credential there and here."""
    if "credential" not in g:
        g.credential = _judge(settings)
    return g.credential


def _judge(settings: Settings) -> tuple[str, str]:
    if settings.insecure_no_auth_on_trusted_network or not (settings.api_token or settings.upload_token_secret):
        return API_TOKEN, ""
    if settings.api_token and owner_credential(settings.api_token) is not None:
        return API_TOKEN, ""
    if delivery.judged_by_url(settings):
        return _judge_delivery_url(settings), ""
    supplied = bearer_token()
    if settings.upload_token_secret and looks_like_upload_token(supplied):
        try:
            return UPLOAD_TOKEN, verify(settings.upload_token_secret, supplied, time.time()).id
        except TokenRefused:
            return BAD_CREDENTIAL, ""
    if request.authorization is not None or COOKIE in request.cookies or request.path == LOGIN_PATH:
        return BAD_CREDENTIAL, ""
    return ANONYMOUS, ""


def _judge_delivery_url(settings: Settings) -> str:
    """An expired URL was minted by the app all the same (a page kept too long): it counts as no
    credential, not as a guess."""
    refused = delivery.url_refusal(settings)
    if refused is None:
        return DELIVERY_URL
    return ANONYMOUS if refused.code == ApiError.DELIVERY_URL_EXPIRED else BAD_CREDENTIAL


def _note_retry_after(limit: RequestLimit) -> None:
    """Keep when the breached window frees a request, for the 429's Retry-After (api.errors)."""
    g.retry_after = max(1, int(limit.reset_at - time.time()) + 1)
