"""GET /: the upload page. One HTML file with its script and styles in api/static, no build step.

The page does in the browser what the CLI does: presign, PUT straight to object storage with
a progress bar per file, poll the status, then show the thumbnail and links to every version.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from api.browser import page_policy

bp = Blueprint("page", __name__)


@bp.get("/")
def upload_page():
    response = current_app.make_response(render_template("upload.html"))
    response.headers["Content-Security-Policy"] = page_policy(current_app.extensions["imgpipe"].settings)
    return response
