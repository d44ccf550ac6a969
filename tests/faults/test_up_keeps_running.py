"""`imgpipe up` keeps its stack running: a process killed under it is started again after a
delay that grows while it keeps dying, with a log line that says so; `imgpipe down` and Ctrl-C
still stop every process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from cli import credentials
from cli.stack import PROJECT_ROOT, free_port
from imgpipe.processes import is_running
from pipeline_client import Api, make_jpegs, put_file
from polling import eventually
from stacks import ensure_servers, process_tree


class Up:
    """`imgpipe up` in the foreground on free ports, its output in a file."""

    def __init__(self, var_dir: Path):
        ensure_servers()
        self.var_dir = var_dir
        self.api_url = f"http://127.0.0.1:{free_port()}"
        env = {name: value for name, value in os.environ.items() if not name.startswith(("IMGPIPE_", "S3_", "DATABASE_"))}
        env.update(S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                   PYTHONUNBUFFERED="1")
        self.output = var_dir.parent / "up.out"
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "up", "--var-dir", str(var_dir),
                 "--port", self.api_url.rsplit(":", 1)[1], "--console-port", str(free_port())],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=PROJECT_ROOT,
                start_new_session=True)
        eventually(lambda: "Press Ctrl-C to stop." in self.text() or self.process.poll() is not None, 120,
                 "imgpipe up to say it is up")
        assert self.process.poll() is None, self.text()

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def pid(self, name: str) -> int | None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int((self.var_dir / "run" / f"{name}.pid").read_text())
        return None

    def stack_pids(self) -> list[int]:
        return [int(path.read_text()) for path in (self.var_dir / "run").glob("*.pid") if path.stem != "up"]

    def kill(self, name: str) -> int:
        pid = self.pid(name)
        os.killpg(pid, signal.SIGKILL)
        return pid

    def came_back(self, name: str, old_pid: int) -> int:
        return eventually(lambda: (pid := self.pid(name)) not in (None, old_pid) and is_running(pid) and pid, 30,
                        f"{name} to come back")

    def remove(self) -> None:
        """Whatever a failed test left running goes."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in self.stack_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def test_a_killed_process_is_started_again_with_a_growing_delay_and_down_stops_all(tmp_path):
    up = Up(tmp_path / "var")
    try:
        relay = up.kill("relay")
        relay = up.came_back("relay", relay)
        up.kill("relay")
        up.came_back("relay", relay)
        # The supervisor, the process running jobs, RQ's scheduler: on a busy machine the last
        # two may still be starting.
        old_worker = eventually(lambda: len(tree := process_tree(up.pid("worker"))) >= 3 and tree, 30,
                                "the worker's three processes")
        up.kill("worker")
        up.came_back("worker", old_worker[0])
        eventually(lambda: not any(is_running(pid) for pid in old_worker), 10, "the killed worker's processes to end")

        api = Api(up.api_url, credentials.read(up.var_dir / credentials.FILE_NAME)["IMGPIPE_API_TOKEN"])
        [photo] = make_jpegs(tmp_path / "in", 1)
        created = api.create_for(photo)
        put_file(created["upload"], photo)
        assert api.wait_final(created["id"], timeout=30)["status"] == "completed"

        running = up.stack_pids()
        assert len(running) == 5 and all(is_running(pid) for pid in running)
        down = subprocess.run([sys.executable, "-m", "cli.main", "down", "--var-dir", str(up.var_dir)],
                              capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
        assert down.returncode == 0, down.stderr
        assert up.process.wait(30) == 0
        output = up.text()
    finally:
        up.remove()

    assert "relay exited unasked (signal SIGKILL); starting it again in 1 s (restart 1" in output
    assert "relay exited unasked (signal SIGKILL); starting it again in 2 s (restart 2" in output
    assert "worker exited unasked (signal SIGKILL); starting it again in 1 s (restart 1" in output
    assert "Stopped." in output
    assert not [pid for pid in running if is_running(pid)]
    assert not list((up.var_dir / "run").glob("*.pid"))


def test_ctrl_c_stops_every_process(tmp_path):
    up = Up(tmp_path / "var")
    try:
        running = up.stack_pids()
        os.kill(up.process.pid, signal.SIGINT)
        up.process.wait(30)
    finally:
        up.remove()

    assert len(running) == 5
    assert not [pid for pid in running if is_running(pid)]
    assert "Stopped." in up.text()
