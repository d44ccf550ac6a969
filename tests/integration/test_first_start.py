"""`imgpipe up` on a fresh var directory makes the stack's credentials, keeps them in a file only
its owner reads, hands the owner a one-time login link instead of printing any secret, and uses
the same credentials on the next start; the CLI finds the API token in that file."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import requests

from cli import credentials
from cli.stack import PROJECT_ROOT, free_port
from imgpipe.error_codes import ApiError
from stacks import ensure_servers

SERVICE_KEYS = [f"S3_{role}_{kind}_KEY" for role in ("UPLOAD", "READ", "WORKER", "API", "MULTIPART") for kind in ("ACCESS", "SECRET")]


class FreshCheckout:
    """`imgpipe up --detach` and the CLI as a user runs them from a directory holding var/,
    on free ports, with none of this test run's settings in the environment."""

    def __init__(self, home: Path):
        ensure_servers()
        self.home = home
        self.var_dir = home / "var"
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.redis_password = secrets.token_hex(16)
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith(("IMGPIPE_", "S3_", "DATABASE_", "REDIS_"))}
        # Ports of its own, as the machine is shared; the password is in the URL, as the file has it.
        self.env.update(S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", PYTHONUNBUFFERED="1",
                        REDIS_URL=f"redis://:{self.redis_password}@127.0.0.1:{free_port()}/0",
                        PYTHONPATH=str(PROJECT_ROOT))

    def imgpipe(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                              cwd=self.home, env={**self.env, **env}, timeout=180)

    def up(self) -> str:
        started = self.imgpipe("up", "--detach", "--var-dir", str(self.var_dir), "--port", str(self.port),
                               "--console-port", str(free_port()))
        assert started.returncode == 0, started.stdout + started.stderr
        return started.stdout + started.stderr

    def down(self) -> None:
        self.imgpipe("down", "--var-dir", str(self.var_dir))


def login_link(banner: str, api_url: str) -> str:
    [link] = [word for line in banner.splitlines() for word in line.split() if word.startswith(f"{api_url}/login?code=")]
    return link


def test_first_start_makes_credentials_in_a_private_file_and_the_next_start_reuses_them(tmp_path):
    checkout = FreshCheckout(tmp_path)
    try:
        banner = checkout.up()
        file = checkout.var_dir / "credentials.env"
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        made = credentials.read(file)
        assert set(made) == {"S3_ACCESS_KEY", "S3_SECRET_KEY", *SERVICE_KEYS, "REDIS_URL", "IMGPIPE_API_TOKEN",
                             "IMGPIPE_DELIVERY_SECRET"}
        assert made["S3_ACCESS_KEY"] != "minioadmin" and len(made["S3_SECRET_KEY"]) == 40
        assert len(set(made.values())) == len(made)  # no two alike
        assert made["REDIS_URL"].startswith("redis://:") and len(made["REDIS_URL"].split(":")[2].split("@")[0]) == 64
        token = made["IMGPIPE_API_TOKEN"]
        assert len(token) >= 40

        for secret in (*(made[name] for name in made if "SECRET" in name), token, checkout.redis_password):
            assert secret not in banner.replace(login_link(banner, checkout.api_url), "")
        for log in (checkout.var_dir / "log").glob("*.log"):
            text = log.read_text(errors="replace")
            assert token not in text and made["S3_SECRET_KEY"] not in text and checkout.redis_password not in text, log

        assert requests.get(f"{checkout.api_url}/uploads", timeout=10).status_code == 401
        owner = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{checkout.api_url}/uploads", headers=owner, timeout=10).status_code == 200

        link = login_link(banner, checkout.api_url)
        with requests.Session() as browser:
            assert browser.get(link, timeout=10).status_code == 200  # the page, after the redirect
            assert browser.get(f"{checkout.api_url}/uploads", timeout=10).status_code == 200
        assert requests.get(link, timeout=10).status_code == 401

        listed = checkout.imgpipe("ls", "--api", checkout.api_url, "--json")  # no IMGPIPE_API_TOKEN: the file's
        assert listed.returncode == 0, listed.stderr
        refused = checkout.imgpipe("ls", "--api", checkout.api_url, IMGPIPE_API_TOKEN="not-the-token")
        assert refused.returncode == 1 and "unauthorized" in refused.stderr
        minted = checkout.imgpipe("delivery-url", "f" * 32, "thumbnail", "--api", checkout.api_url)  # the file's secret
        assert minted.returncode == 0, minted.stderr
        delivered = requests.get(minted.stdout.strip(), allow_redirects=False, timeout=10)
        assert (delivered.status_code, delivered.json()["error"]["code"]) == (404, ApiError.NOT_FOUND), "signed alike: no 403"
        fresh = checkout.imgpipe("login", "--api", checkout.api_url)
        assert fresh.returncode == 0, fresh.stderr
        assert requests.get(fresh.stdout.strip(), allow_redirects=False, timeout=10).status_code == 303

        checkout.down()
        before = file.read_bytes()
        again = checkout.up()
        assert file.read_bytes() == before
        assert requests.get(f"{checkout.api_url}/uploads", headers=owner, timeout=10).status_code == 200
        assert requests.get(login_link(again, checkout.api_url), allow_redirects=False, timeout=10).status_code == 303
    finally:
        checkout.down()
