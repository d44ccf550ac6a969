"""The one-time login link: how the owner's browser gets in without anyone typing the API token.

`imgpipe up` (or `imgpipe login`) stores the digest of a random code in Redis, where every API
process sees it, and prints `<api>/login?code=<code>`. Visiting it deletes the code (GETDEL, so
of two visits only one wins) and sets a session cookie signed with the API token: HttpOnly, so
no script reads it; SameSite=Strict, so no other site's page sends it; Secure under TLS.
Changing the API token ends every session.
"""

from __future__ import annotations

import hashlib
import secrets

import redis
from flask import Blueprint, current_app, redirect, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from api.errors import error_response
from imgpipe.error_codes import ApiError

LOGIN_PATH = "/login"
COOKIE = "imgpipe_session"
SESSION_SECONDS = 7 * 24 * 3600
CODE_SECONDS = 24 * 3600
_SALT = "imgpipe login session"

bp = Blueprint("login", __name__)


def issue_login_code(connection: redis.Redis, seconds: int = CODE_SECONDS) -> str:
    """A new code for one login, valid for `seconds`; only its digest is kept."""
    code = secrets.token_urlsafe(32)
    connection.set(_code_key(code), 1, ex=seconds)
    return code


def login_url(api_url: str, code: str) -> str:
    return f"{api_url.rstrip('/')}{LOGIN_PATH}?code={code}"


def _code_key(code: str) -> str:
    return "imgpipe:login:" + hashlib.sha256(code.encode()).hexdigest()


def _sessions(api_token: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(api_token, salt=_SALT)


def has_session(api_token: str) -> bool:
    """Whether the request carries a session cookie this API token signed within SESSION_SECONDS."""
    value = request.cookies.get(COOKIE)
    if not value:
        return False
    try:
        _sessions(api_token).loads(value, max_age=SESSION_SECONDS)
    except BadSignature:
        return False
    return True


@bp.get(LOGIN_PATH)
def login():
    svc = current_app.extensions["imgpipe"]
    code = request.args.get("code", "")
    try:
        admitted = bool(svc.settings.api_token and code and svc.redis.getdel(_code_key(code)))
    except redis.RedisError:
        return error_response(503, ApiError.REDIS_UNAVAILABLE, "Redis is unavailable; try the link again shortly")
    if not admitted:
        return error_response(401, ApiError.INVALID_LOGIN_LINK, "this login link was used already or has expired;"
                                                         " `imgpipe login` prints a new one")
    response = redirect("/", 303)
    response.set_cookie(COOKIE, _sessions(svc.settings.api_token).dumps("owner"), max_age=SESSION_SECONDS,
                        path="/", secure=request.is_secure, httponly=True, samesite="Strict")
    return response
