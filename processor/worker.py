"""Running RQ workers: jobs in a warm process, and a supervisor that replaces it when it dies.

Jobs run in the worker process itself (RQ's SimpleWorker): its imports, database connection,
storage client and threads are made once, not once per job in a fresh fork, which is about
half of a 1 MP picture's cost (BENCHMARKS.md). What a fork per job gave, a disposable process
for each job, the supervisor gives back: `imgpipe worker` runs the worker in a child process,
and when that child dies without being asked to (SIGKILL, the OOM killer, a crash in a
decoder) it re-drives the job the child held at once and starts a new child. The attempt count
on the row bounds how often one upload can take a worker down.

The child runs under a memory cap (IMGPIPE_JOB_MEMORY_MB, its address space, RLIMIT_AS): a
picture within the pixel limit whose processing would need more gets MemoryError, its upload
ends failed/out_of_memory, and the worker goes on with the next one, instead of the kernel's
OOM killer choosing a process to end (perhaps the database's).

The same supervisor starts a new worker when one quits because Redis dropped, so a Redis
restart never leaves the queue without a consumer. When it starts, it also re-drives the jobs
of this host's workers that died together with their supervisor (a power loss).

Whoever can write to Redis can put a job there, so a worker trusts none: it runs a job only
when it names one of imgpipe's job functions (JOB_FUNCTIONS) with JSON arguments and asks for
nothing else (no callbacks, no RQ webhooks, no method of an object). Any other job is failed
and logged before anything it names is imported.

A worker makes the derivatives of the presets its own IMGPIPE_PRESETS file names, and an upload
may ask for any preset the API's file names. So before it takes a job, a worker compares its
presets' version with the one the API records in Redis (imgpipe.queues.presets_version_key; the
API writes it at start and at every /healthz), waiting while none is recorded, and refuses to
start on another: across hosts, Redis is the one place both see.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import resource
import signal
import socket
import sys
import time
from datetime import datetime, timezone

import redis
from rq import SimpleWorker, Worker
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.utils import now

from imgpipe.processes import die_with_parent, process_stat, started_at
from imgpipe.queues import (SERIALIZER, fetch_job, make_queue, make_reprocess_queue, make_webhook_queue,
                            presets_version_key)
from imgpipe.redis_connection import redis_client
from imgpipe.settings import Settings
from processor.imaging import prepare_process
from processor.jobs import (DELIVER_CALLBACK, PROCESS_UPLOAD, REPROCESS_UPLOAD, delivery_job_id, enqueue_delivery,
                            enqueue_processing, enqueue_reprocess, job_id_for, reprocess_job_id)
from processor.moderation import ModelUnavailable
from processor.resources import moderator, use_settings

log = logging.getLogger(__name__)
RESTART_DELAY = 1.0
HEARTBEAT_REPEAT_SECONDS = 5.0  # against RQ's worker lifetimes of 180 s and more
SUSPENSION_CHECK_SECONDS = 1.0
PRESETS_POLL_SECONDS = 1.0  # while no API has recorded its presets yet
# A worker configured to do what this install cannot (sysexits' EX_CONFIG): starting it again would not help.
EXIT_CANNOT_START = 78
# The only functions a worker runs: those imgpipe enqueues.
JOB_FUNCTIONS = frozenset({PROCESS_UPLOAD, DELIVER_CALLBACK, REPROCESS_UPLOAD})


class ImgpipeJob(Job):
    """A job as a worker reads it from Redis: run only if `refusal()` finds nothing wrong.

    imgpipe's jobs carry no callbacks and no RQ webhooks, so none is ever resolved or sent,
    whichever path of RQ's would (a failure, RQ's clean-up of an abandoned job)."""

    def refusal(self) -> str | None:
        """Why this job must not run, or None for one of imgpipe's own."""
        try:
            name, instance = self.func_name, self.instance
        except DeserializationError:
            return "its payload is not JSON (pickled by an earlier imgpipe, or not one of imgpipe's)"
        if name not in JOB_FUNCTIONS:
            return f"it names {name!r}, which is not one of imgpipe's job functions"
        if instance is not None:
            return "it names a method of an object"
        if self._success_callback_name or self._failure_callback_name or self._stopped_callback_name:
            return "it asks for callbacks"
        if self.webhooks:
            return "it asks for RQ webhooks"
        return None

    @property
    def func(self):
        refusal = self.refusal()
        if refusal is not None:
            raise JobRefused(refusal)
        return super().func

    @property
    def success_callback(self):
        return None

    @property
    def failure_callback(self):
        return None

    @property
    def stopped_callback(self):
        return None

    def send_webhooks(self, status, *, exc_string=None) -> None:
        return None


