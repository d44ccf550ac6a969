"""Both compose files started for real in a container engine: an upload through each the way
docs/deploy/compose.md tells a user, a burst on the cluster with a MinIO node and a worker
killed mid-burst, and `down -v` leaving nothing behind.

The engine is the project's private Docker daemon (scripts/container_engine.sh), which leaves the
machine's network alone; where the official base images cannot be pulled, the images are built
on stand-ins made from Debian's packages (scripts/build_base_images.sh). Both are kept per machine
(the daemon's data root), so a second run only rebuilds what changed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image

from cli.stack import PROJECT_ROOT, free_port
from imgpipe.store_identities import SERVICE_ROLES
from imagegen import photo_like_jpeg
from pipeline_client import Api, put_file
from polling import eventually

SCRIPTS = PROJECT_ROOT / "scripts"
SINGLE = "docker-compose.yml"
CLUSTER = "docker-compose.cluster.yml"
ROLES = tuple(role.upper() for role in SERVICE_ROLES)
# Tuning for a test run (IMGPIPE_ENV_FILE): sweeps often, and a job on a killed worker is given
# back after seconds rather than the production five minutes.
TEST_SETTINGS = {"IMGPIPE_SWEEP_INTERVAL": "1", "IMGPIPE_SWEEP_MIN_AGE": "3", "IMGPIPE_PROCESSING_DEADLINE": "8"}
BUILD_TIMEOUT = 1500
# A first run on a machine builds the engine's stand-in bases and both images, inside the first test.
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT + 300)


def secrets_env() -> dict[str, str]:
    """Every secret the compose files require, made as docs/deploy/compose.md says."""
    values = {"S3_ACCESS_KEY": secrets.token_hex(10), "S3_SECRET_KEY": secrets.token_hex(20),
              "REDIS_PASSWORD": secrets.token_hex(32), "IMGPIPE_API_TOKEN": secrets.token_hex(32),
              "POSTGRES_PASSWORD": secrets.token_hex(32)}
    for role in ROLES:
        values[f"S3_{role}_ACCESS_KEY"] = secrets.token_hex(10)
        values[f"S3_{role}_SECRET_KEY"] = secrets.token_hex(20)
    return values


def engine_can_run() -> str:
    """Why no container engine can run here, or "" when one can."""
    if shutil.which("docker") is None:
        return "there is no docker client"
    if os.geteuid() != 0:
        return "the private Docker daemon needs root"
    if not Path("/sys/fs/cgroup").is_dir():
        return "this kernel has no cgroups for containers"
    return ""


SYSCTLS = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables",
           "net/bridge/bridge-nf-call-ip6tables", "net/bridge/bridge-nf-call-arptables")


def network_state() -> dict:
    """What a container engine could change on the machine's network: forwarding and bridge
    netfilter sysctls, the interfaces, the iptables rules and the network namespaces mounted."""
    sysctls = {name: (Path("/proc/sys") / name).read_text().strip()
               for name in SYSCTLS if (Path("/proc/sys") / name).exists()}
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout if shutil.which("iptables-save") else ""
    namespaces = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if line.startswith("nsfs ")]
    return {"sysctls": sysctls, "links": sorted(link["ifname"] for link in links),
            "rules": sorted(line for line in rules.splitlines() if not line.startswith("#")),
            "namespaces": sorted(namespaces)}


class Engine:
    """The private daemon, the stand-in bases and the environment every compose command gets."""

    def __init__(self, tmp: Path):
        self.network_before = network_state()
        for script in ("install_compose.sh",):
            subprocess.run([str(SCRIPTS / script)], check=True)
        started = subprocess.run([str(SCRIPTS / "container_engine.sh"), "start"], check=True,
                                 capture_output=True, text=True)
        self.docker_host = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
        base = {name: value for name, value in os.environ.items() if not name.startswith(("S3_", "IMGPIPE_", "REDIS_", "POSTGRES_"))}
        self.env = {**base, "DOCKER_HOST": self.docker_host}
        bases = subprocess.run([str(SCRIPTS / "build_base_images.sh")], check=True, capture_output=True, text=True,
                               env=self.env, timeout=BUILD_TIMEOUT)
        print(bases.stderr, end="")
        stand_ins = dict(line.split("=", 1) for line in bases.stdout.splitlines() if line.startswith("IMGPIPE_"))
        settings_file = tmp / "imgpipe.env"
        settings_file.write_text("".join(f"{name}={value}\n" for name, value in TEST_SETTINGS.items()))
        self.env.update(stand_ins, IMGPIPE_BUILD_NETWORK="host", IMGPIPE_PIP_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt",
                        IMGPIPE_ENV_FILE=str(settings_file))
        # The engine's data root outlives a run: whatever an interrupted one left (the images stay).
        stale = self.docker("ps", "-aq").stdout.split()
        if stale:
            self.docker("rm", "-f", "-v", *stale)
        self.docker("volume", "prune", "-f")
        self.docker("network", "prune", "-f")

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, cwd=PROJECT_ROOT, env=self.env,
                                timeout=timeout)
        assert not check or result.returncode == 0, f"docker {' '.join(args)}: {result.stdout}{result.stderr}"
        return result

    def leftovers(self) -> dict[str, list[str]]:
        """Whatever a stack left in the engine: containers, volumes, networks beyond the built-in ones."""
        return {"containers": self.docker("ps", "-aq").stdout.split(),
                "volumes": self.docker("volume", "ls", "-q").stdout.split(),
                "networks": [name for name in self.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
                             if name not in ("host", "none", "bridge")]}

    def stop(self) -> None:
        subprocess.run([str(SCRIPTS / "container_engine.sh"), "stop"], check=True)


class Deployment:
    """One compose file brought up with fresh secrets on free loopback ports."""

    def __init__(self, engine: Engine, compose_file: str):
        self.engine = engine
        self.file = compose_file
        self.api_port, self.s3_port = free_port(), free_port()
        self.secrets = secrets_env()
        engine.env.update(self.secrets, IMGPIPE_API_PORT=str(self.api_port), IMGPIPE_S3_PORT=str(self.s3_port),
                          S3_BASE_URL=f"http://127.0.0.1:{self.s3_port}")
        self.api = Api(f"http://127.0.0.1:{self.api_port}")
        self.api.http.headers["Authorization"] = f"Bearer {self.secrets['IMGPIPE_API_TOKEN']}"

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.engine.docker("compose", "-f", self.file, *args, timeout=timeout)

    def up(self, *args: str) -> float:
        """`docker compose up --build -d`, then the wait a user does for /healthz; the seconds it all took."""
        started = time.monotonic()
        self.compose("up", "--build", "-d", *args, timeout=BUILD_TIMEOUT)
        eventually(self.healthy, timeout=180, what=f"{self.file}'s API to answer /healthz", interval=1)
        return time.monotonic() - started

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.api.base}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def container(self, service: str, index: int = 1) -> str:
        return self.compose("ps", "-aq", service).stdout.split()[index - 1]

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "40").stdout

    def down(self) -> None:
        self.compose("down", "-v")

    @contextlib.contextmanager
    def running(self, *args: str):
        """Up for the block, its containers' last logs printed if the block fails, and down after."""
        try:
            took = self.up(*args)
            print(f"{self.file}: up --build and healthy in {took:.0f} s")
            yield
        except BaseException:
            print(self.logs())
            raise
        finally:
            self.down()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    reason = engine_can_run()
    if reason:
        pytest.skip(f"no container engine can run here: {reason}")
    made = Engine(tmp_path_factory.mktemp("compose"))
    yield made
    made.stop()


