"""What a request says about the page that made it: browsers name the origin of a script's
request (Origin) and how it relates to the target (Sec-Fetch-Site), and no page can forge either."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request

SAME_ORIGIN = ("same-origin", "none")  # "none": the owner typed the address or followed a link from outside a page


def is_cross_site() -> bool:
    """Whether another page made this request. `same-site` counts too: on localhost every port
    is the same site, so another local server's page would pass a site check."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.lower() not in SAME_ORIGIN:
        return True
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc.lower() != request.host.lower()
