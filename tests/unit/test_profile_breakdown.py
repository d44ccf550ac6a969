"""How the profilers' samples are sorted. bench.profile_worker's (py-spy): the part nearest the leaf
wins, waits are counted apart from CPU, idle threads and the worker's start-up are kept out of the
jobs' share. bench.profile_minio's (perf): kernel time goes by the system call it serves, MinIO's
own by the part nearest the leaf."""

from __future__ import annotations

from bench import profile_minio
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


def perf_block(*frames: str) -> str:
    """One sample as `perf script -F ip,sym,dso` prints it: a header line, then a frame per line, leaf first."""
    lines = [f"\t{index:x} {frame}" for index, frame in enumerate(frames)]
    return "\n" + "\n".join(lines) + "\n\n"


KERNEL, MINIO_BINARY = "([kernel.kallsyms])", "(/work/.tools/bin/minio)"


def test_minio_kernel_time_goes_by_the_system_call_it_serves():
    made_a_directory = [(f"{name} {KERNEL}") for name in ("find_inode_bit", "ext4_mkdir", "__x64_sys_mkdirat",
                                                         "do_syscall_64")]
    script = (perf_block(*made_a_directory, f"syscall.Mkdirat {MINIO_BINARY}",
                         f"github.com/minio/minio/cmd.(*xlStorage).RenameData {MINIO_BINARY}")
              + perf_block(f"do_nanosleep {KERNEL}", f"__x64_sys_nanosleep {KERNEL}", f"runtime.usleep {MINIO_BINARY}",
                           f"runtime.sysmon {MINIO_BINARY}")
              + perf_block(f"asm_sysvec_apic_timer_interrupt {KERNEL}"))
    assert profile_minio.samples(script) == {
        "kernel: making and removing files and directories": 1,
        "kernel: threads sleeping and waking (futex, nanosleep, epoll)": 1,
        profile_minio.KERNEL_OTHER: 1,
    }


def test_minio_user_time_goes_to_the_part_nearest_the_leaf():
    handler = f"github.com/minio/minio/cmd.objectAPIHandlers.PutObjectHandler {MINIO_BINARY}"
    script = (perf_block(f"crypto/md5.block.abi0 {MINIO_BINARY}", f"crypto/md5.(*digest).Write {MINIO_BINARY}", handler)
              + perf_block(f"regexp.(*Regexp).doOnePass {MINIO_BINARY}",
                           f"github.com/minio/mux.(*routeRegexp).Match {MINIO_BINARY}", handler)
              + perf_block(f"runtime.scanobject {MINIO_BINARY}", f"runtime.gcDrain {MINIO_BINARY}",
                           f"runtime.gcBgMarkWorker {MINIO_BINARY}")
              + perf_block(f"net/textproto.CanonicalMIMEHeaderKey {MINIO_BINARY}", handler)
              + perf_block(f"sort.Strings {MINIO_BINARY}"))
    assert profile_minio.samples(script) == {
        "hashing (MD5 for the ETag, SHA-256 of signed payloads, bitrot)": 1,
        "request routing (minio/mux, its regular expressions)": 1,
        "Go runtime: allocation and garbage collection": 1,
        "S3 handlers and HTTP": 1,
        profile_minio.OTHER: 1,
    }