def upload_one(deployment: Deployment, path: Path) -> None:
    """POST, PUT to the published store URL, poll, results, and the thumbnail fetched and decoded."""
    created = deployment.api.create_for(path)
    assert created["upload"]["url"].startswith(f"http://127.0.0.1:{deployment.s3_port}/")
    put_file(created["upload"], path)
    status = deployment.api.wait_final(created["id"], timeout=60)
    assert status["status"] == "completed", status
    results = deployment.api.get(f"/uploads/{created['id']}/results").json()
    response = requests.get(results["thumbnail"], timeout=10)
    assert response.status_code == 200, response.text
    thumbnail = Image.open(io.BytesIO(response.content))
    thumbnail.load()
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (300, 225))


def test_the_single_host_file_takes_an_upload_and_goes_down_leaving_nothing(engine, tmp_path):
    deployment = Deployment(engine, SINGLE)
    source = tmp_path / "photo.jpg"
    source.write_bytes(photo_like_jpeg(1600, 1200))
    with deployment.running():
        assert requests.get(f"{deployment.api.base}/uploads", timeout=5).status_code == 401, "the API token is required"
        upload_one(deployment, source)
    assert engine.leftovers() == {"containers": [], "volumes": [], "networks": []}


def test_the_cluster_file_survives_a_minio_node_and_a_worker_killed_mid_burst(engine, tmp_path):
    """minio3 and one of two workers crash (their main process SIGKILLed, as the kernel's OOM
    killer or a fault would) while the first ten uploads of a burst are on their way; the other
    twenty are sent once both are dead. Every upload completes, and the restart policy brings
    both containers back."""
    deployment = Deployment(engine, CLUSTER)
    paths = []
    for seed in range(31):
        path = tmp_path / f"photo-{seed}.jpg"
        path.write_bytes(photo_like_jpeg(1600, 1200, seed=seed))
        paths.append(path)
    with deployment.running("--scale", "worker=2"):
        upload_one(deployment, paths[0])

        started = time.monotonic()
        sent: list[str] = []
        killed = threading.Event()

        def send(index: int, path: Path) -> None:
            if index >= 10:
                killed.wait()
            client = Api(deployment.api.base)
            client.http.headers.update(deployment.api.http.headers)
            created = client.create_for(path)
            put_file(created["upload"], path)
            sent.append(created["id"])

        victims = [deployment.container("minio3"), deployment.container("worker", 1)]
        with ThreadPoolExecutor(4) as pool:
            burst = [pool.submit(send, index, path) for index, path in enumerate(paths[1:])]
            eventually(lambda: len(sent) >= 5, timeout=60, what="the burst's first uploads to be sent")
            for victim in victims:
                os.kill(int(engine.docker("inspect", "-f", "{{.State.Pid}}", victim).stdout), signal.SIGKILL)
            killed_after = len(sent)
            killed.set()
            for future in burst:
                future.result()

        # A write minio3 was committing when it died stays locked on the others until MinIO drops
        # the lock (a minute or two): that upload may finish that much later.
        final = {upload_id: deployment.api.wait_final(upload_id, timeout=240)["status"] for upload_id in sent}
        print(f"{CLUSTER}: {len(sent)} uploads final {time.monotonic() - started:.0f} s after the burst began,"
              f" minio3 and a worker killed after {killed_after} were sent")
        assert list(final.values()) == ["completed"] * (len(paths) - 1), final
        def restarted() -> bool:
            states = [engine.docker("inspect", "-f", "{{.State.Running}} {{.RestartCount}}", victim).stdout.split()
                      for victim in victims]
            return all(running == "true" and int(count) >= 1 for running, count in states)

        eventually(restarted, timeout=60, what="the killed containers to be restarted", interval=1)
    assert engine.leftovers() == {"containers": [], "volumes": [], "networks": []}


def test_the_engine_stops_and_leaves_the_machine_network_as_it_was(engine):
    engine.stop()
    assert subprocess.run([str(SCRIPTS / "container_engine.sh"), "status"]).returncode != 0
    assert subprocess.run(["pgrep", "-f", f"dockerd --host {engine.docker_host}"], capture_output=True).returncode == 1
    after = network_state()
    assert not [link for link in after["links"] if link.startswith(("docker0", "br-", "veth"))]
    assert not [rule for rule in after["rules"] if "DOCKER" in rule]
    assert after == engine.network_before
