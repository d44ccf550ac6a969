"""Delivering to a checked address: the connection goes to exactly the address that passed the
check, with the Host header of the name, and nothing at all is sent to a refused one."""

from __future__ import annotations

import pytest

from imgpipe.callback_addresses import CallbackRefused
from processor.webhook_http import post_webhook
from webhook_receiver import webhook_receiver


def resolving(*addresses):
    def resolve(host, port):
        return list(addresses)
    return resolve


def test_the_request_goes_to_the_checked_address_under_the_callback_name():
    with webhook_receiver(default=202) as hook:
        port = hook.server.server_address[1]
        status = post_webhook(f"http://hooks.example.test:{port}/in?x=1", b'{"a": 1}', {"X-Extra": "yes"},
                              allowed_hosts=frozenset({"hooks.example.test"}), allowed_ports=None, timeout=5,
                              resolve=resolving("127.0.0.3", "127.0.0.1"))
        [request] = hook.received
    assert status == 202
    assert (request.path, request.body) == ("/in?x=1", b'{"a": 1}')
    assert request.headers["Host"] == f"hooks.example.test:{port}"
    assert request.headers["X-Extra"] == "yes"


def test_a_redirect_is_an_answer_not_a_new_destination():
    with webhook_receiver() as elsewhere, webhook_receiver(default=(307, {"Location": elsewhere.url})) as hook:
        assert post_webhook(f"{hook.url}/in", b"{}", {}, allowed_hosts=frozenset({"127.0.0.1"}), allowed_ports=None, timeout=5) == 307
        assert elsewhere.received == []


def test_a_name_resolving_inside_the_network_gets_nothing_sent():
    with webhook_receiver() as hook:
        port = hook.server.server_address[1]
        with pytest.raises(CallbackRefused, match=r"hooks.example.test \(127.0.0.1\) is a loopback address"):
            post_webhook(f"http://hooks.example.test:{port}/in", b"{}", {}, allowed_hosts=frozenset(), allowed_ports=None, timeout=5,
                         resolve=resolving("93.184.215.14", "127.0.0.1"))
        assert hook.received == []
