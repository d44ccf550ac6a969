"""bench.profile_worker's sorting of py-spy's samples: the part nearest the leaf wins, waits are
counted apart from CPU, idle threads and the worker's start-up are kept out of the jobs' share."""

from __future__ import annotations

from bench.profile_worker import START_UP, breakdown, category

MAIN = "_run_module_as_main (<frozen runpy>:198);drain (bench/profile_worker.py:93)"
JOB = f"{MAIN};BaseWorker.work (rq/worker/base.py:673);SimpleWorker.execute_job (rq/worker/worker_classes.py:289)"


def test_the_frame_nearest_the_leaf_decides():
    logged_by_rq = ["BaseWorker.work (rq/worker/base.py:673)", "Logger.info (logging/__init__.py:1489)"]
    derived = [*logged_by_rq[:1], "make_and_record (processor/tasks.py:97)", "resize (processor/imaging/derive.py:40)",
               "Image.resize (PIL/Image.py:2440)"]
    assert category(logged_by_rq) == "logging"
    assert category(derived) == "derivation (make_derivatives)"
    assert category(["Thread._bootstrap (threading.py:1002)"]).startswith("other")


def test_waits_idle_threads_and_start_up_are_apart(tmp_path):
    collapsed = tmp_path / "worker.collapsed.txt"
    collapsed.write_text("\n".join([
        f"{JOB};Storage.fetch (imgpipe/storage.py:230);HTTPConnection.send (http/client.py:1000) 7",
        f"{JOB};Storage.fetch (imgpipe/storage.py:230);SocketIO.readinto (socket.py:706) 5",
        f"{JOB};Redis.execute_command (redis/client.py:600) 3",
        "Thread._bootstrap (threading.py:1002);_worker (concurrent/futures/thread.py:81) 100",
        f"{MAIN};import_module (importlib/__init__.py:126) 11",
    ]) + "\n")
    cpu, waiting = breakdown(collapsed)
    assert cpu == {START_UP: 11, "storage client (minio-py, urllib3)": 7, "RQ bookkeeping (rq, redis-py)": 3}
    assert waiting == {"storage client (minio-py, urllib3)": 5}