class JobRefused(Exception):
    """A job that is not one of imgpipe's: it is failed, never run."""


class ImagesWorker(SimpleWorker):
    """An RQ worker that runs imgpipe's jobs in its own process, refuses any other, and
    remembers whether it was asked to stop (SIGTERM/SIGINT).

    Around each job RQ writes the worker's heartbeat (a HSET and two EXPIREs, a round trip each)
    three times with the same lifetime within a millisecond, and its idle state twice: of the 20
    round trips to Redis a job took, 9 were repeats (docs/design/cost-per-image.md). A heartbeat that
    repeats the last one's lifetime within HEARTBEAT_REPEAT_SECONDS, and a state the worker
    already recorded, are not sent again: the worker's key expires at most that much sooner than
    RQ asked, and a heartbeat with another lifetime (the job's, when one starts) always goes.
    Nor does a job get a heartbeat as it ends (it keeps a job alive while its callbacks run, and
    imgpipe's have none), and `rq suspend` is looked for once a second, not before every job."""

    job_class = ImgpipeJob
    stop_was_requested = False
    _last_heartbeat: tuple[int | None, float] | None = None  # (the lifetime asked, when it was sent)
    _recorded_state: str | None = None
    _suspension_checked = float("-inf")

    def heartbeat(self, timeout: int | None = None, pipeline=None):
        sent = time.monotonic()
        last = self._last_heartbeat
        if last is not None and last[0] == timeout and sent - last[1] < HEARTBEAT_REPEAT_SECONDS:
            return
        super().heartbeat(timeout, pipeline)
        self._last_heartbeat = (timeout, sent)

    def set_state(self, state: str, pipeline=None):
        if pipeline is None and state == self._recorded_state:
            return
        super().set_state(state, pipeline)
        self._recorded_state = state

    def handle_execution_ended(self, job: Job, queue, heartbeat_ttl: int):
        job.ended_at = now()

    def check_for_suspension(self, burst: bool):
        if time.monotonic() - self._suspension_checked < SUSPENSION_CHECK_SECONDS:
            return
        super().check_for_suspension(burst)
        self._suspension_checked = time.monotonic()

    def request_stop(self, signum, frame):
        self.stop_was_requested = True
        super().request_stop(signum, frame)

    def perform_job(self, job: ImgpipeJob, queue, execution) -> bool:
        refusal = job.refusal()
        if refusal is None:
            return super().perform_job(job, queue, execution)
        log.error("refused job %s on queue %s: %s; failed without running it", job.id, queue.name, refusal)
        job.retries_left = None  # a refused job is not tried again
        self.handle_job_failure(job, queue, exc_string=f"JobRefused: {refusal}", execution=execution)
        return False


