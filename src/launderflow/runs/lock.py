"""One writer per output directory: an exclusive ``fcntl.flock`` on ``DIR/.launderflow.lock``.

Two commands writing into the same ``--out`` would mix their replications under one manifest, so
whatever writes a run directory holds this lock while it works. The library takes it
(:func:`~launderflow.runs.experiment.run_scenario`, ``api.compare`` and ``api.sweep`` for their
directories, ``calibrate.write_outputs``, ``write_report`` and ``write_figures`` for theirs; the
``taint`` command for its run directory; ``backtest --out FILE`` for that one file, with a lock file
of its own beside it, :func:`file_lock_name`), so the Python API is as safe as the command line. The
second writer is refused at once (no waiting) with the holder's pid, host and command, which the
holder writes into the lock file. The kernel drops a flock when its process dies, however it dies,
so a lock left by a killed process never blocks anyone.

Within one process the lock is re-entrant (``compare`` holds its directory and every run directory
in it, and the run itself takes its directory's lock again).

The lock file names the holder's command: :data:`command_line` when set (the CLI sets it to
``launderflow ...``), else the Python process's command line.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

LOCK_FILE = ".launderflow.lock"

#: what the lock file says the holder is doing; None: ``python`` and this process's arguments
command_line: ContextVar[str | None] = ContextVar("command_line", default=None)

_held: dict[Path, tuple[int, int]] = {}  # lock file -> (file descriptor, how many holders in this process)


class OutputError(Exception):
    """An output directory that cannot be used: not writable, or held by another writer."""


class LockedError(OutputError):
    """Another process writes into the directory."""


def holder_text(info: dict[str, Any]) -> str:
    """``pid 123 on host, since 2026-01-01 12:00:00: launderflow run ...`` from a lock file's content."""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"])) if isinstance(info.get("since"), (int, float)) else "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, since {since}: {info.get('command', '?')}"


def file_lock_name(name: str) -> str:
    """The lock file of one output file (``backtest --out FILE``): ``.FILE.launderflow.lock`` beside it,
    so that writers of different files in one directory do not exclude each other."""
    return f".{name}{LOCK_FILE}"


def acquire(directory: Path | str, command: str | None = None, name: str = LOCK_FILE) -> Path:
    """Take the directory's lock (creating the directory) or raise :class:`LockedError` naming the holder.

    ``name``: the lock file (default: the directory's; :func:`file_lock_name` for one file in it).
    Returns the lock file's path, the key for :func:`release`.
    """
    root = Path(directory).resolve()
    path = root / name
    if path in _held:
        fd, count = _held[path]
        _held[path] = (fd, count + 1)
        return path
    while True:
        try:  # also the check that --out can be written at all, before any work
            root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot write to {directory}: {_why(exc, root)} (choose a directory you can write to)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read_info(fd)
            os.close(fd)
            what = directory if name == LOCK_FILE else root / name[1:-len(LOCK_FILE)]
            raise LockedError(f"{what} is being written by another launderflow ({holder_text(info)}): "
                              f"wait for it to finish, or choose another --out") from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder before us may have removed the file after we opened it: lock the file that is there
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": round(time.time(), 3),
            "command": command or command_line.get() or " ".join(["python", *sys.argv])}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
    _held[path] = (fd, 1)
    return path


def release(path: Path) -> None:
    """Drop one hold of the lock; the last one removes the lock file and unlocks."""
    fd, count = _held[path]
    if count > 1:
        _held[path] = (fd, count - 1)
        return
    del _held[path]
    try:
        path.unlink(missing_ok=True)  # safe: a waiter re-checks that it locked the file that is there
    except OSError:
        pass
    os.close(fd)  # closing drops the flock


@contextmanager
def locked(directory: Path | str, command: str | None = None, name: str = LOCK_FILE) -> Iterator[Path]:
    """Hold the directory's lock (or, with ``name``, another lock file in it) for the block (see :func:`acquire`)."""
    key = acquire(directory, command, name)
    try:
        yield key
    finally:
        release(key)


def _why(exc: OSError, root: Path) -> str:
    if isinstance(exc, FileExistsError) or (root.exists() and not root.is_dir()):
        return "it exists and is not a directory"
    if isinstance(exc, NotADirectoryError):
        return "a part of the path is a file, not a directory"
    if exc.errno == errno.ELOOP:
        return f"{LOCK_FILE} is a symbolic link"
    return exc.strerror or type(exc).__name__


def _read_info(fd: int) -> dict[str, Any]:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}
