"""What a process that makes derivatives sets up once, at its start: a worker calls
prepare_process() before it takes a job (and before it forks its worker process, when it
supervises one). Importing the image code changes nothing in the process; this does:

* the C heap keeps freed picture buffers for the next picture (processor.imaging.heap);
* Pillow's format plugins are loaded, with the optional decoders registered, so a forked
  worker starts with them rather than importing them all on its first open (about 35 ms);
* a forked child forgets the parent's image threads and their locks (derive.forget_threads_after_fork).
"""

from __future__ import annotations

import os

from processor.imaging import derive, heap
from processor.imaging.loading import readable_accepted_formats

_prepared = False


def prepare_process() -> None:
    """Set the process up for making derivatives; once per process, later calls do nothing."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    heap.keep_freed_buffers()
    readable_accepted_formats()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=derive.forget_threads_after_fork)
