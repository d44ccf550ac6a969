"""GET /: the upload page. One HTML file with its script and styles in api/static, no build step.

The page does in the browser what the CLI does: presign, PUT straight to object storage with
a progress bar per file, poll the status, then show the thumbnail and links to every version.
"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("page", __name__)


@bp.get("/")
def upload_page():
    return render_template("upload.html")
