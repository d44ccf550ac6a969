"""Configuration from the environment.

Every process (API, relay, worker, CLI) reads the same variables, with the same names as
the service imgpipe replaces, and every one has a default that works on a laptop, so
`make up` needs none of them.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import unquote, urlsplit

from limits import parse_many

from imgpipe.presets import Presets, load_presets
from imgpipe.store_identities import PROCESS_IDENTITIES, ROOT, SERVICE_ROLES

MIN_TOKEN_SECRET_LENGTH = 32
# The loopback names every API answers to; IMGPIPE_ALLOWED_HOSTS adds the public ones.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_HOST_NAME = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)\Z")
# The only value of IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK that opens the API: nobody types it by accident.
NO_AUTH_CONSENT = "yes-i-understand"
_ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?\Z")
# off: no model is loaded; flag: every upload is scored and kept; reject: one scored at or over the threshold fails.
MODERATION_MODES = ("off", "flag", "reject")
STORE_IDENTITY_MODES = ("create", "given")
# private: every derivative URL is presigned; public: anyone may read the derivative prefixes (never originals/).
DELIVERY_MODES = ("private", "public")
MIN_SECRET_KEY_LENGTH = 8  # MinIO's (and S3's) shortest secret key
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# The SQLite file of a process run by hand when DATABASE_PATH is unset; `imgpipe up` puts it in its --var-dir.
DEFAULT_DATABASE_PATH = "var/imgpipe.db"
RATE_LIMITS = ("rate_limit_bad_credential", "rate_limit_anonymous", "rate_limit_upload_token", "rate_limit_api_token")


@dataclass(frozen=True)
class Settings:
    s3_endpoint_url: str = "http://127.0.0.1:9000"
    s3_access_key: str = "minioadmin"
    s3_secret_key: str = "minioadmin"
    s3_bucket_name: str = "uploads"
    s3_base_url: str = ""
    s3_region: str = "us-east-1"
    # The service identities (imgpipe.store_identities): each process signs with its own; the
    # root account above is for `imgpipe setup` alone. The defaults are for a laptop only.
    s3_upload_access_key: str = "imgpipe-upload"
    s3_upload_secret_key: str = "imgpipe-upload-secret"
    s3_read_access_key: str = "imgpipe-read"
    s3_read_secret_key: str = "imgpipe-read-secret"
    s3_worker_access_key: str = "imgpipe-worker"
    s3_worker_secret_key: str = "imgpipe-worker-secret"
    s3_api_access_key: str = "imgpipe-api"
    s3_api_secret_key: str = "imgpipe-api-secret"
    s3_multipart_access_key: str = "imgpipe-multipart"
    s3_multipart_secret_key: str = "imgpipe-multipart-secret"
    store_identities: str = "create"  # create: setup makes them with the root account; given: the operator's own
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_path: str = ""  # empty: imgpipe.db with the rest of the local stack's data (var/ by default)
    database_url: str = ""
    events_key: str = "imgpipe:minio-events"
    queue_name: str = "images"
    max_upload_bytes: int = 50 * 1024 * 1024
    multipart_threshold_mb: int = 16  # a declared size from here on is uploaded in parts
    multipart_ttl: int = 86400  # seconds a multipart upload may take, resumes included
    max_pixels: int = 100_000_000
    upload_url_ttl: int = 900
    result_url_ttl: int = 3600
    upload_grace: int = 300
    sweep_interval: float = 5.0
    sweep_min_age: float = 10.0
    processing_deadline: int = 300
    max_attempts: int = 3
    api_token: str = ""
    max_batch: int = 50
    webhook_secret: str = ""
    # The settings of _PARSED hold their parsed value under their variable's name; a string given
    # (by the environment or by a caller) is parsed once, in __post_init__.
    webhook_allow_hosts: frozenset[str] = frozenset()  # exempt from the private-address refusal, lower case
    webhook_retry_intervals: tuple[int, ...] = (10, 30, 60, 120, 300)  # one more try than there are intervals
    cors_origins: tuple[str, ...] = ()  # `scheme://host[:port]` each, or `*` alone for any origin
    upload_token_secret: str = ""
    delivery_secret: str = ""  # signs delivery URLs (imgpipe.delivery_urls); empty: none opens anything
    delivery_max_age: int = 600  # seconds a client or cache may keep a delivery redirect
    allowed_hosts: str = ""  # public names of the API, beyond LOOPBACK_HOSTS
    # True only from the consent phrase NO_AUTH_CONSENT: an API that answers without any credential.
    insecure_no_auth_on_trusted_network: bool = False
    orphan_min_age: float = 3600.0
    retention_days: float = 0.0
    delivery: str = "private"
    # Seconds a derivative a reprocess replaced stays readable by its URL before it is released.
    superseded_grace: float = 7 * 86400.0

    # Rate limits (flask-limiter's notation, several separated by ";"; empty: not limited).
    rate_limit_bad_credential: str = "10 per minute; 100 per day"
    rate_limit_anonymous: str = "60 per minute"
    rate_limit_upload_token: str = "120 per minute"
    rate_limit_api_token: str = ""
    trusted_proxies: int = 0  # reverse proxies in front of the API whose X-Forwarded-For is believed
    webhook_ports: frozenset[int] | None = frozenset({80, 443})  # None: any port (IMGPIPE_WEBHOOK_PORTS=*)
    webhook_expired: int = 0  # 1: deliver the webhook of an upload whose URL expired unused, too
    job_memory_mb: int = 2048

    moderation: str = "off"
    moderation_threshold: float = 0.8
    presets: str = ""  # path of the presets file; empty: the built-in resized, compressed and thumbnail

    log_level: str = "INFO"
    log_format: str = "text"  # json: one JSON object per line

    def __post_init__(self):
        """A malformed retry list, origin list, token secret, moderation setting or presets file is
        refused when the settings are read, so a process refuses to start on it rather than failing
        at the first request, webhook or upload that needs it."""
        for name, (parse, _) in _PARSED.items():
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, parse(getattr(self, name)))
        self.api_hosts
        if self.upload_token_secret and len(self.upload_token_secret) < MIN_TOKEN_SECRET_LENGTH:
            raise ValueError(f"IMGPIPE_UPLOAD_TOKEN_SECRET must be at least {MIN_TOKEN_SECRET_LENGTH} characters"
                             " (for example the output of `openssl rand -hex 32`)")
        if self.moderation not in MODERATION_MODES:
            raise ValueError(f"IMGPIPE_MODERATION must be one of {', '.join(MODERATION_MODES)}, got {self.moderation!r}")
        if not 0 <= self.moderation_threshold <= 1:
            raise ValueError("IMGPIPE_MODERATION_THRESHOLD is the model's probability, from 0 to 1,"
                             f" got {self.moderation_threshold!r}")
        self.derivative_presets
        for name in RATE_LIMITS:
            _check_rate_limit(name, getattr(self, name))
        if self.trusted_proxies < 0:
            raise ValueError(f"IMGPIPE_TRUSTED_PROXIES is a number of proxies, got {self.trusted_proxies!r}")
        if self.multipart_threshold_mb < 0:
            raise ValueError(f"IMGPIPE_MULTIPART_THRESHOLD_MB is megabytes (0: every file in parts),"
                             f" got {self.multipart_threshold_mb!r}")
        if self.multipart_ttl < 1:
            raise ValueError(f"IMGPIPE_MULTIPART_TTL is seconds (at least 1), got {self.multipart_ttl!r}")
        if self.job_memory_mb < 0:
            raise ValueError(f"IMGPIPE_JOB_MEMORY_MB is megabytes (0: no cap), got {self.job_memory_mb!r}")
        self._check_store_identities()
        if self.delivery not in DELIVERY_MODES:
            raise ValueError(f"IMGPIPE_DELIVERY must be one of {', '.join(DELIVERY_MODES)}, got {self.delivery!r}")
        if self.superseded_grace < 0:
            raise ValueError(f"IMGPIPE_SUPERSEDED_GRACE is seconds (0: released at the next sweep),"
                             f" got {self.superseded_grace!r}")
        self._check_delivery_urls()
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}")

    def _check_delivery_urls(self) -> None:
        """In private mode a kept redirect must never outlive the presigned URL it points to; in
        public mode it points at a permanent URL."""
        if self.delivery_secret and len(self.delivery_secret) < MIN_TOKEN_SECRET_LENGTH:
            raise ValueError(f"IMGPIPE_DELIVERY_SECRET must be at least {MIN_TOKEN_SECRET_LENGTH} characters"
                             " (for example the output of `openssl rand -hex 32`)")
        if self.delivery_max_age < 0:
            raise ValueError(f"IMGPIPE_DELIVERY_MAX_AGE is seconds, got {self.delivery_max_age!r}")
        if self.delivery == "private" and self.delivery_max_age >= self.result_url_ttl:
            raise ValueError(f"IMGPIPE_DELIVERY_MAX_AGE must be below IMGPIPE_RESULT_URL_TTL ({self.result_url_ttl})"
                             " in private delivery mode: a kept redirect must not outlive the presigned URL it points"
                             f" to, got {self.delivery_max_age!r}")

    def _check_store_identities(self) -> None:
        """Every identity its own key: two roles sharing one would hold each other's rights."""
        if self.store_identities not in STORE_IDENTITY_MODES:
            raise ValueError(f"IMGPIPE_STORE_IDENTITIES must be one of {', '.join(STORE_IDENTITY_MODES)},"
                             f" got {self.store_identities!r}")
        # With identities of the operator's own, setup never uses the root account: it may be unset.
        roles = SERVICE_ROLES if self.store_identities == "given" else (ROOT, *SERVICE_ROLES)
        keys = {role: self.store_keys(role) for role in roles}
        for role, (access_key, secret_key) in keys.items():
            if not access_key or len(secret_key) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(f"{_keys_env(role)[0]} must be set and {_keys_env(role)[1]} at least"
                                 f" {MIN_SECRET_KEY_LENGTH} characters")
        access_keys = [access_key for access_key, _ in keys.values()]
        if len(set(access_keys)) != len(access_keys):
            raise ValueError("S3_ACCESS_KEY and the S3_<ROLE>_ACCESS_KEY of every identity"
                             f" ({', '.join(role.upper() for role in SERVICE_ROLES)}) must all differ")

    def store_keys(self, role: str) -> tuple[str, str]:
        """(access key, secret key) of a store identity: ROOT or one of SERVICE_ROLES."""
        if role == ROOT:
            return self.s3_access_key, self.s3_secret_key
        if role not in SERVICE_ROLES:
            raise ValueError(f"no store identity {role!r}")
        return getattr(self, f"s3_{role}_access_key"), getattr(self, f"s3_{role}_secret_key")

    @functools.cached_property
    def derivative_presets(self) -> Presets:
        """The presets every upload's derivatives are made by, read once from the file."""
        return load_presets(self.presets)

    @property
    def public_s3_url(self) -> str:
        """The S3 host that clients reach: presigned URLs are signed for it."""
        return self.s3_base_url or self.s3_endpoint_url

    @property
    def api_hosts(self) -> frozenset[str]:
        """The Host names the API answers to (lower case, IPv6 without brackets): the loopback
        names and IMGPIPE_ALLOWED_HOSTS. Any other name is a browser sent by someone else's page."""
        names = [name.strip() for name in re.split(r"[,\s]+", self.allowed_hosts) if name.strip()]
        for name in names:
            if not _HOST_NAME.match(name):
                raise ValueError(f"IMGPIPE_ALLOWED_HOSTS: {name!r} is not a host name like images.example.com"
                                 " (no scheme, port or path)")
        return frozenset(name.lower().strip("[]") for name in (*LOOPBACK_HOSTS, *names))

    @property
    def database(self) -> str:
        """The database every process opens: DATABASE_URL when set (sqlite:///… or
        postgresql://…), otherwise the SQLite file at DATABASE_PATH."""
        return self.database_url or f"sqlite:///{self.database_path or DEFAULT_DATABASE_PATH}"

    @property
    def redis_address(self) -> str:
        """host:port of REDIS_URL, the form MinIO's Redis notification target wants."""
        parts = urlsplit(self.redis_url)
        return f"{self.redis_host}:{parts.port or 6379}"

    @property
    def redis_host(self) -> str:
        return urlsplit(self.redis_url).hostname or "127.0.0.1"

    @property
    def redis_password(self) -> str:
        """The password inside REDIS_URL (`redis://:<password>@host:port/0`), decoded as redis-py
        decodes it; "" for none."""
        return unquote(urlsplit(self.redis_url).password or "")

    @property
    def redis_username(self) -> str:
        """The ACL user inside REDIS_URL (`redis://<user>:<password>@host:port/0`); "" for Redis' default user."""
        return unquote(urlsplit(self.redis_url).username or "")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        values = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(_env_name(field.name))
            if raw is None or raw == "":
                continue
            values[field.name] = _parse(field.type, field.name, raw)
        return cls(**values)

    def to_env(self, process: str | None = None) -> dict[str, str]:
        """The variables that make another process see these same settings; for one of
        PROCESS_IDENTITIES ("api", "relay", "worker"), without the store keys it has no use for."""
        env = {_env_name(f.name): env_value(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)}
        if process is not None:
            for role in (ROOT, *SERVICE_ROLES):
                if role not in PROCESS_IDENTITIES[process]:
                    for name in _keys_env(role):
                        del env[name]
        return env


