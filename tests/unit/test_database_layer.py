"""The pure parts of the database layer: URLs, placeholders, timestamps. What the statements do
is tested on both real engines in tests/integration/test_database.py."""

import pytest

from imgpipe import uploads
from imgpipe.engines import POSTGRESQL, SQLITE, pyformat, split_url
from imgpipe.settings import Settings


def test_timestamps_round_trip():
    moment = uploads.utcnow()
    assert uploads.parse_timestamp(uploads.timestamp(moment)) == moment


@pytest.mark.parametrize("url, expected", [
    ("sqlite:///var/imgpipe.db", (SQLITE, "var/imgpipe.db")),
    ("sqlite:////data/imgpipe.db", (SQLITE, "/data/imgpipe.db")),
    ("/data/imgpipe.db", (SQLITE, "/data/imgpipe.db")),
    ("postgresql://imgpipe:secret@db:5432/imgpipe", (POSTGRESQL, "postgresql://imgpipe:secret@db:5432/imgpipe")),
    ("postgres://db/imgpipe", (POSTGRESQL, "postgres://db/imgpipe")),
])
def test_a_url_names_its_engine(url, expected):
    assert split_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://db/imgpipe", "sqlite:///"])
def test_an_unusable_url_is_refused_with_what_to_write(url):
    with pytest.raises(ValueError, match="sqlite:///"):
        split_url(url)


def test_database_url_wins_over_database_path():
    assert Settings.from_env({}).database == "sqlite:///var/imgpipe.db"
    assert Settings.from_env({"DATABASE_PATH": "/data/db"}).database == "sqlite:////data/db"
    settings = Settings.from_env({"DATABASE_PATH": "/data/db", "DATABASE_URL": "postgresql://u:p@db/imgpipe"})
    assert settings.database == "postgresql://u:p@db/imgpipe"
    assert Settings.from_env(settings.to_env()) == settings


def test_placeholders_become_psycopg_ones_outside_quoted_text():
    assert pyformat("UPDATE uploads SET status = ? WHERE id = ? AND status IN (?, ?)") == \
        "UPDATE uploads SET status = %s WHERE id = %s AND status IN (%s, %s)"
    assert pyformat("SELECT '?', \"a?\", ? WHERE name LIKE 'x%'") == "SELECT '?', \"a?\", %s WHERE name LIKE 'x%%'"
    assert pyformat("SELECT 100 % ?") == "SELECT 100 %% %s"


def test_uploads_completed_before_presets_hold_the_built_in_three():
    row = {name: None for name in uploads.COLUMNS}
    row.update(status="completed", formats="jpeg,webp")
    assert list(uploads.stored_derivatives(row)) == ["resized", "compressed", "thumbnail"]
    assert uploads.stored_derivatives({**row, "status": "failed"}) == {}
