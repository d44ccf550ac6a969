"""docker-compose.yml and docker-compose.cluster.yml are what `docker compose` reads, and run the
pipeline the way the code expects.

Checked with `docker compose config`, which needs the docker client and its compose plugin but
no engine. scripts/install_compose.sh builds the plugin when a machine has only the client.
tests/compose/ starts them for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest

from imgpipe.settings import Settings
from imgpipe.store_identities import PROCESS_IDENTITIES, SERVICE_ROLES
from cli.stack import PROJECT_ROOT
from notify_config.definition import minio_server_env

MINIO_PIN = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
ROLES = tuple(role.upper() for role in SERVICE_ROLES)
# What an operator must set, with a value of each shape docs/deploy/compose.md makes.
SECRETS = {"S3_ACCESS_KEY": "a" * 20, "S3_SECRET_KEY": "b" * 40, "REDIS_PASSWORD": "c" * 64,
           "IMGPIPE_API_TOKEN": "d" * 64, "POSTGRES_PASSWORD": "e" * 64,
           **{f"S3_{role}_{kind}_KEY": f"{role.lower()}-{kind.lower()}" for role in ROLES for kind in ("ACCESS", "SECRET")}}
OPTIONAL = ("S3_BASE_URL", "IMGPIPE_ALLOWED_HOSTS", "IMGPIPE_WEBHOOK_SECRET", "IMGPIPE_CORS_ORIGINS", "IMGPIPE_UPLOAD_TOKEN_SECRET",
            "IMGPIPE_MODERATION", "IMGPIPE_MODERATION_THRESHOLD", "IMGPIPE_EXTRAS", "IMGPIPE_PRESETS", "IMGPIPE_ENV_FILE",
            "IMGPIPE_BIND_ADDRESS", "IMGPIPE_API_PORT", "IMGPIPE_S3_PORT", "IMGPIPE_WORKER_MEMORY", "IMGPIPE_BUILD_NETWORK",
            "IMGPIPE_PIP_CA_BUNDLE", "IMGPIPE_PYTHON_IMAGE", "IMGPIPE_GOLANG_IMAGE", "IMGPIPE_DEBIAN_IMAGE",
            "IMGPIPE_REDIS_IMAGE", "IMGPIPE_POSTGRES_IMAGE")
INTERPOLATED = (*SECRETS, *OPTIONAL)
CLUSTER_FILE = "docker-compose.cluster.yml"
MINIO_NODES = ("minio1", "minio2", "minio3", "minio4")
PYTHON_SERVICES = ("setup", "api", "relay", "worker")


def run_config(compose_file: str, env: dict) -> subprocess.CompletedProcess:
    """`docker compose config` of the file with exactly these variables set (none of the caller's)."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker client is not installed, so `docker compose config` cannot check docker-compose.yml")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker client has no compose plugin: scripts/install_compose.sh builds one")
    clean = {name: value for name, value in os.environ.items() if name not in INTERPOLATED}
    return subprocess.run(
        [docker, "compose", "-f", str(PROJECT_ROOT / compose_file), "config", "--format", "json"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env={**clean, **env})


def compose_config(compose_file: str = "docker-compose.yml", **env: str) -> dict:
    result = run_config(compose_file, {**SECRETS, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def services() -> dict:
    return compose_config()["services"]


def test_every_process_is_a_service(services):
    assert set(services) == {"redis", "minio", "setup", "api", "relay", "worker"}
    assert services["setup"]["command"] == ["imgpipe", "setup"]
    assert services["relay"]["command"] == ["imgpipe", "relay"]
    assert services["worker"]["command"] == ["imgpipe", "worker"]
    assert services["api"]["command"][0] == "gunicorn" and services["api"]["command"][-1] == "api.wsgi:app"


def test_minio_notifies_redis_exactly_as_the_definition_says(services):
    settings = Settings.from_env(services["api"]["environment"])
    expected = minio_server_env(settings.redis_address, settings.events_key, settings.redis_password)
    assert expected["MINIO_NOTIFY_REDIS_PASSWORD_PRIMARY"] == SECRETS["REDIS_PASSWORD"]
    environment = services["minio"]["environment"]
    assert {name: environment.get(name) for name in expected} == expected


def store_keys(environment: dict) -> set[str]:
    return {name for name in environment if name.startswith("S3_") and name.endswith(("_ACCESS_KEY", "_SECRET_KEY"))}


def shared_environment(services: dict) -> dict:
    """The one environment every Python service is given, but for the store keys, which reaches
    MinIO and Redis by their service names and hands out URLs for the host's MinIO. `imgpipe
    setup` holds every identity's keys and the root account's; the other processes hold only
    the identities they sign as (imgpipe.store_identities.PROCESS_IDENTITIES)."""
    environments = [{name: value for name, value in services[service]["environment"].items()
                     if name not in store_keys(services[service]["environment"])} for service in PYTHON_SERVICES]
    assert all(environment == environments[0] for environment in environments)
    assert store_keys(services["setup"]["environment"]) == {name for name in SECRETS if name.startswith("S3_")}
    for process, roles in PROCESS_IDENTITIES.items():
        assert store_keys(services[process]["environment"]) == {
            f"S3_{role.upper()}_{kind}_KEY" for role in roles for kind in ("ACCESS", "SECRET")}, process
    for service in PYTHON_SERVICES:
        environment = services[service]["environment"]
        assert {name: environment[name] for name in store_keys(environment)} == {
            name: SECRETS[name] for name in store_keys(environment)}, service
    settings = Settings.from_env(environments[0])
    assert settings.s3_endpoint_url == "http://minio:9000"
    assert settings.public_s3_url == "http://localhost:9000"
    assert settings.redis_url == f"redis://:{SECRETS['REDIS_PASSWORD']}@redis:6379/0"
    return environments[0]


def test_the_python_services_share_settings_and_the_database(services):
    settings = Settings.from_env(shared_environment(services))
    for name in PYTHON_SERVICES:
        mounts = {volume["target"]: volume["source"] for volume in services[name]["volumes"]}
        assert mounts["/data"] == "database"
        assert settings.database_path.startswith("/data/")


def test_start_order_and_health(services):
    for name in ("api", "relay", "worker"):
        assert services[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert services["setup"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["minio"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["setup"]["restart"] == "no"
    for name in ("redis", "minio", "api"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    for name in ("redis", "minio"):
        assert [volume["target"] for volume in services[name]["volumes"]] == ["/data"]
    assert {name: services[name]["restart"] for name in services if name != "setup"} == dict.fromkeys(
        set(services) - {"setup"}, "unless-stopped")


def test_minio_is_built_from_the_pinned_source(services):
    build = services["minio"]["build"]
    dockerfile = (PROJECT_ROOT / build["dockerfile"]).read_text()
    assert "ARG GOLANG_IMAGE=golang:1.24" in dockerfile and "FROM ${GOLANG_IMAGE} AS build" in dockerfile
    assert "ARG DEBIAN_IMAGE=debian:bookworm-slim" in dockerfile
    assert f"go install {MINIO_PIN}" in dockerfile
    assert f"go install {MINIO_PIN}".split("@")[1] in (PROJECT_ROOT / "scripts" / "build_minio.sh").read_text()


def test_s3_base_url_the_token_and_the_webhook_secret_come_from_the_environment():
    services = compose_config(S3_BASE_URL="https://files.example.com", IMGPIPE_API_TOKEN="t0ken",
                              IMGPIPE_WEBHOOK_SECRET="hmac-key")["services"]
    settings = Settings.from_env(services["api"]["environment"])
    assert settings.public_s3_url == "https://files.example.com"
    assert settings.api_token == "t0ken"
    assert settings.webhook_secret == "hmac-key"


def test_web_app_settings_come_from_the_environment():
    services = compose_config(IMGPIPE_CORS_ORIGINS="https://app.example.com",
                              IMGPIPE_UPLOAD_TOKEN_SECRET="k" * 32)["services"]
    settings = Settings.from_env(services["api"]["environment"])
    assert settings.cors_origins == ("https://app.example.com",)
    assert settings.upload_token_secret == "k" * 32


@pytest.fixture(scope="module")
def cluster_services() -> dict:
    return compose_config(CLUSTER_FILE)["services"]


def test_the_cluster_file_runs_postgresql_and_four_minio_nodes(cluster_services):
    assert set(cluster_services) == {"redis", "postgres", *MINIO_NODES, *PYTHON_SERVICES}
    nodes = [cluster_services[name] for name in MINIO_NODES]
    assert all(node["command"] == nodes[0]["command"] for node in nodes)
    assert nodes[0]["command"][:2] == ["server", "http://minio{1...4}:9000/data"]
    assert all(node["environment"] == nodes[0]["environment"] for node in nodes)
    assert [[volume["source"] for volume in node["volumes"] if volume["target"] == "/data"] for node in nodes] == [
        [name] for name in MINIO_NODES]
    assert all(node["networks"]["default"]["aliases"] == ["minio"] for node in nodes)


def test_every_minio_node_notifies_redis_exactly_as_the_definition_says(cluster_services):
    settings = Settings.from_env(cluster_services["setup"]["environment"])
    expected = minio_server_env(settings.redis_address, settings.events_key, settings.redis_password)
    for name in MINIO_NODES:
        environment = cluster_services[name]["environment"]
        assert {key: environment.get(key) for key in expected} == expected
        assert (environment["MINIO_ROOT_USER"], environment["MINIO_ROOT_PASSWORD"]) == (
            settings.s3_access_key, settings.s3_secret_key)


def test_the_cluster_python_services_share_settings_and_keep_rows_in_postgresql(cluster_services):
    environment = shared_environment(cluster_services)
    assert "DATABASE_PATH" not in environment
    assert not any(cluster_services[name].get("volumes") for name in PYTHON_SERVICES), "no host-local state"
    database = urlsplit(environment["DATABASE_URL"])
    postgres = cluster_services["postgres"]["environment"]
    assert (database.scheme, database.hostname, database.port) == ("postgresql", "postgres", 5432)
    assert (database.username, database.password, database.path) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], f"/{postgres['POSTGRES_DB']}")


def test_the_cluster_starts_in_order(cluster_services):
    setup = cluster_services["setup"]
    assert {name: dependency["condition"] for name, dependency in setup["depends_on"].items()} == {
        "postgres": "service_healthy", **{name: "service_healthy" for name in MINIO_NODES}}
    assert setup["restart"] == "no"
    for name in ("api", "relay", "worker"):
        assert cluster_services[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    for name in ("redis", "postgres", *MINIO_NODES):
        assert cluster_services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    assert cluster_services["postgres"]["healthcheck"]["test"][1] == "pg_isready"


def test_the_cluster_password_and_public_address_come_from_the_environment():
    services = compose_config(CLUSTER_FILE, POSTGRES_PASSWORD="s3cret", S3_BASE_URL="https://files.example.com")["services"]
    assert urlsplit(services["worker"]["environment"]["DATABASE_URL"]).password == "s3cret"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert Settings.from_env(services["api"]["environment"]).public_s3_url == "https://files.example.com"


def test_moderation_is_off_and_not_built_in_unless_asked(services):
    assert Settings.from_env(services["worker"]["environment"]).moderation == "off"
    assert services["worker"]["build"]["args"]["EXTRAS"] == ""
    asked = compose_config(IMGPIPE_EXTRAS="moderation", IMGPIPE_MODERATION="reject",
                           IMGPIPE_MODERATION_THRESHOLD="0.6")["services"]["worker"]
    settings = Settings.from_env(asked["environment"])
    assert (settings.moderation, settings.moderation_threshold) == ("reject", 0.6)
    assert asked["build"]["args"]["EXTRAS"] == "moderation"
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert 'ARG EXTRAS=""' in dockerfile and 'pip install --no-deps ".${EXTRAS:+[$EXTRAS]}"' in dockerfile


def test_a_presets_file_on_the_host_is_what_every_python_service_reads(services, tmp_path):
    assert {services[name]["environment"]["IMGPIPE_PRESETS"] for name in PYTHON_SERVICES} == {""}
    presets = tmp_path / "presets.toml"
    asked = compose_config(IMGPIPE_PRESETS=str(presets))["services"]
    for name in PYTHON_SERVICES:
        assert asked[name]["environment"]["IMGPIPE_PRESETS"] == "/config/presets.toml", name
        mounts = {volume["target"]: volume for volume in asked[name]["volumes"]}
        assert mounts["/config/presets.toml"]["source"] == str(presets), name
        assert mounts["/config/presets.toml"]["read_only"], name


COMPOSE_FILES = ("docker-compose.yml", CLUSTER_FILE)


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_every_secret_is_required_and_says_how_to_make_it(compose_file):
    needed = [name for name in SECRETS if name != "POSTGRES_PASSWORD" or compose_file == CLUSTER_FILE]
    for name in needed:
        result = run_config(compose_file, {key: value for key, value in SECRETS.items() if key != name})
        assert result.returncode != 0, f"{compose_file} starts without {name}"
        assert name in result.stderr and "openssl rand -hex" in result.stderr, result.stderr
    services = compose_config(compose_file)["services"]
    shared_environment(services)
    for name in PYTHON_SERVICES:
        assert services[name]["environment"]["IMGPIPE_API_TOKEN"] == SECRETS["IMGPIPE_API_TOKEN"]
    minio = services["minio" if "minio" in services else "minio1"]["environment"]
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == (SECRETS["S3_ACCESS_KEY"], SECRETS["S3_SECRET_KEY"])
    redis = services["redis"]
    assert redis["command"][redis["command"].index("--requirepass") + 1] == SECRETS["REDIS_PASSWORD"]
    assert redis["environment"]["REDISCLI_AUTH"] == SECRETS["REDIS_PASSWORD"]


def published(services: dict) -> dict:
    return {name: [(port["host_ip"], port["published"], port["target"]) for port in service.get("ports", [])]
            for name, service in services.items() if service.get("ports")}


@pytest.mark.parametrize("compose_file, store", [("docker-compose.yml", "minio"), (CLUSTER_FILE, "minio1")])
def test_only_the_api_and_the_s3_port_are_published_on_loopback_unless_asked(compose_file, store):
    services = compose_config(compose_file)["services"]
    assert published(services) == {"api": [("127.0.0.1", "8000", 8000)], store: [("127.0.0.1", "9000", 9000)]}
    asked = compose_config(compose_file, IMGPIPE_BIND_ADDRESS="0.0.0.0", IMGPIPE_API_PORT="8080",
                           IMGPIPE_S3_PORT="9100")["services"]
    assert published(asked) == {"api": [("0.0.0.0", "8080", 8000)], store: [("0.0.0.0", "9100", 9000)]}


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_all_data_is_in_named_volumes(compose_file):
    config = compose_config(compose_file)
    data = {"redis": "/data", "minio": "/data", "postgres": "/var/lib/postgresql/data",
            **{node: "/data" for node in MINIO_NODES}, **({"setup": "/data", "api": "/data", "relay": "/data",
                                                           "worker": "/data"} if compose_file != CLUSTER_FILE else {})}
    for name, target in data.items():
        if name not in config["services"]:
            continue
        mounts = [volume for volume in config["services"][name]["volumes"] if volume["target"] == target]
        assert [mount["type"] for mount in mounts] == ["volume"], name
        assert mounts[0]["source"] in config["volumes"], name


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_health_means_the_service_answers_and_workers_have_a_memory_limit(compose_file):
    services = compose_config(compose_file)["services"]
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    for name in ("minio", *MINIO_NODES):
        if name in services:
            assert services[name]["healthcheck"]["test"][-1] == "http://127.0.0.1:9000/minio/health/ready"
    assert services["redis"]["healthcheck"]["test"] == ["CMD-SHELL", "redis-cli ping | grep -qx PONG"]
    # The container holds a job at its own cap (RLIMIT_AS) and the supervisor beside it, so the
    # job fails out_of_memory before the container's limit kills the worker.
    assert int(services["worker"]["mem_limit"]) == 2560 * 1024 ** 2 >= (Settings().job_memory_mb + 256) * 1024 ** 2
    assert int(compose_config(compose_file, IMGPIPE_WORKER_MEMORY="512m")["services"]["worker"]["mem_limit"]) == 512 * 1024 ** 2


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_images_users_build_are_on_the_official_bases(compose_file):
    services = compose_config(compose_file)["services"]
    minio = services["minio" if "minio" in services else "minio1"]["build"]
    assert {name: minio["args"][name] for name in ("GOLANG_IMAGE", "DEBIAN_IMAGE")} == {
        "GOLANG_IMAGE": "golang:1.24", "DEBIAN_IMAGE": "debian:bookworm-slim"}
    for name in PYTHON_SERVICES:
        assert services[name]["build"]["args"]["PYTHON_IMAGE"] == "python:3.11-slim"
        assert services[name]["build"]["args"]["PIP_CA_BUNDLE"] == ""
    assert services["redis"]["image"] == "redis:7"
    assert compose_file != CLUSTER_FILE or services["postgres"]["image"] == "postgres:15"
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim\nFROM ${PYTHON_IMAGE}" in dockerfile
    assert 'python3 -m venv "$VIRTUAL_ENV"' in dockerfile and "PATH=/opt/imgpipe/bin:$PATH" in dockerfile
