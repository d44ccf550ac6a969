"""What `imgpipe upload` keeps of an upload in parts, in a folder of its own (cli.resume)."""

from __future__ import annotations

import os
import stat

from cli.resume import ResumeCache, cache_dir

CREATED = {"id": "a" * 32, "key": "originals/" + "a" * 32 + ".jpg",
           "multipart": {"upload_id": "u1", "part_size": 8, "part_count": 3, "expires_at": "2026-12-03T00:00:00.000000Z"}}


def test_the_cache_lives_under_xdg_cache_home_or_else_the_home_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "imgpipe" / "uploads"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "imgpipe" / "uploads"


def test_a_kept_state_is_found_for_the_same_file_and_api_only_until_forgotten(tmp_path):
    cache = ResumeCache(tmp_path / "cache")
    file = tmp_path / "big.jpg"
    file.write_bytes(b"x" * 20)
    state = cache.start("http://api", file, CREATED)
    cache.note_part(state, 2, '"etag-2"')
    found = cache.find("http://api", file)
    assert (found.id, found.upload_id, found.parts, found.plan.length(3)) == ("a" * 32, "u1", {"2": '"etag-2"'}, 4)
    [kept] = (tmp_path / "cache").iterdir()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and "secret" not in kept.read_text()
    assert cache.find("http://other-api", file) is None
    os.utime(file, ns=(0, 0))  # the file changed since: a new upload
    assert cache.find("http://api", file) is None
    os.utime(file, ns=(state.mtime_ns, state.mtime_ns))
    cache.forget(state)
    assert cache.find("http://api", file) is None and list((tmp_path / "cache").iterdir()) == []


def test_a_state_file_that_cannot_be_read_is_no_state(tmp_path):
    cache = ResumeCache(tmp_path / "cache")
    file = tmp_path / "big.jpg"
    file.write_bytes(b"x" * 20)
    state = cache.start("http://api", file, CREATED)
    [kept] = (tmp_path / "cache").iterdir()
    kept.write_text("{not json")
    assert cache.find("http://api", file) is None
    kept.write_text('{"id": "only"}')
    assert cache.find("http://api", file) is None
    cache.forget(state)
