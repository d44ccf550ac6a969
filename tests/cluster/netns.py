"""Simulated hosts: Linux network namespaces joined by a bridge that lives in a namespace of its own.

Every address is on a veth the network made itself, in a private /24 with no default route, so
nothing a test starts can reach anything but its peers, and the machine's own namespace (its
interfaces, routes and addresses) is never touched. Names start with a prefix unique to the
run (`imgpc<pid><n>-`), which is how a later run finds and removes what a killed one left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

NAME_ROOT = "imgpc"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_OWNED_NAME = re.compile(rf"^{NAME_ROOT}(\d+)[a-z]+-")
_libc = ctypes.CDLL(None, use_errno=True)


class NetworkError(RuntimeError):
    """An `ip` command failed; the message carries its stderr."""


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Network:
    """Hosts (name -> address) on one /24, each a namespace with loopback and one veth to the bridge."""

    prefix: str
    hosts: dict[str, str]
    netmask: int = 24
    created: list[str] = field(default_factory=list)

    @property
    def bridge_namespace(self) -> str:
        return f"{self.prefix}-bridge"

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def bridge_port(self, host: str) -> str:
        """The bridge's end of the host's veth (interface names stay under 16 characters)."""
        return f"p-{host}"[:15]

    def create(self) -> None:
        """Make the bridge and every host; on failure, remove what was made and raise."""
        try:
            self._add_namespace(self.bridge_namespace)
            ip("-n", self.bridge_namespace, "link", "add", "br0", "type", "bridge")
            ip("-n", self.bridge_namespace, "link", "set", "br0", "up")
            for host, address in self.hosts.items():
                namespace = self.namespace(host)
                self._add_namespace(namespace)
                ip("-n", self.bridge_namespace, "link", "add", self.bridge_port(host), "type", "veth",
                   "peer", "name", "eth0", "netns", namespace)
                ip("-n", self.bridge_namespace, "link", "set", self.bridge_port(host), "master", "br0", "up")
                ip("-n", namespace, "link", "set", "lo", "up")
                ip("-n", namespace, "addr", "add", f"{address}/{self.netmask}", "dev", "eth0")
                ip("-n", namespace, "link", "set", "eth0", "up")
        except BaseException:
            self.remove()
            raise

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.created.append(name)

    def cut(self, host: str) -> None:
        """Take the host's link down at the bridge: its packets go nowhere, as with a pulled cable."""
        ip("-n", self.bridge_namespace, "link", "set", self.bridge_port(host), "down")

    def reconnect(self, host: str) -> None:
        ip("-n", self.bridge_namespace, "link", "set", self.bridge_port(host), "up")

    def pids(self, host: str) -> set[int]:
        return namespace_pids(self.namespace(host))

    def kill_host(self, host: str) -> set[int]:
        """SIGKILL every process on the host, as a power cut would; returns the pids killed."""
        return kill_namespace_processes(self.namespace(host))

    def freeze_host(self, host: str) -> set[int]:
        """SIGSTOP every process on the host, so that all of it stops at one moment while the
        test looks at what it was doing; thaw_host or kill_host follows. Returns the pids."""
        return stop_namespace_processes(self.namespace(host))

    def thaw_host(self, host: str) -> None:
        for pid in self.pids(host) - {os.getpid()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def remove(self) -> None:
        """Kill every process in the network's namespaces and delete them (hosts first, bridge last)."""
        for name in reversed(self.created):
            remove_namespace(name)
        self.created.clear()

    @contextlib.contextmanager
    def entered(self, host: str):
        """Run the calling thread (and the threads and sockets it makes) on the host.

        Network namespaces belong to threads: a thread started inside inherits the host, and a
        socket stays on the host it was made on. The thread comes back to where it was on exit.
        """
        with open("/proc/thread-self/ns/net") as original, open(NETNS_DIR / self.namespace(host)) as target:
            _setns(target.fileno())
            try:
                yield
            finally:
                _setns(original.fileno())


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NetworkError(f"setns: {os.strerror(errno)}")


def namespace_pids(name: str) -> set[int]:
    return {int(pid) for pid in ip("netns", "pids", name, check=False).split()}


def kill_namespace_processes(name: str, timeout: float = 10.0) -> set[int]:
    """SIGKILL every process in the namespace until none is left (a dying one may have forked).
    The test process itself may be inside (see Network.entered) and is never killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while (pids := namespace_pids(name) - {os.getpid()}) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        time.sleep(0.05)
    return killed


def stop_namespace_processes(name: str) -> set[int]:
    """SIGSTOP every process in the namespace, and any that one of them forked meanwhile."""
    stopped: set[int] = set()
    while pids := namespace_pids(name) - {os.getpid()} - stopped:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= pids
    return stopped


def remove_namespace(name: str) -> None:
    if not (NETNS_DIR / name).exists():
        return
    kill_namespace_processes(name)
    ip("netns", "del", name, check=False)


def remove_leftovers() -> list[str]:
    """Delete namespaces of earlier runs whose test process is gone (killed before it could clean up)."""
    removed = []
    for name in sorted(NETNS_DIR.iterdir() if NETNS_DIR.exists() else (), key=lambda path: path.name):
        match = _OWNED_NAME.match(name.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            remove_namespace(name.name)
            removed.append(name.name)
    return removed


def run_prefix(counter: int) -> str:
    """Unique per test process and per network it makes: imgpc<pid><letters>."""
    letters = ""
    counter += 1
    while counter:
        counter, rest = divmod(counter - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return f"{NAME_ROOT}{os.getpid()}{letters}"
