import ipaddress

import pytest

from imgpipe.callback_addresses import (CallbackRefused, check_new_callback, delivery_addresses, refusal,
                                        resolve_host)


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "a loopback address"),
    ("::1", "a loopback address"),
    ("10.1.2.3", "a private address"),
    ("172.16.0.1", "a private address"),
    ("192.168.1.1", "a private address"),
    ("fd12:3456::1", "a private address"),
    ("169.254.169.254", "a cloud metadata address"),
    ("fd00:ec2::254", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address"),
    ("169.254.1.1", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("0.0.0.0", "an unspecified address"),
    ("240.0.0.1", "a reserved address"),
    ("100.64.0.1", "not a public address"),
    ("::ffff:10.0.0.1", "a private address"),
    ("::ffff:169.254.169.254", "a cloud metadata address"),
    ("64:ff9b::7f00:1", "a loopback address"),
    ("2002:a00:1::1", "a private address"),
])
def test_addresses_inside_a_network_are_refused_with_their_kind(address, reason):
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses_are_allowed(address):
    assert refusal(ipaddress.ip_address(address)) is None


def resolver(table):
    def resolve(host, port):
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return table[host]
    return resolve


DNS = resolver({"hooks.example.com": ["93.184.215.14"], "sneaky.example.com": ["93.184.215.14", "10.0.0.7"],
                "10.0.0.1": ["10.0.0.1"], "127.0.0.1": ["127.0.0.1"], "localhost": ["127.0.0.1"]})


def test_a_new_callback_is_refused_for_a_literal_or_resolved_forbidden_address():
    check_new_callback("https://hooks.example.com/in", frozenset(), DNS)
    with pytest.raises(CallbackRefused, match="10.0.0.1 is a private address"):
        check_new_callback("http://10.0.0.1/hook", frozenset(), DNS)
    with pytest.raises(CallbackRefused, match=r"sneaky.example.com \(10.0.0.7\) is a private address"):
        check_new_callback("http://sneaky.example.com/hook", frozenset(), DNS)
    with pytest.raises(CallbackRefused, match="loopback"):
        check_new_callback("http://localhost/hook", frozenset(), DNS)


def test_a_name_that_does_not_resolve_yet_is_left_to_the_delivery():
    check_new_callback("http://not-yet.example.com/hook", frozenset(), DNS)
    with pytest.raises(OSError):
        delivery_addresses("http://not-yet.example.com/hook", frozenset(), DNS)


def test_allowed_hosts_skip_the_check_by_the_name_in_the_url():
    allowed = frozenset({"127.0.0.1"})
    check_new_callback("http://127.0.0.1/hook", allowed, DNS)
    assert delivery_addresses("http://127.0.0.1/hook", allowed, DNS) == ["127.0.0.1"]
    with pytest.raises(CallbackRefused):
        check_new_callback("http://localhost/hook", allowed, DNS)


def test_only_web_ports_unless_others_are_allowed_even_for_allowed_hosts():
    allowed = frozenset({"127.0.0.1"})
    for url in ("http://hooks.example.com:8080/in", "https://hooks.example.com:22/", "http://127.0.0.1:6379/"):
        with pytest.raises(CallbackRefused, match="port .* is not allowed"):
            check_new_callback(url, allowed, DNS)
        with pytest.raises(CallbackRefused, match="port .* is not allowed"):
            delivery_addresses(url, allowed, DNS)
    check_new_callback("http://hooks.example.com:80/in", allowed, DNS)
    check_new_callback("https://hooks.example.com:443/in", allowed, DNS)
    check_new_callback("http://hooks.example.com:8080/in", allowed, DNS, allowed_ports=frozenset({80, 443, 8080}))
    assert delivery_addresses("http://127.0.0.1:9999/hook", allowed, DNS, allowed_ports=None) == ["127.0.0.1"]


def test_delivery_checks_what_the_name_resolves_to_now():
    assert delivery_addresses("https://hooks.example.com/in", frozenset(), DNS) == ["93.184.215.14"]
    rebound = resolver({"hooks.example.com": ["169.254.169.254"]})
    with pytest.raises(CallbackRefused, match="cloud metadata"):
        delivery_addresses("https://hooks.example.com/in", frozenset(), rebound)


def test_resolving_spells_every_form_of_an_address_out():
    assert resolve_host("127.1", 80) == ["127.0.0.1"]
    assert resolve_host("2130706433", 80) == ["127.0.0.1"]
    assert resolve_host("::1", 80) == ["::1"]