def run_worker(settings: Settings, *, name: str, burst: bool = False) -> None:
    """Work the queues in this process until asked to stop. A worker that stops unasked (RQ's
    worker quits when Redis drops mid-job: it cannot record the job's end) exits non-zero,
    and the supervisor starts a new one. The moderation model is loaded first: a worker that
    cannot load it says why and exits EXIT_CANNOT_START before taking any job."""
    prepare_process()
    use_settings(settings)
    try:
        moderator(settings)
    except ModelUnavailable as unavailable:
        log.error("the worker cannot start: %s", unavailable)
        sys.exit(EXIT_CANNOT_START)
    connection = redis_client(settings, "worker")
    # In priority order: images, then webhooks, then reprocessing.
    queues = [make(connection, settings, job_class=ImgpipeJob)
              for make in (make_queue, make_webhook_queue, make_reprocess_queue)]
    worker = None
    try:
        refusal = presets_refusal(connection, settings)
        if refusal:
            log.error("the worker cannot start: %s", refusal)
            sys.exit(EXIT_CANNOT_START)
        worker = ImagesWorker(queues, connection=connection, name=name, maintenance_interval=30, serializer=SERIALIZER)
        # RQ's own lines at WARNING unless LOG_LEVEL=debug: per job it logs three at INFO that
        # say what the job's own "upload …: completed" line says, on the worker's time.
        rq_level = "DEBUG" if settings.log_level.upper() == "DEBUG" else "WARNING"
        worker.work(burst=burst, with_scheduler=True, logging_level=rq_level)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        log.warning("worker lost Redis: %s", error)
    if not (burst or (worker is not None and worker.stop_was_requested)):
        sys.exit(1)


def presets_refusal(connection: redis.Redis, settings: Settings) -> str | None:
    """Why this worker must not run with its presets (None: they are the API's), once an API has
    recorded its own: a worker lacking a preset the API accepts would leave that preset unmade."""
    key = presets_version_key(settings)
    waiting = False
    while (recorded := connection.get(key)) is None:
        if not waiting:
            log.warning("waiting for the API to record its presets in Redis (%s) before taking jobs", key)
            waiting = True
        time.sleep(PRESETS_POLL_SECONDS)
    ours = settings.derivative_presets
    if recorded.decode() == ours.version:
        return None
    return (f"its presets ({ours.source}, version {ours.version}) are not the API's (version {recorded.decode()},"
            f" recorded in Redis at {key}): give the API and every worker the same IMGPIPE_PRESETS file,"
            " and start the API first when it changes")


def supervise(settings: Settings, *, burst: bool = False) -> None:
    """Run the worker in a child process until asked to stop, replacing a child that dies."""
    stopping = False
    child: multiprocessing.Process | None = None

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    prepare_process()  # here, so that every worker process it forks starts set up
    recover_jobs_of_dead_workers(settings)
    prefix = f"{socket.gethostname()}.{os.getpid()}"
    for generation in itertools.count():
        name = f"{prefix}.{generation}"
        child = multiprocessing.get_context("fork").Process(
            target=_run_child, args=(settings, burst, name, os.getpid()), name="imgpipe-worker")
        child.start()
        child.join()
        if stopping or child.exitcode == 0:
            return
        if child.exitcode == EXIT_CANNOT_START:
            log.error("not starting the worker again: it cannot start as configured (the reason is above)")
            sys.exit(EXIT_CANNOT_START)
        log.warning("worker process %s ended unasked (%s); re-driving its job and starting a new one",
                    child.pid, _how_it_ended(child.exitcode))
        recover_jobs_of(settings, name)
        time.sleep(RESTART_DELAY)


