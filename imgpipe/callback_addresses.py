"""Where webhooks may go: public addresses on ports 80 and 443 only, unless the host is allowed
by name (IMGPIPE_WEBHOOK_ALLOW_HOSTS) or other ports are (IMGPIPE_WEBHOOK_PORTS).

A callback URL is chosen by a client but requested by the workers, so it must not reach into the
network they run in: loopback, private, link-local (where cloud metadata services answer),
multicast, reserved and every other non-public range is refused. The check runs when the upload
is created and again before each delivery, on the addresses the name resolves to then (DNS can
change in between); the delivery connects to an address that passed. Hosts named in
IMGPIPE_WEBHOOK_ALLOW_HOSTS skip it. The port is checked for every host: a public address's
other ports are where its owner's admin and database services listen, not its web receivers.
Resolution is passed in, so everything here is pure.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# Named although the ranges below cover them too, so the refusal says what they are.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(address) for address in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
WEB_PORTS = frozenset({80, 443})


class CallbackRefused(Exception):
    """The callback URL leads somewhere webhooks must not go; the message says where."""


def refusal(address: Address) -> str | None:
    """Why a webhook must not be sent to `address`, or None when it is a public address.

    An IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is judged by the IPv4 one.
    """
    address = embedded_ipv4(address) or address
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for flag, kind in (("is_loopback", "a loopback"), ("is_unspecified", "an unspecified"),
                       ("is_link_local", "a link-local"), ("is_multicast", "a multicast"),
                       ("is_reserved", "a reserved"), ("is_private", "a private")):
        if getattr(address, flag):
            return f"{kind} address"
    return None if address.is_global else "not a public address"


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if address.version == 4:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def host_and_port(url: str) -> tuple[str, int]:
    """The URL's host as compared with the allow list (lower case, no brackets) and its port."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def check_port(port: int, allowed_ports: frozenset[int] | None) -> None:
    """Refuse a port other than those allowed (None: any)."""
    if allowed_ports is not None and port not in allowed_ports:
        shown = ", ".join(str(allowed) for allowed in sorted(allowed_ports))
        raise CallbackRefused(f"callback port {port} is not allowed (allowed: {shown}; see IMGPIPE_WEBHOOK_PORTS)")


def check_new_callback(url: str, allowed_hosts: frozenset[str], resolve: Resolver, *,
                       allowed_ports: frozenset[int] | None = WEB_PORTS) -> None:
    """Refuse a callback URL at creation when its port is not allowed, or its host is, or
    resolves to, a forbidden address.

    A name that does not resolve now is let through: it is resolved again at every delivery.
    """
    host, port = host_and_port(url)
    check_port(port, allowed_ports)
    if host in allowed_hosts:
        return
    try:
        addresses = resolve(host, port)
    except OSError:
        return
    _refuse_forbidden(host, addresses)


def delivery_addresses(url: str, allowed_hosts: frozenset[str], resolve: Resolver, *,
                       allowed_ports: frozenset[int] | None = WEB_PORTS) -> list[str]:
    """The addresses a delivery may connect to, resolved now; raises CallbackRefused when the
    port is not allowed (any longer) or any address is forbidden (one bad answer is enough to
    make the name suspect), and OSError when the name does not resolve."""
    host, port = host_and_port(url)
    check_port(port, allowed_ports)
    addresses = resolve(host, port)
    if host not in allowed_hosts:
        _refuse_forbidden(host, addresses)
    return addresses


def _refuse_forbidden(host: str, addresses: list[str]) -> None:
    for text in addresses:
        reason = refusal(ipaddress.ip_address(text))
        if reason is not None:
            shown = host if host == text else f"{host} ({text})"
            raise CallbackRefused(f"callback host {shown} is {reason}")


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (a literal address resolves to itself), in the resolver's order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(sockaddr[0] for *_, sockaddr in found))
