"""The local stack's credentials: made at random on its first start, kept in
<var>/credentials.env (mode 0600, KEY=value lines) and reused on every later start.

The names are the settings' own environment variables, so a shell can load the file with
`set -a; . var/credentials.env; set +a`, and the CLI reads it when a variable is not set.
A value set in the environment wins over the file's.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from imgpipe.store_identities import SERVICE_ROLES

FILE_NAME = "credentials.env"
DEFAULT_PATH = Path("var") / FILE_NAME
ROLES = tuple(role.upper() for role in SERVICE_ROLES)  # a file from before a new identity gains its keys


def generate() -> dict[str, str]:
    """A full set: the store's root, a key pair per service identity, Redis's password (in
    REDIS_URL), the API token and the secret delivery URLs are signed with. MinIO takes access keys of 3 to 20 characters and secret
    keys of 8 to 40; hex keeps every value safe in a URL and a shell."""
    values = {"S3_ACCESS_KEY": "root-" + secrets.token_hex(7), "S3_SECRET_KEY": secrets.token_hex(20)}
    for role in ROLES:
        prefix = f"{role.lower()}-"
        values[f"S3_{role}_ACCESS_KEY"] = prefix + secrets.token_hex(min(6, (20 - len(prefix)) // 2))
        values[f"S3_{role}_SECRET_KEY"] = secrets.token_hex(20)
    values["REDIS_URL"] = f"redis://:{secrets.token_hex(32)}@127.0.0.1:6379/0"
    values["IMGPIPE_API_TOKEN"] = secrets.token_urlsafe(32)
    values["IMGPIPE_DELIVERY_SECRET"] = secrets.token_hex(32)
    return values


def read(path: Path) -> dict[str, str]:
    """The file's values; {} when there is none. Blank lines and # comments are skipped."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def ensure(path: Path) -> dict[str, str]:
    """The file's values, after adding whatever it lacks (all of it on a first start). The
    file is made readable by its owner alone, also when it already existed."""
    path = Path(path)
    values = read(path)
    missing = {name: value for name, value in generate().items() if name not in values}
    if missing:
        values.update(missing)
        write(path, values)
    os.chmod(path, 0o600)
    return values


def write(path: Path, values: dict[str, str]) -> None:
    """Written beside the target with mode 0600 from the start, then renamed over it, so no
    reader ever sees a partial file and the secrets are never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("# Made by `imgpipe up`; keep it secret. Environment variables of the same names win.\n")
        out.writelines(f"{name}={value}\n" for name, value in values.items())
    os.replace(temporary, path)


def overlay(file_values: dict[str, str], environ) -> dict[str, str]:
    """What settings are read from: the file's values under every variable the environment sets
    (to anything, even empty: the stack hands its processes every setting, empty ones too)."""
    return {**file_values, **environ}
