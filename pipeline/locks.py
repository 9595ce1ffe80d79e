"""One run at a time per store: a lock object inside the store.

``pipeline run`` takes the lock before it creates, replaces or resumes a store and releases it
when it ends, whatever the outcome (docs/design.md §5.1).  The lock is a small JSON object
``pipeline.lock`` at the top of the store (zarr ignores it) naming the host, the process and a
run id.  A second run on the same store is refused with that information; a lock left by a
killed run on this host (its process is gone) is stale and taken over.  A lock from another
host cannot be checked from here: the message says which file to delete once that run is gone.

Member tasks carry the run id and check it before they write (:func:`check_owner`): once the
client that started them has given up (the scheduler was lost, the run was interrupted) and
released its lock, a surviving worker stops writing instead of racing the next run.

On object storage there is no atomic create-if-absent here: the lock is written, read back and
compared, which narrows the race to two runs started within the same second.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipeline.store import LOCK_NAME, _filesystem, exists, is_url

__all__ = ["LOCK_NAME", "RunAbandoned", "RunLock", "StoreLocked", "acquire", "check_owner"]


class StoreLocked(FileExistsError):
    """Another run holds the store's lock."""


class RunAbandoned(RuntimeError):
    """The run that started a member task has released the store: the task must not write."""


@dataclass
class RunLock:
    """A held lock: release it (or use it as a context manager) when the run ends."""

    path: str
    run: str
    made_directory: bool  # the store's directory did not exist before: removed on release if still empty

    def release(self) -> None:
        location = _lock_location(self.path)
        try:
            if _read(location).get("run") == self.run:
                _delete(location)
        except OSError:  # pragma: no cover - the store went away under us: nothing left to release
            pass
        if self.made_directory and not is_url(self.path):
            try:
                Path(self.path).rmdir()  # only if empty: a store that was created stays
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _lock_location(path) -> str:
    return str(path).rstrip("/") + "/" + LOCK_NAME


def _read(location: str) -> dict:
    try:
        if is_url(location):
            fs, key = _filesystem(location)
            text = fs.cat_file(key).decode()
        else:
            text = Path(location).read_text()
        return json.loads(text)
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError):  # torn write of a killed run: treat as stale
        return {"stale": True}


def _delete(location: str) -> None:
    if is_url(location):
        fs, key = _filesystem(location)
        fs.rm(key)
    else:
        Path(location).unlink(missing_ok=True)


def _write_exclusive(location: str, record: dict) -> bool:
    data = json.dumps(record).encode()
    if is_url(location):
        fs, key = _filesystem(location)
        if fs.exists(key):
            return False
        fs.pipe(key, data)
        return _read(location).get("run") == record["run"]
    try:
        with open(location, "xb") as handle:
            handle.write(data)
        return True
    except FileExistsError:
        return False


def _alive(holder: dict) -> bool:
    """Whether the holder may still run: unknown (another host) counts as alive."""
    if holder.get("stale"):
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def acquire(path) -> RunLock:
    """Take the lock of the store at ``path`` (making its directory if needed) or raise
    :class:`StoreLocked` naming the run that holds it."""
    path = str(path)
    made = False
    if not is_url(path) and not Path(path).exists():
        try:
            Path(path).mkdir(parents=True)
        except OSError as err:
            raise StoreLocked(f"cannot create the output store {path!r}: {err.strerror or err}") from None
        made = True
    location = _lock_location(path)
    record = {"host": socket.gethostname(), "pid": os.getpid(), "run": uuid.uuid4().hex,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for _ in range(2):  # a stale lock is removed once, then taken
        if _write_exclusive(location, record):
            return RunLock(path, record["run"], made)
        holder = _read(location)
        if _alive(holder):
            if made:
                Path(path).rmdir()
            where = f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"
            raise StoreLocked(f"the store {path!r} is in use by another run ({where}); wait for it to end, or, if "
                              f"that run is gone, delete {location}")
        _delete(location)
    raise StoreLocked(f"could not take the lock {location}: another run keeps taking it")  # pragma: no cover


def check_owner(path, run: str | None) -> None:
    """Raise :class:`RunAbandoned` unless the run ``run`` still holds the store's lock
    (``run`` None: a task not started by ``pipeline run``, never checked)."""
    if run is None:
        return
    if not exists(path) or _read(_lock_location(path)).get("run") != run:
        raise RunAbandoned(f"the run that started this task no longer holds {str(path)!r}; not writing to it")
