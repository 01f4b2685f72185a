"""A command's files in a directory: written only as its own, never through a link, never half-written.

Every command that writes files beside a run's store (``compare`` and ``sweep`` their comparison
files and figures, ``plot`` its figures, ``report`` report.html, ``taint`` taint.json,
``calibrate`` its three files, ``backtest --out`` its JSON) writes them with :func:`write_files`,
which applies the store's rules (:mod:`launderflow.runs.store`) to files of any kind:

* **no symbolic links**: a file, or a folder between the directory and the file (``figures/``),
  that is a link is refused, so nothing is written outside the directory the user named;
* **whole files**: each file is written to a temporary file in its own folder, then renamed over
  the old one, so a reader sees the old bytes or the new ones, never a mix;
* **only its own files**: each directory keeps, in :data:`LEDGER`, the sha256 of every file
  launderflow wrote there. A file is replaced only if it still has those bytes; a file launderflow
  did not write (or one changed since) is refused with :class:`ForeignFileError` unless the
  command was given ``overwrite`` (``--overwrite``), and then only the files the command writes
  are replaced: nothing else in the directory is touched.

:func:`check_files` runs the same checks before a long piece of work (a comparison, a
calibration), so a refusal comes before the work and not after it. Locking is the callers'
(:mod:`launderflow.runs.lock`): they hold the writer lock of what they write while they work.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from .lock import OutputError

LEDGER = ".launderflow-files.json"  # in each directory launderflow wrote files into: name -> sha256


class ForeignFileError(OutputError):
    """A file the command would replace was not written by launderflow (or was changed since)."""


class LinkError(OutputError):
    """A file or folder the command would read or write is a symbolic link."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks (the store's checksums too)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parts(name: str) -> list[str]:
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{name!r} is not a file name inside the directory")
    return list(parts)


def refuse_linked(root: Path, name: str) -> None:
    """LinkError if ``root/name`` or a folder between ``root`` and it is a symbolic link."""
    path = root
    for part in _parts(name):
        path = path / part
        if path.is_symlink():
            raise LinkError(f"{path} is a symbolic link: launderflow writes only its own files in {root} "
                            f"(remove the link, or choose another directory)")


def read_ledger(directory: Path) -> dict[str, str]:
    """The ledger of ``directory``: name -> sha256 of the bytes launderflow wrote (empty if none or damaged:
    then no file counts as launderflow's, the safe side)."""
    path = directory / LEDGER
    if path.is_symlink() or not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = doc.get("files") if isinstance(doc, dict) else None
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(files, dict) else {}


def foreign_files(directory: Path | str, names: Iterable[str]) -> list[Path]:
    """Which of ``names`` exist in ``directory`` without being launderflow's (not in the ledger, or changed)."""
    root = Path(directory)
    ledger = read_ledger(root)
    found = []
    for name in names:
        path = root / name
        if not path.exists() and not path.is_symlink():
            continue
        if not path.is_file() or ledger.get(name) != file_sha256(path):
            found.append(path)
    return found


def check_files(directory: Path | str, names: Iterable[str], overwrite: bool = False) -> None:
    """Raise LinkError or ForeignFileError if writing ``names`` into ``directory`` would be refused."""
    root = Path(directory)
    names = list(names)
    for name in names:
        refuse_linked(root, name)
    for path in foreign_files(root, names):
        if not path.is_file():
            raise ForeignFileError(f"{path} exists and is not a file: launderflow will not replace it "
                                   f"(move it, or choose another directory)")
        if not overwrite:
            raise ForeignFileError(f"{path} exists and launderflow did not write it (or it was changed since): "
                                   f"move it, choose another directory, or --overwrite to replace it "
                                   f"(only the files this command writes are replaced)")


def write_files(directory: Path | str, files: Mapping[str, bytes | str], overwrite: bool = False) -> list[Path]:
    """Write ``files`` (relative name -> content; str is UTF-8) into ``directory`` as its own files.

    Checks first (:func:`check_files`: nothing is written if one file is refused), then writes each
    to a temporary file beside it and renames it into place, and records its sha256 in the ledger.
    Returns the paths written, in the order given.
    """
    root = Path(directory)
    check_files(root, files, overwrite)
    root.mkdir(parents=True, exist_ok=True)
    written, sums = [], {}
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_linked(root, name)  # (again: a folder made meanwhile)
        _replace(path, data)
        written.append(path)
        sums[name] = _sha256(data)
    _record(root, sums)
    return written


def _replace(path: Path, data: bytes) -> None:
    """``path`` gets ``data`` whole: a new temp file beside it (never following a link), then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _record(root: Path, sums: Mapping[str, str]) -> None:
    """Add ``sums`` to the ledger, under a lock of its own (two commands may write one directory's
    different files, e.g. two ``backtest --out`` files)."""
    path = root / LEDGER
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LinkError(f"{path} is not a regular file")
        fcntl.flock(fd, fcntl.LOCK_EX)
        ledger = read_ledger(root)
        ledger.update(sums)
        doc = {"note": "files launderflow wrote here, with their sha256: it replaces only these",
               "files": dict(sorted(ledger.items()))}
        data = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)
