"""The rules of who may call what, as pure functions: which binds are loopback, when a start is
refused, which Host names are known, and the credentials file's format and modes."""

from __future__ import annotations

import stat

import pytest

from api.access import StartRefused, check_binding, is_loopback_bind
from api.hosts import host_name
from cli import credentials
from imgpipe.settings import Settings


@pytest.mark.parametrize("bind", ["127.0.0.1:8000", "127.0.0.2:80", "localhost:8000", "[::1]:8000", "::1",
                                  "unix:/run/imgpipe.sock", "127.0.0.1"])
def test_loopback_binds(bind):
    assert is_loopback_bind(bind)


@pytest.mark.parametrize("bind", ["0.0.0.0:8000", "[::]:8000", ":8000", "10.0.0.5:8000", "api.example.com:80",
                                  "fd://3", "0.0.0.0"])
def test_binds_beyond_loopback(bind):
    assert not is_loopback_bind(bind)


def test_listening_beyond_loopback_needs_a_token_or_the_opt_out():
    check_binding(Settings(), ["127.0.0.1:8000"])
    with pytest.raises(StartRefused, match=r"listen on 0\.0\.0\.0:8000 without IMGPIPE_API_TOKEN"):
        check_binding(Settings(), ["127.0.0.1:8000", "0.0.0.0:8000"])
    with pytest.raises(StartRefused):  # a browser-token secret alone does not guard the rest
        check_binding(Settings(upload_token_secret="k" * 32), ["0.0.0.0:8000"])
    check_binding(Settings(api_token="t" * 32), ["0.0.0.0:8000"])
    check_binding(Settings(insecure_no_auth_on_trusted_network="yes-i-understand"), ["0.0.0.0:8000"])


def test_cors_origins_need_an_api_token():
    with pytest.raises(StartRefused, match="IMGPIPE_CORS_ORIGINS is set without IMGPIPE_API_TOKEN"):
        check_binding(Settings(cors_origins="https://app.example.com"), ["127.0.0.1:8000"])
    check_binding(Settings(cors_origins="https://app.example.com", api_token="t" * 32), ["127.0.0.1:8000"])


def test_the_opt_out_is_one_exact_phrase():
    assert Settings.from_env({"IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK": "yes-i-understand"}).insecure_no_auth_on_trusted_network is True
    assert Settings().insecure_no_auth_on_trusted_network is False
    for value in ("yes", "true", "1", "YES-I-UNDERSTAND"):
        with pytest.raises(ValueError, match="IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK"):
            Settings(insecure_no_auth_on_trusted_network=value)


def test_allowed_hosts_add_public_names_to_the_loopback_ones():
    assert Settings().api_hosts == {"127.0.0.1", "localhost", "::1"}
    settings = Settings.from_env({"IMGPIPE_ALLOWED_HOSTS": "Images.Example.com, api [2001:db8::1]"})
    assert settings.api_hosts == {"127.0.0.1", "localhost", "::1", "images.example.com", "api", "2001:db8::1"}
    for bad in ("https://images.example.com", "images.example.com:443", "images.example.com/x", "*"):
        with pytest.raises(ValueError, match="IMGPIPE_ALLOWED_HOSTS"):
            Settings(allowed_hosts=bad)


@pytest.mark.parametrize("header, name", [("localhost:8000", "localhost"), ("LocalHost", "localhost"),
                                          ("[::1]:8000", "::1"), ("images.example.com.", "images.example.com"),
                                          ("127.0.0.1:8000", "127.0.0.1"), ("", "")])
def test_host_names_drop_the_port(header, name):
    assert host_name(header) == name


def test_the_credentials_file_is_made_private_filled_in_and_otherwise_kept(tmp_path):
    path = tmp_path / "var" / credentials.FILE_NAME
    made = credentials.ensure(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.read(path) == made
    assert Settings.from_env(made).redis_password and Settings.from_env(made).api_token == made["IMGPIPE_API_TOKEN"]
    assert Settings.from_env(made).delivery_secret == made["IMGPIPE_DELIVERY_SECRET"]
    assert all(3 <= len(made[name]) <= 20 for name in made if name.endswith("ACCESS_KEY"))
    assert all(len(made[name]) == 40 for name in made if name.endswith("SECRET_KEY"))

    path.chmod(0o644)
    assert credentials.ensure(path) == made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("IMGPIPE_API_TOKEN=mine\n")  # an older file, or one edited by hand: kept, completed
    completed = credentials.ensure(path)
    assert completed["IMGPIPE_API_TOKEN"] == "mine" and set(completed) == set(made)


def test_the_environment_wins_over_the_file():
    file_values = {"IMGPIPE_API_TOKEN": "from-file", "REDIS_URL": "redis://:pw@127.0.0.1:6379/0"}
    assert credentials.overlay(file_values, {"IMGPIPE_API_TOKEN": "from-env"}) == {
        "IMGPIPE_API_TOKEN": "from-env", "REDIS_URL": "redis://:pw@127.0.0.1:6379/0"}
    assert credentials.overlay(file_values, {"IMGPIPE_API_TOKEN": ""})["IMGPIPE_API_TOKEN"] == ""
