"""No log line prints a password: an upload, a refused guess and a webhook go through a stack
whose Redis URL carries a password and whose store, API and webhooks have secrets of their own,
then every log file under the stack's var/log is searched for each secret."""

from __future__ import annotations

import dataclasses
import secrets

import requests

from pipeline_client import Api, make_jpegs, put_file
from polling import eventually
from stacks import free_port, running_stack
from webhook_receiver import webhook_receiver

SECRET_FIELDS = ("secret_key", "_secret", "api_token")


def secrets_of(settings) -> dict[str, str]:
    """Every secret the settings hold, by field: the Redis password, each store secret key
    (the root's and any service identity's), the API token, the webhook and upload token secrets."""
    found = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)
             if field.name.endswith(SECRET_FIELDS) and getattr(settings, field.name)}
    return {**found, "redis_password": settings.redis_password}


def test_no_log_line_prints_a_secret(tmp_path):
    with webhook_receiver() as hook, running_stack(
            tmp_path / "stack", redis_url=f"redis://:{secrets.token_hex(16)}@127.0.0.1:{free_port()}/0",
            s3_access_key=f"root-{secrets.token_hex(4)}", s3_secret_key=secrets.token_hex(20),
            api_token=secrets.token_urlsafe(24), webhook_secret=secrets.token_hex(16),
            upload_token_secret=secrets.token_hex(32), webhook_allow_hosts="127.0.0.1", webhook_ports="*") as stack:
        hidden = secrets_of(stack.settings)
        assert {"redis_password", "s3_secret_key", "api_token", "webhook_secret", "upload_token_secret"} <= set(hidden)
        assert all(len(value) >= 16 for value in hidden.values())

        api = Api(stack.api_url)
        api.http.headers["Authorization"] = f"Bearer {stack.settings.api_token}"
        [picture] = make_jpegs(tmp_path / "in", 1)
        created = api.create_for(picture, callback_url=f"{hook.url}/hook")
        put_file(created["upload"], picture)
        assert api.wait_final(created["id"])["status"] == "completed"
        hook.wait_for(1)
        assert requests.get(f"{stack.api_url}/uploads", timeout=10,
                            headers={"Authorization": "Bearer a-wrong-guess"}).status_code == 401
        eventually(lambda: api.get(f"/uploads/{created['id']}").json()["callback"]["state"] == "delivered",
                   what="the webhook to be recorded delivered")
        logs = sorted((stack.var_dir / "log").glob("**/*.log"))

    names = {log.name for log in logs}
    assert {"api.log", "relay.log", "worker.log", "redis.log", "minio.log"} <= names, names
    for log in logs:
        text = log.read_text(errors="replace")
        for name, value in hidden.items():
            assert value not in text, f"{log.name} prints {name}"
