"""What `imgpipe upload` remembers of a file it sends in parts, so that a second run resumes it.

One JSON file per upload under the user's cache folder ($XDG_CACHE_HOME/imgpipe/uploads, else
~/.cache/imgpipe/uploads), named after the API, the file's path, size and modification time: a
file changed since is a new upload. It holds the upload's id, its plan and the ETag of every
part sent, written (atomically) after each part, so a run killed at any moment leaves a state
no older than its last finished part. The store's own list of parts decides what is sent again;
the file only says which upload to ask about. It holds no credential.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from imgpipe.multipart import PartPlan


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imgpipe" / "uploads"


@dataclass
class PartsState:
    api: str
    file: str
    size: int
    mtime_ns: int
    id: str
    key: str
    upload_id: str
    part_size: int
    part_count: int
    parts: dict[str, str] = field(default_factory=dict)  # part number (as text, for JSON) -> ETag

    @property
    def plan(self) -> PartPlan:
        return PartPlan(self.size, self.part_size, self.part_count)


class ResumeCache:
    def __init__(self, directory: Path | None = None):
        self.directory = directory or cache_dir()
        self.lock = threading.Lock()

    def _path(self, api: str, file: str, size: int, mtime_ns: int) -> Path:
        name = f"{api}\n{file}\n{size}\n{mtime_ns}"
        return self.directory / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.json"

    def find(self, api: str, file: Path) -> PartsState | None:
        """The state of an unfinished upload of this very file (as it is now) to this API, if one was kept."""
        try:
            stat = file.stat()
            return PartsState(**json.loads(self._path(api, str(file.resolve()), stat.st_size,
                                                         stat.st_mtime_ns).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def start(self, api: str, file: Path, created: dict) -> PartsState:
        stat = file.stat()
        plan = created["multipart"]
        state = PartsState(api=api, file=str(file.resolve()), size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                           id=created["id"], key=created["key"], upload_id=plan["upload_id"],
                           part_size=plan["part_size"], part_count=plan["part_count"])
        self.save(state)
        return state

    def note_part(self, state: PartsState, number: int, etag: str) -> None:
        """A part landed: noted and written at once (parts land on several threads)."""
        with self.lock:
            state.parts[str(number)] = etag
            self._write(state)

    def save(self, state: PartsState) -> None:
        with self.lock:
            self._write(state)

    def _write(self, state: PartsState) -> None:
        """The state whole: to a file beside it first, then renamed over it."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self._path_of(state)
        temporary = target.with_suffix(f".{threading.get_ident()}.tmp")
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            json.dump(asdict(state), out)
        os.replace(temporary, target)

    def forget(self, state: PartsState) -> None:
        with self.lock:
            self._path_of(state).unlink(missing_ok=True)

    def _path_of(self, state: PartsState) -> Path:
        return self._path(state.api, state.file, state.size, state.mtime_ns)
