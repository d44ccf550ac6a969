"""Waiting in tests for what happens in its own time: asked again and again, never a guessed sleep."""

from __future__ import annotations

import time


def eventually(check, timeout: float = 10.0, what="the condition", interval: float = 0.05):
    """check()'s first true answer, asked every `interval` seconds; an AssertionError naming
    `what` once `timeout` seconds have gone by without one. `what` may be a function, asked
    then, for a message that tells how things stand at that moment."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what() if callable(what) else what}"
        time.sleep(interval)
    return result