def _run_child(settings: Settings, burst: bool, name: str, parent_pid: int) -> None:
    """The worker process: in its own process group, so a signal meant for the supervisor's
    group reaches it once (forwarded), and killed with the supervisor if that dies.

    What it forks in turn (RQ's scheduler) is killed with it too. Left behind, a scheduler
    keeps the scheduler locks and, inherited across the fork, the dead worker's Redis socket,
    on which a BLPOP may still wait: Redis would hand that BLPOP the next job, to no one."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.setpgid(0, 0)
    if not die_with_parent(parent_pid):
        return
    worker_pid = os.getpid()
    os.register_at_fork(after_in_child=lambda: die_with_parent(worker_pid) or os._exit(0))
    cap_memory(settings.job_memory_mb)
    run_worker(settings, burst=burst, name=name)


def cap_memory(megabytes: int) -> None:
    """Limit this process's address space (and what it forks) to `megabytes`; 0: no cap.

    Address space, not resident memory: it is what the kernel can refuse at the moment of the
    allocation, so Python sees MemoryError rather than a kill. It counts the moderation model,
    the libraries and every thread's stack, so the default leaves room for all of them plus a
    picture at the default pixel limit (measured: README, "Memory")."""
    if megabytes <= 0:
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = megabytes * 2**20
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    log.info("worker memory cap: %s MB of address space (IMGPIPE_JOB_MEMORY_MB)", cap // 2**20)


def recover_jobs_of(settings: Settings, name: str) -> None:
    """Re-drive the job the dead worker `name` was running and remove its registration. The
    row's state decides what a re-driven job does, and its attempt count how many such deaths
    one upload may cause."""
    try:
        connection = redis_client(settings, "supervisor")
        for worker in Worker.all(connection=connection, serializer=SERIALIZER):
            if worker.name == name:
                job_id = worker.get_current_job_id()
                if job_id:
                    _redrive(connection, settings, fetch_job(connection, job_id, ImgpipeJob))
                worker.register_death()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        log.warning("could not re-drive the dead worker's job, Redis is unreachable (%s);"
                    " the relay's sweep will once it is back", error)
    except Exception:  # the supervisor outlives whatever goes wrong here; the relay's sweep is the net
        log.exception("could not re-drive the dead worker's job; the relay's sweep or RQ's abandoned-job cleanup will, later")


def recover_jobs_of_dead_workers(settings: Settings) -> None:
    """Re-drive the jobs of this host's workers that died with their supervisor (a power loss,
    the whole group SIGKILLed). Redis keeps its data across such a loss, so their jobs still
    look started, and would wait for the relay's processing deadline; a supervisor starting
    on the same host knows at once that those processes are gone."""
    try:
        connection = redis_client(settings, "supervisor")
        dead = [worker.name for worker in Worker.all(connection=connection, serializer=SERIALIZER)
                if worker.hostname == socket.gethostname() and not still_running(worker.pid, worker.birth_date)]
    except (redis.ConnectionError, redis.TimeoutError) as error:
        log.warning("could not look for workers that died with this host (%s); the relay's sweep will", error)
        return
    for name in dead:
        log.warning("worker %s of this host is gone; re-driving its job", name)
        recover_jobs_of(settings, name)


def still_running(pid: int | None, born: datetime | None) -> bool:
    """Whether the process that registered as a worker at `born` still runs as `pid`: a process
    with that pid that started later is another one (pids are reused, and start low again
    after a reboot)."""
    if pid is None or born is None:
        return True
    try:
        stat = process_stat(pid)
        if stat.exited:  # killed, not yet reaped: its pid and start time linger
            return False
        return started_at(stat) <= born.timestamp() + 1
    except (OSError, StopIteration, ValueError, IndexError):
        return False


def _redrive(connection: redis.Redis, settings: Settings, job: ImgpipeJob) -> None:
    """Replace the job of a worker known to be dead: whatever it started until now was its own.

    The upload comes from the job's id, so a job this version cannot read (pickled by an
    earlier one) is replaced too; a reprocess job also needs its arguments."""
    upload_id = job.id.partition("-")[2]
    now = datetime.now(timezone.utc)
    if job.id == job_id_for(upload_id):
        enqueue_processing(make_queue(connection, settings), upload_id, started_before=now)
        log.info("upload %s: processing job re-driven after its worker died", upload_id)
    elif job.id == delivery_job_id(upload_id):
        enqueue_delivery(make_webhook_queue(connection, settings), settings, upload_id, started_before=now)
        log.info("upload %s: webhook job re-driven after its worker died", upload_id)
    elif job.id == reprocess_job_id(upload_id) and job.refusal() is None:
        enqueue_reprocess(make_reprocess_queue(connection, settings), *job.args, started_before=now)
        log.info("upload %s: reprocess job re-driven after its worker died", upload_id)


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"signal {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"
