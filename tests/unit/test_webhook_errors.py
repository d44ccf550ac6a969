import http.client
import socket
import ssl

import pytest

from imgpipe.callback_addresses import CallbackRefused
from imgpipe.webhook_errors import DELIVERY_ERRORS, category


@pytest.mark.parametrize("failure, expected", [
    (CallbackRefused("callback host x is a loopback address"), "not_allowed"),
    (socket.gaierror(-2, "Name or service not known"), "unresolvable"),
    (TimeoutError("timed out"), "timeout"),
    (socket.timeout("timed out"), "timeout"),
    (ConnectionRefusedError(111, "Connection refused"), "connection_refused"),
    (ssl.SSLCertVerificationError("certificate verify failed"), "tls_error"),
    (ConnectionResetError(104, "Connection reset by peer"), "connection_failed"),
    (http.client.BadStatusLine("<script>the receiver's own words</script>"), "bad_response"),
    (http.client.RemoteDisconnected("Remote end closed connection"), "connection_failed"),
])
def test_every_failure_is_a_category_without_its_text(failure, expected):
    assert category(failure) == expected
    assert expected in DELIVERY_ERRORS


def test_anything_else_is_a_bug_not_a_category():
    with pytest.raises(TypeError):
        category(ValueError("no"))
