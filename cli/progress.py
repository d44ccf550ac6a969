"""Progress for several files at once, one bar per file on stderr (or one bar counting items).

Uploads run in threads, so bars cannot each own the cursor the way click.progressbar does.
On a terminal all bars are redrawn together in place; anywhere else (a pipe, a log file)
only one line per file is written, when its upload ends.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

WIDTH = 30
LABEL = 28
REDRAW_EVERY = 0.1


def human_bytes(count: float) -> str:
    if count < 1024:
        return f"{count:.0f} B"
    for unit in ("KB", "MB"):
        count /= 1024
        if count < 1024:
            return f"{count:.1f} {unit}"
    return f"{count / 1024:.1f} GB"


class ProgressBoard:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.lock = threading.Lock()
        self.rows: list[dict] = []
        self.lines_on_screen = 0
        self.last_draw = 0.0

    def add(self, label: str, total: int, *, counting: bool = False) -> int:
        """A new bar of `total` bytes (or, `counting`, of `total` items); returns its row."""
        with self.lock:
            self.rows.append({"label": label, "sent": 0, "total": total, "note": "", "counting": counting})
            self._draw(force=True)
            return len(self.rows) - 1

    def advance(self, row: int, sent: int) -> None:
        with self.lock:
            self.rows[row]["sent"] += sent
            self._draw()

    def note(self, row: int, note: str) -> None:
        """Change what the bar says after its numbers, without ending it."""
        with self.lock:
            self.rows[row]["note"] = note
            self._draw()

    def say(self, text: str) -> None:
        """A line of its own, above the bars (which are drawn again below it)."""
        with self.lock:
            if self.live and self.lines_on_screen:
                self.stream.write(f"\x1b[{self.lines_on_screen}F\x1b[J")
                self.lines_on_screen = 0
            self.stream.write(text + "\n")
            self.stream.flush()
            self._draw(force=True)

    def finish(self, row: int, note: str) -> None:
        with self.lock:
            self.rows[row]["note"] = note
            if self.live:
                self._draw(force=True)
            else:
                self.stream.write(self._line(self.rows[row]) + "\n")
                self.stream.flush()

    def _line(self, row: dict) -> str:
        label = row["label"] if len(row["label"]) <= LABEL else row["label"][:LABEL - 1] + "…"
        fraction = row["sent"] / row["total"] if row["total"] else 1.0
        filled = int(WIDTH * min(fraction, 1.0))
        bar = "#" * filled + "-" * (WIDTH - filled)
        if row["counting"]:
            sizes = f"{row['sent']}/{row['total']}"
        else:
            sizes = f"{human_bytes(row['sent'])}/{human_bytes(row['total'])}"
        return f"{label:<{LABEL}} [{bar}] {fraction:4.0%} {sizes}  {row['note']}".rstrip()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.live or (not force and now - self.last_draw < REDRAW_EVERY):
            return
        self.last_draw = now
        up = f"\x1b[{self.lines_on_screen}F" if self.lines_on_screen else ""
        self.stream.write(up + "".join(f"\x1b[2K{self._line(row)}\n" for row in self.rows))
        self.stream.flush()
        self.lines_on_screen = len(self.rows)
