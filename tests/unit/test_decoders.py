"""imgpipe.decoders: the one answer to "which images can this installation read", for the API
(which content types to accept) and the workers (which formats to open) alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from imgpipe.decoders import readable_formats, register_optional_decoders
from processor.imaging import readable_accepted_formats

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_heif_is_readable_with_pillow_heif_installed():
    assert "HEIF" in readable_formats()


def test_registering_again_changes_nothing():
    before = readable_formats()
    register_optional_decoders()
    assert readable_formats() == before


def test_the_workers_open_only_what_is_readable():
    assert set(readable_accepted_formats()) <= readable_formats()
    assert {"JPEG", "PNG", "HEIF"} <= set(readable_accepted_formats())


def test_the_api_learns_the_readable_types_without_loading_the_image_code(tmp_path):
    """The image code is the workers' (its threads, and the process setup they ask of it); an API
    process needs none of it."""
    script = (
        "import sys\n"
        "from api import create_app\n"
        "from imgpipe import uploads\n"
        "from imgpipe.settings import Settings\n"
        "uploads.ensure_schema(uploads.connect(sys.argv[1]))\n"
        "app = create_app(Settings(database_path=sys.argv[1]))\n"
        "print('image/heic' in app.extensions['imgpipe'].rules.accepted, 'processor.imaging' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "imgpipe.db")],
                            capture_output=True, text=True, timeout=60, check=True, cwd=REPO_ROOT)
    heic_accepted, image_code_loaded = result.stdout.split()
    assert (heic_accepted, image_code_loaded) == ("True", "False")
