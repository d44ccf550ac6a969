"""The C heap of a process that makes derivatives: a picture's freed buffers kept for the
next picture, not handed back to the kernel as each one is freed.

By default glibc gives a freed block above its mmap threshold straight back to the kernel and
trims the heap's free top above 128 KiB, so every picture's buffers (the decode, each resize's
passes) come back as fresh pages, faulted in one at a time: about 2,400 faults in each 1 MP
derivation, about 5 ms of its 25. With the mmap threshold fixed at glibc's largest (32 MiB)
those buffers come from the heap, and with a trim threshold of 64 MiB (where glibc's own
adaptive thresholds end up at most) the heap keeps a picture's working set up to about 12 MP
between jobs. What a larger picture used beyond that goes back once it is freed.
"""

from __future__ import annotations

import ctypes

# mallopt(3) parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 64 * 2**20


def keep_freed_buffers() -> bool:
    """Set both thresholds for this process (and what it forks later). False where the C
    library has no mallopt or refuses the values (not glibc): its defaults then stay."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