_PREFIXED = {
    "events_key", "queue_name", "max_upload_bytes", "max_pixels", "upload_url_ttl",
    "result_url_ttl", "upload_grace", "sweep_interval", "sweep_min_age",
    "processing_deadline", "max_attempts", "api_token", "max_batch", "webhook_secret",
    "webhook_allow_hosts", "webhook_retry_intervals", "cors_origins", "upload_token_secret", "orphan_min_age",
    "delivery_secret", "delivery_max_age",
    "retention_days", "allowed_hosts", "insecure_no_auth_on_trusted_network", "moderation", "moderation_threshold",
    "presets", "store_identities", "multipart_threshold_mb", "multipart_ttl",
    "webhook_ports", "webhook_expired", "job_memory_mb", "trusted_proxies", "delivery", "superseded_grace",
    *RATE_LIMITS,
}


def env_value(field_name: str, value) -> str:
    """A setting's value as its variable spells it."""
    return _PARSED[field_name][1](value) if field_name in _PARSED else str(value)


def _webhook_allow_hosts(raw: str) -> frozenset[str]:
    return frozenset(host.strip().lower().strip("[]") for host in raw.split(",") if host.strip())


def _webhook_retry_intervals(raw: str) -> tuple[int, ...]:
    try:
        intervals = tuple(int(part) for part in raw.split(","))
    except ValueError:
        intervals = ()
    if not intervals or min(intervals) < 1:
        raise ValueError("IMGPIPE_WEBHOOK_RETRY_INTERVALS must be whole seconds (at least 1) separated by commas,"
                         f" got {raw!r}")
    return intervals


