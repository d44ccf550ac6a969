import pytest

from imgpipe.settings import Settings


def test_defaults_work_without_any_variable():
    settings = Settings.from_env({})
    assert settings.s3_bucket_name == "uploads"
    assert settings.public_s3_url == "http://127.0.0.1:9000"
    assert settings.redis_address == "127.0.0.1:6379"


def test_the_old_service_names_are_read():
    settings = Settings.from_env({"S3_ENDPOINT_URL": "http://minio:9000", "S3_BASE_URL": "https://files.example.com",
                                  "REDIS_URL": "redis://cache:6380/2", "DATABASE_PATH": "/data/db",
                                  "IMGPIPE_MAX_PIXELS": "5000"})
    assert settings.public_s3_url == "https://files.example.com"
    assert settings.redis_address == "cache:6380"
    assert settings.database_path == "/data/db"
    assert settings.max_pixels == 5000


def test_round_trip_through_the_environment():
    settings = Settings(s3_endpoint_url="http://127.0.0.1:1234", max_upload_bytes=77, sweep_interval=0.5)
    assert Settings.from_env(settings.to_env()) == settings
    lists = Settings(webhook_allow_hosts="[::1], Hooks.Internal", webhook_retry_intervals="3,1",
                     cors_origins="https://app.example.com http://localhost:5173", webhook_ports="*")
    assert Settings.from_env(lists.to_env()) == lists


def test_a_setting_has_one_name_raw_or_parsed():
    """The variable's text is parsed once, and the parsed value is read under the same name."""
    settings = Settings(webhook_allow_hosts="127.0.0.1, Hooks.Internal", webhook_ports="443")
    assert settings.webhook_allow_hosts == frozenset({"127.0.0.1", "hooks.internal"})
    assert settings.webhook_ports == frozenset({443})
    assert settings.to_env()["IMGPIPE_WEBHOOK_ALLOW_HOSTS"] == "127.0.0.1,hooks.internal"


def test_a_bad_number_names_the_variable():
    with pytest.raises(ValueError, match="IMGPIPE_MAX_PIXELS"):
        Settings.from_env({"IMGPIPE_MAX_PIXELS": "lots"})


def test_webhook_settings_are_read_and_checked():
    settings = Settings.from_env({"IMGPIPE_WEBHOOK_RETRY_INTERVALS": "1, 5,30", "IMGPIPE_MAX_BATCH": "10",
                                  "IMGPIPE_WEBHOOK_ALLOW_HOSTS": "127.0.0.1, Hooks.Internal ,[::1],"})
    assert settings.webhook_retry_intervals == (1, 5, 30)
    assert settings.max_batch == 10
    assert settings.webhook_allow_hosts == {"127.0.0.1", "hooks.internal", "::1"}
    assert Settings().webhook_retry_intervals == (10, 30, 60, 120, 300)
    for bad in ("", "soon", "5,0", "-1"):
        with pytest.raises(ValueError, match="IMGPIPE_WEBHOOK_RETRY_INTERVALS"):
            Settings(webhook_retry_intervals=bad)


def test_cors_origins_are_a_list_of_origins_or_any():
    assert Settings().cors_origins == ()
    settings = Settings.from_env({"IMGPIPE_CORS_ORIGINS": "https://App.example.com, http://localhost:5173/ http://[::1]:8080"})
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:5173", "http://[::1]:8080")
    assert Settings(cors_origins=" * ").cors_origins == ("*",)
    for bad in ("*, https://app.example.com", "app.example.com", "https://app.example.com/upload",
                "ftp://app.example.com", "https://user@app.example.com", "https://*.example.com"):
        with pytest.raises(ValueError, match="IMGPIPE_CORS_ORIGINS"):
            Settings(cors_origins=bad)


def test_an_upload_token_secret_must_be_long_enough_to_resist_guessing():
    assert Settings.from_env({"IMGPIPE_UPLOAD_TOKEN_SECRET": "k" * 32}).upload_token_secret == "k" * 32
    with pytest.raises(ValueError, match="IMGPIPE_UPLOAD_TOKEN_SECRET"):
        Settings(upload_token_secret="short")


def test_delivery_settings_are_read_and_checked():
    settings = Settings.from_env({"IMGPIPE_DELIVERY": "public", "IMGPIPE_DELIVERY_SECRET": "d" * 32,
                                  "IMGPIPE_DELIVERY_MAX_AGE": "120"})
    assert (settings.delivery, settings.delivery_secret, settings.delivery_max_age) == ("public", "d" * 32, 120)
    assert Settings().delivery == "private" and Settings().delivery_max_age < Settings().result_url_ttl
    with pytest.raises(ValueError, match="IMGPIPE_DELIVERY must be one of private, public"):
        Settings(delivery="open")
    with pytest.raises(ValueError, match="IMGPIPE_DELIVERY_SECRET must be at least 32"):
        Settings(delivery_secret="short")
    with pytest.raises(ValueError, match="below IMGPIPE_RESULT_URL_TTL"):
        Settings(delivery_max_age=3600)  # a kept redirect would outlive the URL it points to
    with pytest.raises(ValueError, match="IMGPIPE_DELIVERY_MAX_AGE"):
        Settings(delivery_max_age=-1)
    assert Settings(result_url_ttl=100, delivery_max_age=99).delivery_max_age == 99
    assert Settings(delivery="public", delivery_max_age=86400).delivery_max_age == 86400, "a permanent URL's redirect"


def test_limits_are_settings_read_and_checked_at_start():
    defaults = Settings()
    assert defaults.rate_limit_api_token == "", "the operator's own token is not slowed by default"
    assert defaults.webhook_ports == frozenset({80, 443})
    assert defaults.job_memory_mb > 0 and defaults.webhook_expired == 0 and defaults.trusted_proxies == 0
    read = Settings.from_env({"IMGPIPE_RATE_LIMIT_BAD_CREDENTIAL": "3/minute", "IMGPIPE_WEBHOOK_PORTS": "443, 8443",
                              "IMGPIPE_JOB_MEMORY_MB": "512", "IMGPIPE_WEBHOOK_EXPIRED": "1"})
    assert (read.rate_limit_bad_credential, read.webhook_ports, read.job_memory_mb, read.webhook_expired) == (
        "3/minute", frozenset({443, 8443}), 512, 1)
    assert Settings(webhook_ports="*").webhook_ports is None
    with pytest.raises(ValueError, match="IMGPIPE_RATE_LIMIT_ANONYMOUS"):
        Settings(rate_limit_anonymous="plenty")
    with pytest.raises(ValueError, match="IMGPIPE_WEBHOOK_PORTS"):
        Settings(webhook_ports="80,70000")
    with pytest.raises(ValueError, match="IMGPIPE_JOB_MEMORY_MB"):
        Settings(job_memory_mb=-1)


def test_the_grace_of_superseded_derivatives_is_seconds():
    assert Settings().superseded_grace == 7 * 86400.0
    settings = Settings.from_env({"IMGPIPE_SUPERSEDED_GRACE": "60"})
    assert settings.superseded_grace == 60.0 and Settings.from_env(settings.to_env()).superseded_grace == 60.0
    with pytest.raises(ValueError, match="IMGPIPE_SUPERSEDED_GRACE"):
        Settings.from_env({"IMGPIPE_SUPERSEDED_GRACE": "-1"})
