"""Browser upload tokens: short-lived, signed by the web app's own backend, checked by the API.

A token is `<payload>.<signature>`: the payload is base64url (no padding) of a JSON object, the
signature base64url of HMAC-SHA256 over the payload's base64url text with
IMGPIPE_UPLOAD_TOKEN_SECRET. The payload says who it is for and what it allows:

    {"id": "visitor-42-a1b2", "exp": 1767312000, "files": 10, "bytes": 50000000}

`id` is recorded on every upload made with the token (the token may read only those), `exp` is
when it stops working (Unix seconds), `files` and `bytes` optionally cap what all the requests
made with it may create together. Any other field is refused, so that a misspelt cap never
silently means "no cap". The format is small on purpose: an app mints one with its language's
standard library in a few lines (docs/guides/web-apps.md).

Pure: no clock, no storage; the caller passes the moment and keeps the counts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from imgpipe.error_codes import ApiError
from imgpipe.refusal import Refused

# A token that would still be valid this long from now is refused: a leaked one must die soon.
MAX_LIFETIME = 24 * 3600
TOKEN_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
_FIELDS = {"id", "exp", "files", "bytes"}
_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}\Z")


class TokenRefused(Refused):
    """Why a token opens nothing: 401 when it is not (or no longer) a valid token, 403 when it is
    valid but used up."""


@dataclass(frozen=True)
class UploadToken:
    id: str
    expires_at: int
    max_files: int | None
    max_bytes: int | None


def looks_like_upload_token(text: str) -> bool:
    """Whether a bearer value has an upload token's shape (then it is judged as one)."""
    return bool(_SHAPE.match(text))


def mint(secret: str, token_id: str, expires_at: int, *, max_files: int | None = None,
         max_bytes: int | None = None) -> str:
    claims = {"id": token_id, "exp": expires_at}
    if max_files is not None:
        claims["files"] = max_files
    if max_bytes is not None:
        claims["bytes"] = max_bytes
    payload = _encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_signature(secret, payload)}"


def verify(secret: str, token: str, now: float) -> UploadToken:
    """The token's claims when it is well signed, well formed and not expired; TokenRefused otherwise."""
    if not looks_like_upload_token(token):
        raise TokenRefused(401, ApiError.INVALID_TOKEN, "the upload token is malformed")
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        raise TokenRefused(401, ApiError.INVALID_TOKEN, "the upload token's signature does not match")
    try:
        claims = json.loads(_decode(payload))
    except (ValueError, binascii.Error):
        raise TokenRefused(401, ApiError.INVALID_TOKEN, "the upload token's payload is not base64url JSON") from None
    upload_token = _read_claims(claims)
    if upload_token.expires_at <= now:
        raise TokenRefused(401, ApiError.TOKEN_EXPIRED, "the upload token has expired; ask the app for a new one")
    if upload_token.expires_at > now + MAX_LIFETIME:
        raise TokenRefused(401, ApiError.INVALID_TOKEN,
                           f"the upload token is valid for longer than {MAX_LIFETIME} s; mint a shorter-lived one")
    return upload_token


def _read_claims(claims) -> UploadToken:
    if not isinstance(claims, dict):
        raise TokenRefused(401, ApiError.INVALID_TOKEN, "the upload token's payload must be a JSON object")
    unknown = set(claims) - _FIELDS
    if unknown:
        raise TokenRefused(401, ApiError.INVALID_TOKEN, f"unknown upload token field(s): {', '.join(sorted(unknown))}")
    token_id = claims.get("id")
    if not isinstance(token_id, str) or not TOKEN_ID.match(token_id):
        raise TokenRefused(401, ApiError.INVALID_TOKEN,
                           "the upload token's id must be 1 to 64 letters, digits or any of _ . : -")
    expires_at = claims.get("exp")
    if not _whole_number(expires_at):
        raise TokenRefused(401, ApiError.INVALID_TOKEN, "the upload token's exp must be whole Unix seconds")
    for cap in ("files", "bytes"):
        if cap in claims and not (_whole_number(claims[cap]) and claims[cap] >= 1):
            raise TokenRefused(401, ApiError.INVALID_TOKEN,
                               f"the upload token's {cap} must be a whole number of at least 1")
    return UploadToken(token_id, expires_at, claims.get("files"), claims.get("bytes"))


def _whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _signature(secret: str, payload: str) -> str:
    return _encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
