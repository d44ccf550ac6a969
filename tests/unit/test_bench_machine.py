"""What the benchmark records of the machine besides the CPU: the filesystem its stacks keep
MinIO's drive on, read from /proc/self/mountinfo (and, for ext4, whether it keeps a journal)."""

from __future__ import annotations

import os

from bench.report import filesystem_of


def mounted_type(path) -> str:
    device = os.stat(path).st_dev
    with open("/proc/self/mountinfo") as mounts:
        rows = [line.split() for line in mounts]
    return [row[row.index("-") + 1] for row in rows if row[2] == f"{os.major(device)}:{os.minor(device)}"][-1]


def test_the_filesystem_is_the_one_mounted_there(tmp_path):
    assert filesystem_of("/proc") == "proc"
    found = filesystem_of(str(tmp_path))
    if mounted_type(tmp_path) == "ext4":
        assert found in ("ext4 with a journal", "ext4 without a journal")
    else:
        assert found == mounted_type(tmp_path)
