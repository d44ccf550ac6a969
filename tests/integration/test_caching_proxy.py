"""The caching proxy of the delivery tests (tests/caching_proxy.py) against a real MinIO: it keeps
what the store marks cacheable and answers it again without asking the store, keeps nothing
marked private or unmarked, a variant per Accept where the upstream varies on it, nothing for a
request with credentials, passes presigned uploads through to the store intact, and leaves no
process, port or file behind however its block ends."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timezone
from io import BytesIO

import pytest

from bench.minio_requests import request_counts
from caching_proxy import CACHE_STATUS, caching_proxy
from cli.stack import free_port
from imgpipe.storage import Storage, make_client
from imgpipe.store_identities import READ, ROOT
from loopback_server import serving
from pipeline_client import Api, make_jpegs, put_file
from polling import eventually
from stacks import running_stack

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """A stack (on SQLite) whose S3_BASE_URL is the proxy's store port, and the proxy."""
    minio_url = f"http://127.0.0.1:{free_port()}"
    with caching_proxy({"store": minio_url}) as proxy, \
            running_stack(tmp_path_factory.mktemp("caching-proxy"), s3_endpoint_url=minio_url,
                          s3_base_url=proxy.url("store")) as stack:
        yield stack, proxy


def put_object(stack, data: bytes, cache_control: str | None) -> str:
    key = f"thumbnails/proxy-check-{secrets.token_hex(4)}.jpg"
    metadata = {"Cache-Control": cache_control} if cache_control else None
    Storage(stack.settings, ROOT).client.put_object(stack.settings.s3_bucket_name, key, BytesIO(data), len(data),
                                                    content_type="image/jpeg", metadata=metadata)
    return key


def presigned_get(stack, proxy, key: str) -> str:
    """A GET URL signed by the read identity for the proxy's address (signing is local: no request)."""
    return make_client(proxy.url("store"), stack.settings, READ).presigned_get_object(stack.settings.s3_bucket_name, key)


def gets_of_store(stack) -> int:
    return request_counts(stack.settings)["GetObject"]


def test_an_object_the_store_marks_immutable_is_answered_from_the_cache_the_second_time(proxied):
    stack, proxy = proxied
    data = os.urandom(20_000)
    url = presigned_get(stack, proxy, put_object(stack, data, IMMUTABLE))
    logged, before = len(proxy.entries()), gets_of_store(stack)

    first, second = proxy.get(url), proxy.get(url)

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content == second.content == data
    assert (first.headers[CACHE_STATUS], second.headers[CACHE_STATUS]) == ("MISS", "HIT")
    assert second.headers["Cache-Control"] == IMMUTABLE
    entries = eventually(lambda: len(found := proxy.entries(logged)) >= 2 and found, 10, "the two requests' log lines")
    assert gets_of_store(stack) - before == 1
    assert [(entry["name"], entry["status"], entry["cache"]) for entry in entries] == [("store", "200", "MISS"),
                                                                                       ("store", "200", "HIT")]
    assert entries[1]["upstream"] == ""  # the hit never went upstream


def test_answers_marked_private_or_not_marked_at_all_are_not_kept(proxied):
    stack, proxy = proxied
    data = os.urandom(5_000)
    unmarked = presigned_get(stack, proxy, put_object(stack, data, None))
    # A result URL of private mode: the store is made to answer it with Cache-Control: private.
    private = Storage(stack.settings, READ).presign_get(put_object(stack, data, IMMUTABLE), 600, datetime.now(timezone.utc))
    assert private.startswith(proxy.url("store"))
    logged, before = len(proxy.entries()), gets_of_store(stack)

    answers = [proxy.get(url) for url in (unmarked, unmarked, private, private)]

    assert [answer.status_code for answer in answers] == [200] * 4
    assert [answer.headers[CACHE_STATUS] for answer in answers] == ["MISS"] * 4
    assert answers[2].headers["Cache-Control"] == "private"
    eventually(lambda: len(proxy.entries(logged)) >= 4, 10, "the four requests' log lines")
    assert gets_of_store(stack) - before == 4


def test_a_request_with_credentials_is_neither_answered_from_the_cache_nor_kept(proxied):
    stack, proxy = proxied
    data = os.urandom(3_000)
    url = presigned_get(stack, proxy, put_object(stack, data, IMMUTABLE))
    assert proxy.get(url).headers[CACHE_STATUS] == "MISS"
    logged = len(proxy.entries())

    with_credentials = proxy.get(url, headers={"Authorization": "Bearer someone"})
    again = proxy.get(url)

    assert with_credentials.headers[CACHE_STATUS] == "BYPASS"
    # The store saw the request and refused it (a presigned URL and a credential at once); the
    # refusal did not replace what the cache holds.
    bypassed = eventually(lambda: proxy.entries(logged), 10, "the bypass's log line")[0]
    assert bypassed["upstream"] == f"127.0.0.1:{stack.settings.s3_endpoint_url.rsplit(':', 1)[1]}"
    assert with_credentials.status_code == 400
    assert (again.headers[CACHE_STATUS], again.content) == ("HIT", data)


def test_a_presigned_upload_through_the_proxy_reaches_the_store_and_is_processed(proxied, tmp_path):
    """The Host header goes through as the client sent it: the signature made for the proxy's
    address verifies at the store."""
    stack, _ = proxied
    api = Api.of(stack)
    photo = make_jpegs(tmp_path, 1)[0]
    created = api.create_for(photo)
    assert created["upload"]["url"].startswith(stack.settings.s3_base_url)

    put_file(created["upload"], photo)

    assert api.wait_final(created["id"])["status"] == "completed"


def answer_per_accept(served: list[str]):
    """An upstream's answers in the format the request's Accept prefers, saying they vary on
    Accept, as GET /uploads/<id>/<preset> does; `served` notes what reached it."""
    def answer(path: str, headers) -> tuple[int, dict[str, str], bytes]:
        kind = "avif" if "image/avif" in headers.get("Accept", "") else "jpeg"
        served.append(kind)
        return 200, {"Content-Type": f"image/{kind}", "Cache-Control": "public, max-age=300", "Vary": "Accept"}, kind.encode()
    return answer


def test_a_variant_is_kept_per_accept_where_the_upstream_varies_on_it():
    served: list[str] = []
    with serving(answer_per_accept(served)) as upstream, caching_proxy({"api": upstream}) as proxy:
        url = f"{proxy.url('api')}/uploads/some-id/thumbnail"
        browser, jpeg_only = {"Accept": "image/avif,image/webp,*/*;q=0.8"}, {"Accept": "image/jpeg"}
        answers = [proxy.get(url, headers=headers) for headers in (browser, jpeg_only, browser, jpeg_only)]
        logged = proxy.entries()

    seen = [(answer.headers["Content-Type"], answer.headers[CACHE_STATUS]) for answer in answers]
    assert seen == [("image/avif", "MISS"), ("image/jpeg", "MISS"), ("image/avif", "HIT"), ("image/jpeg", "HIT")], logged
    assert served == ["avif", "jpeg"]


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_proxy_leaves_no_process_port_or_file_behind_when_its_block_fails():
    with pytest.raises(RuntimeError, match="the test failed"):
        with caching_proxy({"store": f"http://127.0.0.1:{free_port()}"}) as proxy:
            group, directory, port = proxy.process.pid, proxy.directory, proxy.ports["store"]
            assert directory.is_dir() and not refuses_connections(port)
            raise RuntimeError("the test failed")

    with pytest.raises(ProcessLookupError):  # neither the master nor its worker is left
        os.killpg(group, 0)
    assert not directory.exists()
    assert refuses_connections(port)
