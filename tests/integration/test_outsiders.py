"""An outsider's requests to a real stack, each refused: no credential, a wrong one, another
site's page using the owner's browser, another host name, and API processes started with
settings that would open the door (a second gunicorn on the session's stack)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import pytest
import requests

from api.login import COOKIE
from cli.stack import free_port, wait_until
from imgpipe.upload_tokens import mint
from polling import eventually

SECRET = "outsider-test-secret-" + "z" * 20
NEW_UPLOAD = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000}
ATTACKER = "https://attacker.example"


def owner(stack) -> dict:
    return {"Authorization": f"Bearer {stack.settings.api_token}"}


def assert_refused(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


def test_an_outsider_can_neither_list_nor_read_nor_delete_uploads(stack, api):
    upload_id = api.create()["id"]
    base = stack.api_url
    wrong = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {stack.settings.api_token}x"},
             {"Authorization": "Basic " + "b3duZXI6d3Jvbmc="}]  # owner:wrong
    for headers in wrong:
        for path in ("/uploads", f"/uploads/{upload_id}", f"/uploads/{upload_id}/status", f"/uploads/{upload_id}/results",
                     "/metrics", "/openapi.json", "/", "/static/upload.js", "/rq/", "/rq/0/data/queues.json"):
            assert_refused(requests.get(base + path, headers=headers, timeout=10), 401, "unauthorized")
        assert_refused(requests.delete(f"{base}/uploads/{upload_id}", headers=headers, timeout=10), 401, "unauthorized")
        assert_refused(requests.post(f"{base}/uploads", json=NEW_UPLOAD, headers=headers, timeout=10), 401,
                       "unauthorized")
    assert api.get(f"/uploads/{upload_id}/status").json()["status"] == "pending"  # still there
    assert requests.get(f"{base}/healthz", timeout=10).status_code == 200


def test_the_dashboard_changes_nothing_on_a_get(stack):
    probe = f"{stack.api_url}/rq/requeue/outsider-probe"  # a queue nobody uses: requeuing it moves no job
    answer = requests.get(probe, headers=owner(stack), timeout=10)
    assert_refused(answer, 405, "method_not_allowed")
    assert answer.headers["Allow"] == "POST"
    assert requests.head(probe, headers=owner(stack), timeout=10).status_code == 405
    same_origin = requests.post(probe, headers={**owner(stack), "Origin": stack.api_url,
                                                "Sec-Fetch-Site": "same-origin"}, timeout=10)
    assert same_origin.status_code == 200, same_origin.text  # what the dashboard's own button sends


def test_another_sites_page_cannot_use_the_dashboard_even_with_the_owners_browser(stack):
    probe = f"{stack.api_url}/rq/requeue/outsider-probe"
    cached_basic = ("owner", stack.settings.api_token)  # what a browser resends by itself once asked
    for headers in ({"Origin": ATTACKER}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Origin": "http://localhost:5173", "Sec-Fetch-Site": "same-site"}):
        assert_refused(requests.post(probe, headers=headers, auth=cached_basic, timeout=10), 403, "cross_site")
        assert_refused(requests.post(probe, headers={**headers, **owner(stack)}, timeout=10), 403, "cross_site")
        assert_refused(requests.get(f"{stack.api_url}/rq/", headers={**headers, **owner(stack)}, timeout=10), 403,
                       "cross_site")


def test_a_request_by_another_host_name_is_refused(stack, api):
    rebound = {**owner(stack), "Host": "rebind.attacker.example"}
    for path in ("/uploads", "/", "/rq/", "/metrics", f"/uploads/{api.create()['id']}/status", "/nowhere"):
        assert_refused(requests.get(stack.api_url + path, headers=rebound, timeout=10), 400, "unknown_host")
    assert_refused(requests.post(f"{stack.api_url}/uploads", json=NEW_UPLOAD, headers=rebound, timeout=10), 400,
                   "unknown_host")
    port = stack.api_port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        assert requests.get(f"{stack.api_url}/uploads", headers={**owner(stack), "Host": host}, timeout=10).ok, host
    assert requests.get(f"{stack.api_url}/healthz", headers={"Host": "rebind.attacker.example"}, timeout=10).ok


def test_the_login_link_works_once_and_sets_a_strict_http_only_cookie(stack):
    link = stack.login_link()
    first = requests.get(link, allow_redirects=False, timeout=10)
    assert (first.status_code, first.headers["Location"]) == (303, "/")
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "max-age", "expires"} <= flags and "secure" not in flags  # plain HTTP here
    assert "SameSite=Strict" in cookie
    session = {COOKIE: first.cookies[COOKIE]}

    assert_refused(requests.get(link, allow_redirects=False, timeout=10), 401, "invalid_login_link")
    assert_refused(requests.get(f"{stack.api_url}/login?code=guess", timeout=10), 401, "invalid_login_link")

    page = requests.get(f"{stack.api_url}/", cookies=session, headers={"Sec-Fetch-Site": "none"}, timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    listed = requests.get(f"{stack.api_url}/uploads", cookies=session, headers={"Sec-Fetch-Site": "same-origin"},
                          timeout=10)
    assert listed.status_code == 200
    assert requests.get(f"{stack.api_url}/rq/", cookies=session, timeout=10).status_code == 200
    created = requests.post(f"{stack.api_url}/uploads", json=NEW_UPLOAD, cookies=session, timeout=10,
                            headers={"Origin": stack.api_url, "Sec-Fetch-Site": "same-origin"})
    assert created.status_code == 201
    # The cookie is the owner's, but another page's request carrying it is refused.
    assert_refused(requests.delete(f"{stack.api_url}/uploads/{created.json()['id']}", cookies=session, timeout=10,
                                   headers={"Origin": "http://127.0.0.1:5173", "Sec-Fetch-Site": "same-site"}),
                   403, "cross_site")
    forged = {COOKIE: session[COOKIE][:-3] + ("AAA" if not session[COOKIE].endswith("AAA") else "BBB")}
    assert_refused(requests.get(f"{stack.api_url}/uploads", cookies=forged, timeout=10), 401, "unauthorized")


@contextlib.contextmanager
def another_api(stack, name: str, bind: str, **env: str):
    """A second gunicorn on the stack's services, with these variables changed; yields the process."""
    process = stack.spawn(name, [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", "1",
                                 "--graceful-timeout", "2", "api.wsgi:app"], {**stack.env(), **env})
    try:
        yield process
    finally:
        stack.stop_process(name)


