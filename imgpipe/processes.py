"""What Linux tells about a process, read in one place: /proc/<pid>/stat and /proc/<pid>/status,
and the parent-death signal a child asks for so that it never outlives the process that started it.

/proc/<pid>/stat is one line whose second field, the command name in parentheses, may itself
hold spaces and parentheses: the fields after it are found from the last ")" (proc(5)).
"""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GONE_STATES = ("Z", "X")  # exited (a zombie until reaped) or being torn down


@dataclass(frozen=True)
class ProcessStat:
    """The fields of /proc/<pid>/stat that imgpipe reads; times in clock ticks."""

    state: str
    ppid: int
    pgrp: int
    session: int
    utime: int
    stime: int
    cutime: int  # of the children it has reaped
    cstime: int
    starttime: int  # after boot

    @property
    def exited(self) -> bool:
        return self.state in GONE_STATES

    @property
    def cpu_seconds(self) -> float:
        """User and system time of the process itself."""
        return (self.utime + self.stime) / os.sysconf("SC_CLK_TCK")

    @property
    def cpu_seconds_with_children(self) -> float:
        """Its own and that of the children it has reaped (a forking worker's jobs)."""
        return (self.utime + self.stime + self.cutime + self.cstime) / os.sysconf("SC_CLK_TCK")


def process_stat(pid: int) -> ProcessStat:
    """pid's /proc/<pid>/stat; OSError when there is no such process."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    state, ppid, pgrp, session = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcessStat(state, ppid, pgrp, session, utime, stime, cutime, cstime, starttime=int(fields[19]))


def memory_kib(pid: int | str = "self") -> dict[str, int]:
    """The memory lines of /proc/<pid>/status in KiB (VmRSS, VmHWM the peak resident size, VmSize,
    the other Vm* ones); OSError when there is no such process."""
    with open(f"/proc/{pid}/status") as status:
        return {name: int(value.split()[0]) for name, value in (line.split(":", 1) for line in status)
                if name.startswith("Vm")}


def is_running(pid: int) -> bool:
    """Whether pid is a process that has not exited (a zombie has)."""
    try:
        return not process_stat(pid).exited
    except OSError:
        return False


def started_at(stat: ProcessStat) -> float:
    """When the process started, in seconds since the epoch."""
    with open("/proc/stat") as system:
        boot = next(int(line.split()[1]) for line in system if line.startswith("btime"))
    return boot + stat.starttime / os.sysconf("SC_CLK_TCK")


def die_with_parent(parent_pid: int) -> bool:
    """Have this process SIGKILLed when its parent dies; False when the parent is already gone
    (it died before the request was made, so no signal will come)."""
    prctl = getattr(ctypes.CDLL(None), "prctl", None)  # Linux; elsewhere a child may outlive a killed parent
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    return os.getppid() == parent_pid
