"""Signed delivery URLs: `/uploads/<id>/<preset>?sig=…[&exp=…]`, minted by a web app's backend.

In private delivery mode a page cannot hold the API token, and a presigned GET dies within
the hour; a delivery URL can sit in cached HTML for as long as its minter wants. The signature
is base64url (no padding) of HMAC-SHA256, keyed with IMGPIPE_DELIVERY_SECRET, over

    imgpipe-delivery\\n<upload id>\\n<preset>\\n<exp, or nothing>

so it opens exactly that preset of that upload (in whichever format negotiation picks), until
`exp` (Unix seconds) when there is one. Changing the secret revokes every URL minted with the
old one at once. The check is one HMAC, so it is cheap enough for every view. An app mints one
with its language's standard library (docs/guides/delivery.md).

Pure: no clock, no storage; the caller passes the moment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import urlencode

from imgpipe.error_codes import ApiError
from imgpipe.refusal import Refused

_DOMAIN = "imgpipe-delivery"
_SIGNATURE = re.compile(r"^[A-Za-z0-9_-]{43}\Z")
_EXPIRY = re.compile(r"^[0-9]{1,12}\Z")


class DeliveryRefused(Refused):
    """Why a signed delivery URL opens nothing: always 403, the URL itself is the credential."""


def signature(secret: str, upload_id: str, preset: str, expires_at: int | None = None) -> str:
    message = f"{_DOMAIN}\n{upload_id}\n{preset}\n{'' if expires_at is None else expires_at}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query(secret: str, upload_id: str, preset: str, expires_at: int | None = None) -> str:
    """The query string that opens the preset of the upload: `sig=…` or `sig=…&exp=…`."""
    params = {"sig": signature(secret, upload_id, preset, expires_at)}
    if expires_at is not None:
        params["exp"] = str(expires_at)
    return urlencode(params)


def path(secret: str, upload_id: str, preset: str, expires_at: int | None = None) -> str:
    """`/uploads/<id>/<preset>?sig=…[&exp=…]`: put the API's public base in front."""
    return f"/uploads/{upload_id}/{preset}?{query(secret, upload_id, preset, expires_at)}"


def verify(secret: str, upload_id: str, preset: str, sig: str, exp: str | None, now: float) -> None:
    """Return when `sig` (and `exp`, as the URL spells it, None when absent) open this preset of
    this upload at `now`; DeliveryRefused otherwise."""
    if not secret:
        raise DeliveryRefused(403, ApiError.INVALID_DELIVERY_SIGNATURE,
                              "this API has no IMGPIPE_DELIVERY_SECRET: no signed delivery URL opens anything")
    if not _SIGNATURE.match(sig):
        raise DeliveryRefused(403, ApiError.INVALID_DELIVERY_SIGNATURE,
                              "sig must be the 43 base64url characters of a delivery signature")
    if exp is not None and not _EXPIRY.match(exp):
        raise DeliveryRefused(403, ApiError.INVALID_DELIVERY_SIGNATURE, "exp must be whole Unix seconds")
    expires_at = None if exp is None else int(exp)
    if not hmac.compare_digest(sig, signature(secret, upload_id, preset, expires_at)):
        raise DeliveryRefused(403, ApiError.INVALID_DELIVERY_SIGNATURE,
                              "the delivery URL's signature does not match (altered, or signed with another secret)")
    if expires_at is not None and expires_at <= now:
        raise DeliveryRefused(403, ApiError.DELIVERY_URL_EXPIRED,
                              "the delivery URL has expired; ask the app for a new one")