def serving(stack, process, name: str, url: str, verify: bool | str = True) -> None:
    def healthy() -> bool:
        return requests.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200
    wait_until(healthy, 30, name, process, stack.path("log", f"{name}.log"))


def test_under_tls_the_login_cookie_is_secure(stack, tmp_path):
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    with another_api(stack, "api-tls", f"127.0.0.1:{port}", GUNICORN_CMD_ARGS=f"--certfile {certificate} --keyfile {key}") \
            as process:
        serving(stack, process, "api-tls", url, verify=str(certificate))
        answer = requests.get(stack.login_link().replace(stack.api_url, url), allow_redirects=False,
                              verify=str(certificate), timeout=10)
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_a_browser_token_only_api_refuses_anonymous_requests(stack):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with another_api(stack, "api-browser-only", f"127.0.0.1:{port}", IMGPIPE_API_TOKEN="",
                     IMGPIPE_UPLOAD_TOKEN_SECRET=SECRET) as process:
        serving(stack, process, "api-browser-only", url)
        token = {"Authorization": "Bearer " + mint(SECRET, "visitor", int(time.time()) + 600)}
        created = requests.post(f"{url}/uploads", json=NEW_UPLOAD, headers=token, timeout=10)
        assert created.status_code == 201
        upload_id = created.json()["id"]
        assert requests.get(f"{url}/uploads/{upload_id}/status", headers=token, timeout=10).status_code == 200
        for method, path in (("POST", "/uploads"), ("GET", "/uploads"), ("GET", f"/uploads/{upload_id}/status"),
                             ("DELETE", f"/uploads/{upload_id}"), ("GET", "/"), ("GET", "/rq/")):
            answer = requests.request(method, url + path, json=NEW_UPLOAD if method == "POST" else None, timeout=10)
            assert_refused(answer, 401, "unauthorized")
        assert requests.get(f"{url}/uploads/{upload_id}/status", headers=token, timeout=10).json()["status"] == "pending"


def test_an_api_listening_beyond_loopback_without_a_token_refuses_to_start(stack):
    bind = f"0.0.0.0:{free_port()}"
    with another_api(stack, "api-exposed", bind, IMGPIPE_API_TOKEN="") as process:
        assert eventually(lambda: process.poll() is not None, 30, "gunicorn to refuse to start") and process.returncode != 0
    log = stack.path("log", "api-exposed.log").read_text()
    assert f"refusing to start: the API would listen on {bind} without IMGPIPE_API_TOKEN" in log
    assert "Listening at" not in log


@pytest.mark.parametrize("consent", ["yes", "true", "1"])
def test_the_opt_out_takes_only_its_own_words(stack, consent):
    port = free_port()
    with another_api(stack, "api-consent", f"127.0.0.1:{port}", IMGPIPE_API_TOKEN="",
                     IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK=consent) as process:
        eventually(lambda: process.poll() is not None, 30, "gunicorn to refuse the setting")
    assert "IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK is either unset or 'yes-i-understand'" in \
        stack.path("log", "api-consent.log").read_text()


def test_the_opt_out_opens_the_api_and_says_so_at_every_start(stack):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = stack.path("log", "api-trusted.log")
    log.unlink(missing_ok=True)
    for start in (1, 2):
        with another_api(stack, "api-trusted", f"127.0.0.1:{port}", IMGPIPE_API_TOKEN="",
                         IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK="yes-i-understand") as process:
            serving(stack, process, "api-trusted", url)
            assert requests.get(f"{url}/uploads", timeout=10).status_code == 200
            # Open, but still not to another site's page or another host name.
            assert_refused(requests.post(f"{url}/uploads", json=NEW_UPLOAD, headers={"Origin": ATTACKER}, timeout=10),
                           403, "cross_site")
            assert_refused(requests.get(f"{url}/uploads", headers={"Host": "rebind.attacker.example"}, timeout=10),
                           400, "unknown_host")
        assert log.read_text().count("IMGPIPE_INSECURE_NO_AUTH_ON_TRUSTED_NETWORK is set") == start


def test_the_owners_browser_still_works_the_dashboard_after_the_login_link(browser, stack):
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(stack.login_link())
        with page.expect_response(lambda answer: answer.url.endswith("/rq/0/data/queues.json")) as queues:
            assert page.goto(f"{stack.api_url}/rq/").status == 200
        assert queues.value.status == 200  # what the dashboard's script reads its tables from
        # What the dashboard's own buttons send (jQuery's $.post), from its own page: the browser
        # supplies the cookie, Origin and Sec-Fetch-Site itself.
        posted = page.evaluate("fetch('/rq/requeue/outsider-probe', {method: 'POST'}).then(r => r.status)")
        fetched = page.evaluate("fetch('/rq/requeue/outsider-probe').then(r => r.status)")
        assert (posted, fetched) == (200, 405)
    finally:
        context.close()