def _webhook_ports(raw: str) -> frozenset[int] | None:
    if raw.strip() == "*":
        return None
    try:
        ports = frozenset(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        ports = frozenset()
    if not ports or not all(0 < port < 65536 for port in ports):
        raise ValueError(f"IMGPIPE_WEBHOOK_PORTS must be port numbers separated by commas, or * for any, got {raw!r}")
    return ports


def _cors_origins(raw: str) -> tuple[str, ...]:
    origins = tuple(origin.strip().rstrip("/").lower() for origin in re.split(r"[,\s]+", raw) if origin.strip())
    if "*" in origins and len(origins) > 1:
        raise ValueError("IMGPIPE_CORS_ORIGINS: * stands alone (any origin) or not at all")
    for origin in origins:
        if origin != "*" and not _ORIGIN.match(origin):
            raise ValueError(f"IMGPIPE_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com"
                             " (scheme, host and optional port; no path)")
    return origins


def _no_auth_consent(raw: str) -> bool:
    if raw not in ("", NO_AUTH_CONSENT):
        raise ValueError(f"IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK is either unset or {NO_AUTH_CONSENT!r}, got {raw!r}")
    return raw == NO_AUTH_CONSENT


def _comma_separated(values) -> str:
    return ",".join(str(value) for value in (sorted(values) if isinstance(values, frozenset) else values))


# field -> (parse its variable's text, spell its value as that text)
_PARSED = {
    "webhook_allow_hosts": (_webhook_allow_hosts, _comma_separated),
    "webhook_retry_intervals": (_webhook_retry_intervals, _comma_separated),
    "webhook_ports": (_webhook_ports, lambda ports: "*" if ports is None else _comma_separated(ports)),
    "cors_origins": (_cors_origins, _comma_separated),
    "insecure_no_auth_on_trusted_network": (_no_auth_consent, lambda consented: NO_AUTH_CONSENT if consented else ""),
}


def _keys_env(role: str) -> tuple[str, str]:
    """The variables holding an identity's keys."""
    infix = "" if role == ROOT else f"{role.upper()}_"
    return f"S3_{infix}ACCESS_KEY", f"S3_{infix}SECRET_KEY"


def _check_rate_limit(field_name: str, value: str) -> None:
    """A limit flask-limiter can read: `10 per minute`, `10/minute`, several separated by `;`."""
    if not value.strip():
        return
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(f"{_env_name(field_name)} must be limits like '10 per minute; 100 per day' (or empty for"
                         f" none), got {value!r}") from None


def _env_name(field_name: str) -> str:
    """S3_*, REDIS_URL, DATABASE_PATH, DATABASE_URL and LOG_* keep the old service's names; the rest are IMGPIPE_*."""
    name = field_name.upper()
    return f"IMGPIPE_{name}" if field_name in _PREFIXED else name


def _parse(type_name: str, field_name: str, raw: str):
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"{_env_name(field_name)} must be a number, got {raw!r}") from None
    return raw
