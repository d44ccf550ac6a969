"""Redis down at the moment an upload becomes final: its webhook cannot be enqueued then, and
the relay's sweep asks for it again once Redis is back, so the receiver still hears of it."""

from __future__ import annotations

import json

from pipeline_client import Api, make_jpegs, put_file
from polling import eventually
from processor.resources import use_settings
from processor.tasks import process_upload
from webhook_receiver import webhook_receiver


def test_a_webhook_whose_job_was_lost_is_still_delivered(stack_with, tmp_path):
    stack = stack_with(webhook_allow_hosts="127.0.0.1", webhook_ports="*")
    api = Api.of(stack)
    [photo] = make_jpegs(tmp_path / "in", 1)
    with webhook_receiver() as receiver:
        stack.stop_process("worker")
        stack.stop_process("relay")
        created = api.create_for(photo, callback_url=f"{receiver.url}/hook")
        put_file(created["upload"], photo)
        stack.stop_process("redis")

        # The job's own code, run here while Redis is down: the row becomes final, the
        # webhook's enqueue fails and is only logged.
        use_settings(stack.settings)
        assert process_upload(created["id"]) == "completed"
        assert api.get(f"/uploads/{created['id']}").json()["callback"]["state"] == "pending"

        stack.start_redis()
        stack.start_relay()
        stack.start_worker()
        [received] = receiver.wait_for(1, timeout=30)

    assert json.loads(received.body)["id"] == created["id"]
    assert json.loads(received.body)["status"] == "completed"
    # The worker records the delivery after the receiver has answered it, so the record can
    # still say "pending" at the moment the receiver holds the request.
    eventually(lambda: api.get(f"/uploads/{created['id']}").json()["callback"]["state"] == "delivered", 10,
               "the delivery to be recorded")
