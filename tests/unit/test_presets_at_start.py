"""A bad presets file stops every process at start, with a message that names the line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from api import create_app
from cli.main import cli
from imgpipe.presets import PresetsError

BAD = '[presets.thumbnail]\nbox = [200, 200]\n\n[presets.square]\nbox = [400, 400]\nmode = "fill"\n'
MESSAGE = "line 6: mode must be one of 'fit', 'cover', not 'fill'"


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "presets.toml"
    path.write_text(BAD)
    return str(path)


@pytest.mark.parametrize("command", [["up"], ["relay"], ["worker"], ["reprocess"]])
def test_the_program_refuses_to_start(command, bad_file, tmp_path):
    result = CliRunner().invoke(cli, command, env={"IMGPIPE_PRESETS": bad_file, "DATABASE_PATH": str(tmp_path / "db")})
    assert result.exit_code == 2, result.output
    assert f"{bad_file}, {MESSAGE}" in result.output


def test_the_api_refuses_to_start(bad_file, monkeypatch):
    """gunicorn's workers then fail to boot, with this error in the log."""
    monkeypatch.setenv("IMGPIPE_PRESETS", bad_file)
    with pytest.raises(PresetsError, match=MESSAGE):
        create_app()
