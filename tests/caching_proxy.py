"""A real shared cache in front of the delivery path: Debian's nginx with proxy_cache, started on
free loopback ports as an unprivileged process with a configuration, prefix, cache and temporary
directories of its own, the way a CDN or a site's own nginx would stand in front of the API and the
store.

Each upstream gets a server block on a port of its own, so the store's `/<bucket>/…` paths and the
API's `/uploads/…` never share a URL space (a bucket named `uploads` would otherwise collide). The
cache decides only from what the upstreams answer: their Cache-Control (no default lifetime is
configured, so an answer without one is never stored), their ETag for revalidation and their Vary,
which nginx keeps a variant per value of. Like any shared cache (RFC 9111 §3.5) it neither answers
nor stores a request that carries an Authorization header. The Host header goes upstream as the
client sent it, so URLs presigned for the proxy's address still verify at the store.

Every answer carries the cache's verdict in `X-Cache-Status` (MISS, HIT, EXPIRED, REVALIDATED,
BYPASS, or empty when the cache was not consulted), and every request is a JSON line in the access
log with the same verdict, which `entries()` reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import requests

from cli.stack import PROJECT_ROOT, free_port, wait_until

NGINX = "/usr/sbin/nginx"
CACHE_STATUS = "X-Cache-Status"
UNPRIVILEGED = "nobody"  # whom nginx runs as when the tests run as root

# One JSON object a line; nginx escapes the values itself (escape=json).
LOG_FORMAT = ('{"server":"$server_port","method":"$request_method","uri":"$request_uri","host":"$http_host",'
              '"accept":"$http_accept","status":"$status","cache":"$upstream_cache_status",'
              '"content_type":"$sent_http_content_type","upstream":"$upstream_addr","seconds":"$request_time"}')


def ensure_nginx() -> None:
    """Install Debian's nginx when it is missing, as `make test` does."""
    if not os.access(NGINX, os.X_OK):
        subprocess.run([str(PROJECT_ROOT / "scripts" / "install_nginx.sh")], check=True)


def server_block(name: str, port: int, upstream: str) -> str:
    upstream_parts = urlsplit(upstream)
    if upstream_parts.scheme != "http" or not upstream_parts.port:
        raise ValueError(f"an upstream is http://host:port: {upstream!r}")
    return f"""
    server {{
        listen 127.0.0.1:{port};
        access_log logs/access.log delivery;
        location / {{
            proxy_pass http://{upstream_parts.hostname}:{upstream_parts.port};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
            proxy_cache {name};
            proxy_cache_key $http_host$request_uri;
            proxy_cache_lock on;
            proxy_cache_revalidate on;
            proxy_cache_bypass $http_authorization;
            proxy_no_cache $http_authorization;
            proxy_request_buffering off;
            add_header {CACHE_STATUS} $upstream_cache_status always;
        }}
    }}"""


def configuration(directory: Path, ports: dict[str, int], upstreams: dict[str, str]) -> str:
    zones = "\n".join(f"    proxy_cache_path {directory / 'cache' / name} levels=1:2 keys_zone={name}:4m "
                      f"max_size=512m inactive=1h use_temp_path=off;" for name in upstreams)
    servers = "".join(server_block(name, ports[name], upstream) for name, upstream in upstreams.items())
    temp = directory / "temp"
    return f"""daemon off;
worker_processes 1;
pid {directory / 'nginx.pid'};
error_log logs/error.log notice;
events {{
    worker_connections 512;
}}
http {{
    log_format delivery escape=json '{LOG_FORMAT}';
    client_body_temp_path {temp / 'client_body'};
    proxy_temp_path {temp / 'proxy'};
    fastcgi_temp_path {temp / 'fastcgi'};
    uwsgi_temp_path {temp / 'uwsgi'};
    scgi_temp_path {temp / 'scgi'};
    client_max_body_size 0;
    keepalive_timeout 30s;
    server_tokens off;
{zones}
{servers}
}}
"""


class CachingProxy:
    """nginx in front of each named upstream (`{"api": "http://127.0.0.1:8000", ...}`), each on a port
    chosen now, so a URL of the proxy can go into settings before the upstreams or nginx start."""

    def __init__(self, upstreams: dict[str, str]):
        self.upstreams = dict(upstreams)
        self.ports = {name: free_port() for name in self.upstreams}
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def log_path(self) -> Path:
        return self.directory / "logs" / "access.log"

    def start(self) -> "CachingProxy":
        ensure_nginx()
        self.directory = Path(tempfile.mkdtemp(prefix="imgpipe-nginx-"))
        try:
            for sub in ("logs", "cache", "temp"):
                (self.directory / sub).mkdir()
            config = self.directory / "nginx.conf"
            config.write_text(configuration(self.directory, self.ports, self.upstreams))
            prefix = []
            if os.geteuid() == 0:
                user = pwd.getpwnam(UNPRIVILEGED)
                for path in (self.directory, *(self.directory / sub for sub in ("logs", "cache", "temp"))):
                    os.chown(path, user.pw_uid, user.pw_gid)
                prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
            error_log = self.directory / "logs" / "error.log"
            with open(self.directory / "logs" / "stderr.log", "ab") as stderr:
                self.process = subprocess.Popen(
                    [*prefix, NGINX, "-p", f"{self.directory}/", "-c", str(config), "-e", str(error_log)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
            wait_until(self._listening, 20, "nginx", self.process, error_log)
        except BaseException:
            self.stop()
            raise
        return self

    def _listening(self) -> bool:
        """nginx writes its pid file only once it holds every port (a port someone else took makes
        it exit instead), so a connection that succeeds then is nginx's."""
        if not (self.directory / "nginx.pid").exists():
            return False
        for port in self.ports.values():
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        return True

    def stop(self) -> None:
        """Fast shutdown (SIGTERM to the master, which ends its worker), then every file removed."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def entries(self, since: int = 0) -> list[dict]:
        """The access log's requests from the `since`-th on, each with `name`, the upstream's name.

        nginx logs a request once its answer has gone, so a client can have its answer before
        the line is there: wait for the lines expected (`get` does). A line still being
        written is left for the next read."""
        names = {str(port): name for name, port in self.ports.items()}
        text = self.log_path.read_text() if self.log_path.exists() else ""
        lines = text.split("\n")[:-1]  # whatever follows the last newline is not a whole line yet
        return [{**entry, "name": names.get(entry["server"])} for entry in map(json.loads, lines[since:])]

    def get(self, url: str, **kwargs) -> requests.Response:
        """A GET through the proxy, returned once nginx has logged every request it took (redirects
        followed included). nginx puts an answer in its cache just after the answer's last byte has
        gone, and logs the request after that: a request made before the line is there can come
        in between and miss what the previous one is about to store."""
        logged = len(self.entries())
        response = requests.get(url, timeout=10, **kwargs)
        hops = 1 + len(response.history)
        wait_until(lambda: len(self.entries(logged)) >= hops, 10, f"the proxy's log line of {url}")
        return response


@contextlib.contextmanager
def caching_proxy(upstreams: dict[str, str]):
    """A started CachingProxy, stopped and removed on the way out, however the block ends."""
    proxy = CachingProxy(upstreams)
    try:
        yield proxy.start()
    finally:
        proxy.stop()
