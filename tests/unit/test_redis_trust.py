"""The pure parts of Redis as a trusted boundary: where the password comes from and goes, the
clients' timeouts, and which job functions a worker may run."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest
from rq.defaults import DEFAULT_WORKER_TTL
from rq.utils import import_attribute

from cli.stack import Stack, StackError, is_loopback, redis_auth_config
from imgpipe.redis_connection import USES, WORKER_BLOCK_SECONDS, redis_client
from imgpipe.settings import Settings
from notify_config.definition import minio_server_env
from processor import jobs
from processor.relay import Relay
from processor.worker import JOB_FUNCTIONS, ImagesWorker


def test_the_password_and_user_come_from_redis_url_decoded():
    settings = Settings(redis_url="redis://:p%40ss%3Aword@10.0.0.5:6380/1")
    assert (settings.redis_username, settings.redis_password, settings.redis_host, settings.redis_address) == (
        "", "p@ss:word", "10.0.0.5", "10.0.0.5:6380")
    assert Settings(redis_url="redis://imgpipe:secret@cache/0").redis_username == "imgpipe"
    assert Settings().redis_password == ""


@pytest.mark.parametrize("use", sorted(USES))
def test_every_client_carries_the_password_and_its_use_s_timeouts(use):
    client = redis_client(Settings(redis_url="redis://:s3cret@127.0.0.1:6390/2"), use)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["password"], kwargs["port"], kwargs["db"]) == ("s3cret", 6390, 2)
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"], kwargs["health_check_interval"]) == (
        USES[use].reply, USES[use].connect, USES[use].health_check)


def test_a_blocking_pop_waits_for_its_reply_longer_than_it_blocks():
    """Else a quiet queue times the client out, and the process takes it for a lost Redis."""
    # RQ's own formula, on a worker as run_worker makes one (RQ's default worker_ttl)
    ttl = SimpleNamespace(worker_ttl=DEFAULT_WORKER_TTL)
    assert ImagesWorker.dequeue_timeout.fget(ttl) == WORKER_BLOCK_SECONDS
    assert USES["worker"].reply >= ImagesWorker.connection_timeout.fget(SimpleNamespace(dequeue_timeout=WORKER_BLOCK_SECONDS))
    relay_block = inspect.signature(Relay.relay_one).parameters["block_seconds"].default
    assert USES["relay"].reply > relay_block


def test_redis_is_told_the_password_or_the_acl_user():
    assert redis_auth_config("", "") == ""
    assert redis_auth_config("", 'a"b\\c') == 'requirepass "a\\"b\\\\c"\n'
    assert redis_auth_config("default", "x") == 'requirepass "x"\n'
    assert redis_auth_config("imgpipe", "x") == 'user default off\nuser "imgpipe" on ">x" ~* &* +@all\n'


def test_minio_s_notification_target_logs_in_as_the_processes_do():
    env = minio_server_env("127.0.0.1:6379", "events", "pw", redis_user="imgpipe")
    assert (env["MINIO_NOTIFY_REDIS_PASSWORD_PRIMARY"], env["MINIO_NOTIFY_REDIS_USER_PRIMARY"]) == ("pw", "imgpipe")
    assert not any("PASSWORD" in name or "USER" in name for name in minio_server_env("127.0.0.1:6379", "events"))


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("[::1]", True), ("127.0.0.2", True), ("0.0.0.0", False),
                                            ("10.1.2.3", False), ("redis", False)])
def test_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_the_local_stack_refuses_redis_off_loopback_without_a_password(tmp_path):
    stack = Stack(Settings(redis_url="redis://0.0.0.0:6399/0"), tmp_path)
    with pytest.raises(StackError, match="without a password"):
        stack.start_redis()
    assert not stack.processes and not (tmp_path / "redis").exists()


def test_the_allow_list_is_exactly_the_functions_imgpipe_enqueues():
    assert JOB_FUNCTIONS == {jobs.PROCESS_UPLOAD, jobs.DELIVER_CALLBACK, jobs.REPROCESS_UPLOAD}
    for name in JOB_FUNCTIONS:
        function = import_attribute(name)
        assert inspect.isfunction(function) and f"{function.__module__}.{function.__name__}" == name
