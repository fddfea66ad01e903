"""One run per output folder: the folder is checked before a run starts, and a lock file in it
keeps a second run (on this or another machine) from writing to the same stores."""

from __future__ import annotations

import contextlib
import json
import os
import time as _time
from collections.abc import Iterator
from pathlib import Path

from xfacies.errors import InputError, RunLockedError, RunWarning

__all__ = ["prepare_output", "run_lock", "LOCK_NAME"]

#: The lock file of a run, in its output folder.
LOCK_NAME = ".xfacies-run.lock"


def prepare_output(folder: Path) -> None:
    """Create the output folder, or say why it cannot be one (a file, not writable)."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"[output] dir {folder} is a file, not a folder: choose a folder for the run's stores "
                         "and report")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".xfacies-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except (NotADirectoryError, FileExistsError) as err:
        raise InputError(f"[output] dir {folder} cannot be created: a part of that path is a file ({err})") from None
    except PermissionError as err:
        raise InputError(f"[output] dir {folder} is not writable ({err}); choose a folder you can write to") from None


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """One run per output folder: ``<dir>/.xfacies-run.lock`` (pid, host, start) is created
    atomically and removed at the end.  A second run is refused with the first one's details; a
    lock left by a run that died on this host (its pid is gone) is taken over with a warning."""
    import socket
    import warnings

    import psutil

    lock = folder / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": _time.strftime("%Y-%m-%d %H:%M:%S")}
    for attempt in (1, 2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                other = json.loads(lock.read_text())
            except (OSError, ValueError):
                other = {}
            same_host = other.get("host") == me["host"]
            if attempt == 1 and same_host and isinstance(other.get("pid"), int) and not psutil.pid_exists(other["pid"]):
                warnings.warn(f"{lock} was left by an xfacies run (pid {other['pid']}) that is no longer "
                              "running; taking it over", RunWarning, stacklevel=4)
                lock.unlink(missing_ok=True)
                continue
            raise RunLockedError(
                f"another xfacies run (pid {other.get('pid', '?')} on {other.get('host', '?')}, started "
                f"{other.get('started', '?')}) is writing to {folder}; wait for it to finish, or use another "
                f"[output] dir. If that run is dead (e.g. its machine was lost), delete {lock}") from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
