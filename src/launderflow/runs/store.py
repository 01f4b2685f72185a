"""The results store: a run directory that fills up one replication at a time and survives interruption.

A run writes into one directory::

    DIR/manifest.json        which run this is: the scenario's canonical JSON and its hash, seed, runs
    DIR/parts/0000003/       replication 3, complete or absent (written to a temp name, then renamed)
        part.json            its index, its run's key and the sha256 of every file below (checked by --resume)
        replication.npz      the whole Replication, losslessly (rebuilds the summary and every table)
        summary.parquet      one row: its final states, time to 50 % cashed out, cost, transfers, lots
        timeline.parquet     its timeline rows
        ledger.parquet       its ledger rows (when ledgers are kept)
        anonymity.parquet    its pool-mixer anonymity sets (when the scenario has pool mixers)
    DIR/failures.json        replications that failed: index, seed, stage, error (absent if none)
    DIR/summary.json, timeline.parquet, ledger.parquet, anonymity.parquet
                             the run's files, assembled from the parts by results.py

A replication is stored the moment it finishes, so a run stopped by Ctrl-C or a killed process
loses only the replications in flight; ``--resume`` runs the missing ones and assembles the same
bytes an uninterrupted run writes. The assembled files always match the parts they were built from:
they are deleted before new parts are added and written back (summary.json last) at the end, and
their checksums go into the manifest.

The store removes only what a run writes (never a file of the user's), refuses symbolic links in
the directory, and leaves locking to its callers (:mod:`launderflow.runs.lock`: one writer per
directory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..model.simulate import Replication
from ..scenario.schema import Scenario
from .outputs import LEDGER, foreign_files
from .outputs import file_sha256 as _sha256

STORE_FORMAT = 1
MANIFEST = "manifest.json"
FAILURES = "failures.json"
PARTS = "parts"
# the assembled files, in the order they are put in place (summary.json last: it marks a finished assembly)
FINAL_FILES = ("scenario.yaml", "timeline.parquet", "anonymity.parquet", "ledger.parquet", "summary.json")
DERIVED_FILES = ("taint.json", "report.html")  # other commands write them from the assembled files: stale once those change
PART_TABLES = ("summary", "timeline", "ledger", "anonymity")
PART_META = "part.json"  # in each part: its replication index, its run's key and the sha256 of every file
OMITTED_WHEN_ABSENT = ("honest",)  # Replication fields left out of the .npz when None (they default to None)
RUN_ENTRIES = (MANIFEST, FAILURES, PARTS, *FINAL_FILES)  # what a run writes into its directory


class StoreError(Exception):
    """The directory cannot take this run: it holds another run, or another scenario's results."""


# --- the manifest --------------------------------------------------------------------------------


def scenario_json(scenario: Scenario) -> str:
    """The scenario's canonical JSON: what a stored run is checked against."""
    return scenario.model_dump_json()


def make_manifest(scenario: Scenario, seed: int, runs: int, keep_ledgers: bool) -> dict[str, Any]:
    text = scenario_json(scenario)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return {
        "launderflow_store": STORE_FORMAT,
        "launderflow_version": __version__,
        "scenario_name": scenario.name,
        "scenario_sha256": digest,
        "seed": seed,
        "runs": runs,
        "keep_ledgers": keep_ledgers,
        "run_key": run_key(digest, seed, keep_ledgers),
        "scenario": json.loads(text),
    }


def run_key(scenario_sha256: str, seed: int, keep_ledgers: bool) -> str:
    """Short hash of what makes replication i's result: scenario content, seed and ledger keeping."""
    return hashlib.sha256(f"{scenario_sha256}:{seed}:{int(keep_ledgers)}".encode()).hexdigest()[:16]


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Field paths where two JSON documents differ, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{sub}: {json.dumps(old[key])} in the stored run, absent now")
            elif key not in old:
                out.append(f"{sub}: absent in the stored run, {json.dumps(new[key])} now")
            else:
                out.extend(_differences(old[key], new[key], sub))
        if list(old) != list(new) and not out:
            out.append(f"{path or 'scenario'}: same entries in another order")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _differences(a, b, f"{path}.{i}")]
    if old != new:
        return [f"{path}: {_short(old)} in the stored run, {_short(new)} now"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- one replication, losslessly: a deterministic .npz -------------------------------------------


def replication_arrays(rep: Replication) -> dict[str, np.ndarray]:
    """Every field of ``rep`` as named arrays, plus a ``__layout__`` entry that says how to rebuild it.

    Arrays are stored as they are (dtype and shape exact); numbers, strings and small dicts of tuples
    (the interventions) go into the layout's JSON, which round-trips floats exactly. A field of any
    other type raises TypeError: better than silently dropping what a newer model returns.
    """
    arrays: dict[str, np.ndarray] = {}
    layout: dict[str, Any] = {}
    for f in dataclasses.fields(rep):
        value = getattr(rep, f.name)
        if value is None and f.name in OMITTED_WHEN_ABSENT:
            continue  # (a run without honest users stores the same bytes as before the field existed)
        if isinstance(value, np.ndarray):
            _plain(value, f.name)
            arrays[f.name] = value
            layout[f.name] = {"kind": "array"}
        elif isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values()):
            keys = list(value)
            for j, key in enumerate(keys):
                arrays[f"{f.name}/{j}"] = _plain(value[key], f"{f.name}[{key!r}]")
            layout[f.name] = {"kind": "arrays", "keys": keys}
        elif isinstance(value, dict) and all(isinstance(v, tuple) for v in value.values()):
            layout[f.name] = {"kind": "tuples", "items": [[k, [_scalar(x, f.name) for x in v]] for k, v in value.items()]}
        else:
            layout[f.name] = {"kind": "value", "value": _scalar(value, f.name)}
    arrays["__layout__"] = np.frombuffer(json.dumps({"format": STORE_FORMAT, "fields": layout}).encode("utf-8"),
                                         dtype=np.uint8)
    return arrays


def _plain(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.hasobject:
        raise TypeError(f"cannot store Replication.{name}: an object array")
    return array


def _scalar(value: Any, name: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return float(value) if isinstance(value, np.floating) else value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot store Replication.{name}: a {type(value).__name__}")


def replication_from_arrays(arrays: Any, skip: tuple[str, ...] = ()) -> Replication:
    """Rebuild the Replication that :func:`replication_arrays` took apart (``arrays``: any mapping).

    Fields named in ``skip`` that may be absent (the ledger, the lots table) are left as None and
    never read: analyses of a run do not need a ledger of millions of rows.
    """
    layout = json.loads(bytes(np.asarray(arrays["__layout__"], dtype=np.uint8)).decode("utf-8"))
    known = {f.name for f in dataclasses.fields(Replication)}
    unknown = sorted(set(layout["fields"]) - known)
    if unknown:
        raise ValueError(f"stored replication has fields this launderflow does not know: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, spec in layout["fields"].items():
        kind = spec["kind"]
        if name in skip and kind == "arrays":
            kwargs[name] = None
        elif kind == "array":
            kwargs[name] = np.asarray(arrays[name])
        elif kind == "arrays":
            kwargs[name] = {key: np.asarray(arrays[f"{name}/{j}"]) for j, key in enumerate(spec["keys"])}
        elif kind == "tuples":
            kwargs[name] = {key: tuple(values) for key, values in spec["items"]}
        else:
            kwargs[name] = spec["value"]
    return Replication(**kwargs)


def save_replication(path: Path, rep: Replication) -> None:
    """Write ``rep`` as an .npz that is the same bytes for the same replication (no zip timestamps)."""
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        for name, array in replication_arrays(rep).items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)


def load_replication(path: Path, skip: tuple[str, ...] = ()) -> Replication:
    with np.load(path, allow_pickle=False) as npz:
        return replication_from_arrays(_LazyArrays(npz), skip)


class _LazyArrays:
    """An npz archive read member by member, on demand (``npz[name]`` without the .npy suffix)."""

    def __init__(self, npz: Any):
        self._npz = npz

    def __getitem__(self, name: str) -> np.ndarray:
        return self._npz[name]


# --- per-replication rows ------------------------------------------------------------------------


# --- the store -----------------------------------------------------------------------------------


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: damaged, cannot be read as JSON ({_one_line(exc)}); "
                         f"choose another --out, or --overwrite to discard the stored run") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


_MANIFEST_FIELDS = {"launderflow_store": int, "scenario_sha256": str, "seed": int, "runs": int, "keep_ledgers": bool,
                    "run_key": str, "scenario": dict}


def _check_manifest(path: Path, doc: Any) -> dict[str, Any]:
    """The stored manifest, or StoreError if it is not one this launderflow wrote (damaged, edited)."""
    if not isinstance(doc, dict):
        raise StoreError(f"{path}: damaged (not a JSON object); choose another --out, or --overwrite to discard the stored run")
    if doc.get("launderflow_store") != STORE_FORMAT:
        raise StoreError(f"{path}: store format {_short(doc.get('launderflow_store'))}, this launderflow reads "
                         f"{STORE_FORMAT}: choose another --out, or --overwrite to replace it")
    wrong = [name for name, kind in _MANIFEST_FIELDS.items()
             if not isinstance(doc.get(name), kind) or (kind is int and isinstance(doc.get(name), bool))]
    if not wrong and (doc["runs"] < 1 or doc["seed"] < 0):
        wrong = ["runs" if doc["runs"] < 1 else "seed"]
    if wrong:
        raise StoreError(f"{path}: damaged ({', '.join(wrong)} missing or of the wrong type); "
                         f"choose another --out, or --overwrite to discard the stored run")
    return doc


def refuse_links(root: Path, reading: bool = False) -> None:
    """StoreError if anything launderflow would read or write in ``root`` is a symbolic link.

    A linked ``parts/`` (or file) would survive ``--overwrite``, feed another run's parts into this
    one, make the run write outside its directory, or make a reader (``query``, ``report``,
    ``open_run``: ``reading``) show a file from elsewhere as the run's.
    """
    from .lock import LOCK_FILE

    root = Path(root)
    if not root.is_dir():
        return
    names = [*RUN_ENTRIES, *DERIVED_FILES, LOCK_FILE, LEDGER]
    found = [root / n for n in names if (root / n).is_symlink()]
    parts = root / PARTS
    if not found and parts.is_dir():
        for part in parts.iterdir():
            if part.is_symlink():
                found.append(part)
            elif part.is_dir() and part.name.isdigit():
                found.extend(f for f in part.iterdir() if f.is_symlink())
            if found:
                break
    if found:
        raise StoreError(f"{found[0]} is a symbolic link: a run directory holds only its own files "
                         f"(remove the link{'' if reading else ', or choose another --out'})")


PART_FILES = {PART_META, "replication.npz", *(f"{name}.parquet" for name in PART_TABLES)}


def _is_part(path: Path) -> bool:
    """A folder a run wrote in ``parts/``: a replication (``0000003``, holding only a part's files)
    or a part left half-written (``.tmp-...``)."""
    if path.is_symlink() or not path.is_dir():
        return False
    if path.name.startswith(".tmp-"):
        return True
    return (len(path.name) == 7 and path.name.isdigit()
            and all(f.name in PART_FILES and f.is_file() and not f.is_symlink() for f in path.iterdir()))


def _unknown_parts(parts: Path) -> list[str]:
    """What ``parts/`` holds that no run wrote (``parts/mine/``, a file), as ``parts/NAME``."""
    if not parts.is_dir() or parts.is_symlink():
        return []
    return sorted(f"{PARTS}/{p.name}" for p in parts.iterdir() if not _is_part(p))


def _clear_parts(parts: Path) -> None:
    """Remove the parts a run wrote and nothing else: ``parts/`` itself only if that leaves it empty."""
    if not parts.is_dir() or parts.is_symlink():
        return
    for part in parts.iterdir():
        if _is_part(part):
            shutil.rmtree(part, ignore_errors=True)
    try:
        parts.rmdir()
    except OSError:  # it holds something of the user's: kept, and so is parts/
        pass


def _derived_by_launderflow(root: Path) -> list[str]:
    """The derived files (report.html, taint.json) in ``root`` that launderflow wrote and nobody changed
    since (its ledger, :mod:`launderflow.runs.outputs`): the only ones a changed run may remove."""
    present = [n for n in DERIVED_FILES if (root / n).is_file() and not (root / n).is_symlink()]
    theirs = {p.name for p in foreign_files(root, present)}
    return [n for n in present if n not in theirs]


def _foreign_entries(root: Path) -> list[str]:
    """Names in ``root`` that no run wrote (the lock file and launderflow's temp files aside)."""
    from .lock import LOCK_FILE

    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.name not in (LOCK_FILE, LEDGER) and not p.name.endswith(LOCK_FILE)
                  and not p.name.startswith(".assemble-") and not (p.name.startswith(".") and p.name.endswith(".tmp")))


class RunStore:
    """One run's directory: manifest, one part per finished replication, failures, assembled files.

    Open it with :meth:`open`, which checks that the directory holds nothing or this same run.
    """

    def __init__(self, root: Path, scenario: Scenario, manifest: dict[str, Any]):
        self.root = Path(root)
        self.scenario = scenario
        self.manifest = manifest
        self.parts = self.root / PARTS
        self.notes: list[str] = []  # what opening the store found and did (damaged parts dropped, ...)
        self._stored = self._scan()
        self._failures = self._read_failures()

    # identity
    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def runs(self) -> int:
        return int(self.manifest["runs"])

    @property
    def keep_ledgers(self) -> bool:
        return bool(self.manifest["keep_ledgers"])

    @property
    def key(self) -> str:
        return str(self.manifest["run_key"])

    @classmethod
    def open(cls, root: Path | str, scenario: Scenario, seed: int, runs: int, keep_ledgers: bool = False, *,
             resume: bool = False, overwrite: bool = False) -> RunStore:
        """Open ``root`` for this run; raise :class:`StoreError` rather than mix or clobber runs.

        * empty or new directory: a new run;
        * ``overwrite``: whatever the directory held (of launderflow's files) is removed first;
        * ``resume``: the stored run must have the same scenario content, seed and ledger keeping;
          ``runs`` may differ (replication i is the same whatever the number of runs), so a run can
          be extended;
        * neither: a complete run of exactly this command is run again from scratch; an unfinished
          one, another run, or results without a manifest are refused.
        """
        root = Path(root)
        refuse_links(root)
        new = make_manifest(scenario, seed, runs, keep_ledgers)
        path = root / MANIFEST
        if overwrite:
            foreign = cls._clear(root)
            return cls._create(root, scenario, {**new, **({"foreign_files": foreign} if foreign else {})})
        if not path.exists():
            unknown = _unknown_parts(root / PARTS)
            if unknown:
                shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                raise StoreError(
                    f"{root} holds no launderflow run, and its {PARTS}/ holds what no run writes ({shown}): "
                    f"choose an empty or new --out (--overwrite would keep these and write the run beside them)")
            leftovers = [n for n in (PARTS, FAILURES, *FINAL_FILES) if (root / n).exists()]
            if leftovers:
                raise StoreError(
                    f"{root} holds results without a {MANIFEST} ({', '.join(leftovers)}; from an older launderflow?), "
                    f"so they cannot be checked against this run: choose another --out, or --overwrite to replace them")
            others = _foreign_entries(root)
            if others:
                shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
                raise StoreError(
                    f"{root} is not empty and holds no launderflow run ({shown}): choose an empty or new --out "
                    f"(--overwrite writes the run beside these files and removes none of them)")
            return cls._create(root, scenario, new)
        old = _check_manifest(path, _read_json(path))
        problems = cls._mismatch(old, new)
        kept = {"foreign_files": old["foreign_files"]} if old.get("foreign_files") else {}
        if not any(p.name.isdigit() for p in (root / PARTS).glob("*")) and not (root / "summary.json").exists():
            cls._clear(root)  # a run that stored nothing (it could not start): nothing to keep or check
            return cls._create(root, scenario, {**new, **kept})
        if resume:
            if problems:
                raise StoreError(f"{root} holds another run, --resume refused:\n  " + "\n  ".join(problems)
                                 + "\nchoose another --out, or --overwrite to discard the stored run")
            store = cls(root, scenario, old)
            store._cleanup_temp()
            store._verify()
            if old["runs"] != runs:
                store._remove_finals()
                store.manifest = {**store.manifest, "runs": runs}
                store._write_manifest()
            return store
        store = cls(root, scenario, old)
        if not problems and old["runs"] == runs:
            if not store.missing():
                cls._clear(root)  # the same command again: run it again, from scratch
                return cls._create(root, scenario, {**new, **kept})
            raise StoreError(
                f"{root} holds an unfinished run of this scenario ({store.count()} of {runs} replications stored): "
                f"add --resume to finish it, or --overwrite to start again")
        what = problems + ([f"runs: {old['runs']} in the stored run, {runs} now"] if old["runs"] != runs else [])
        raise StoreError(
            f"{root} holds results of another run ({old.get('scenario_name')}, seed {old.get('seed')}, "
            f"{store.count()} of {old.get('runs')} replications stored):\n  " + "\n  ".join(what)
            + "\nchoose another --out, --resume to continue the stored run, or --overwrite to discard it")

    @staticmethod
    def _mismatch(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
        problems = []
        if old.get("scenario_sha256") != new["scenario_sha256"]:
            diffs = _differences(old.get("scenario"), new["scenario"])
            shown = diffs[:8] + ([f"... and {len(diffs) - 8} more"] if len(diffs) > 8 else [])
            problems.append("the scenario differs: " + ("; ".join(shown) if shown else "different content"))
        if old.get("seed") != new["seed"]:
            problems.append(f"seed: {old.get('seed')} in the stored run, {new['seed']} now")
        if old.get("keep_ledgers") != new["keep_ledgers"]:
            problems.append(f"ledgers: {'kept' if old.get('keep_ledgers') else 'not kept'} in the stored run, "
                            f"{'kept' if new['keep_ledgers'] else 'not kept'} now (--keep-ledgers, keep_ledgers in Python; always on with one run)")
        return problems

    @classmethod
    def _create(cls, root: Path, scenario: Scenario, manifest: dict[str, Any]) -> RunStore:
        (root / PARTS).mkdir(parents=True, exist_ok=True)
        _write_text_atomic(root / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        return cls(root, scenario, manifest)

    @staticmethod
    def _clear(root: Path) -> list[str]:
        """Remove what a run writes (never anything else); return the derived-file names that are not ours.

        ``taint.json`` and ``report.html`` are removed only from a run directory (where launderflow
        made them from the run) and only if the run did not find them there when it started.
        """
        if not root.is_dir():
            return []
        manifest = root / MANIFEST
        try:
            ours = manifest.is_file() and isinstance(doc := json.loads(manifest.read_text(encoding="utf-8")), dict)
            foreign = list(doc.get("foreign_files") or []) if ours else []
        except (OSError, ValueError):
            ours, foreign = True, []
        derived = [n for n in _derived_by_launderflow(root) if n not in foreign] if ours else []
        for name in (*FINAL_FILES[::-1], *derived, FAILURES, MANIFEST):
            (root / name).unlink(missing_ok=True)
        _clear_parts(root / PARTS)
        for leftover in [*root.glob(".assemble-*"), *root.glob(".*.tmp")]:
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
        return sorted(set(foreign) | {n for n in DERIVED_FILES if (root / n).exists()})

    def _write_manifest(self) -> None:
        _write_text_atomic(self.root / MANIFEST, json.dumps(self.manifest, indent=2) + "\n")

    def _cleanup_temp(self) -> None:
        """Remove what a killed process left half-written (temp parts and assemblies)."""
        for pattern_root, pattern in ((self.parts, ".tmp-*"), (self.root, ".assemble-*"), (self.root, ".*.tmp")):
            if pattern_root.is_dir():
                for leftover in pattern_root.glob(pattern):
                    shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)

    # parts
    def _scan(self) -> set[int]:
        if not self.parts.is_dir():
            return set()
        return {int(p.name) for p in self.parts.iterdir()
                if p.name.isdigit() and p.name == f"{int(p.name):07d}" and p.is_dir()}

    def part_dir(self, index: int) -> Path:
        return self.parts / f"{index:07d}"

    def stored(self) -> list[int]:
        """Indices of the stored replications of this run (below ``runs``), ascending."""
        return sorted(i for i in self._stored if i < self.runs)

    def count(self) -> int:
        return len(self.stored())

    def missing(self) -> list[int]:
        return [i for i in range(self.runs) if i not in self._stored]

    def complete(self) -> bool:
        return not self.missing()

    def write_part(self, index: int, rep: Replication, tables: dict[str, pa.Table | None]) -> Path:
        """Store replication ``index``: the replication itself (losslessly) and the tables derived
        from it (``name -> table``; None: none), all in a temp directory, then one atomic rename."""
        final = self.part_dir(index)
        tmp = self.parts / f".tmp-{index:07d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            save_replication(tmp / "replication.npz", rep)
            for name, table in tables.items():
                if table is not None:
                    pq.write_table(table, tmp / f"{name}.parquet", compression="zstd")
            files = {f.name: _sha256(f) for f in sorted(tmp.iterdir())}
            meta = {"index": index, "run_key": self.key, "files": files}
            (tmp / PART_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            try:
                os.replace(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # stored meanwhile by another process: same content
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._stored.add(index)
        return final

    def load(self, index: int) -> Replication:
        """Read a stored replication back; StoreError (not a traceback) if the part is damaged."""
        path = self.part_dir(index) / "replication.npz"
        try:
            return load_replication(path)
        except Exception as exc:  # zipfile, numpy and json raise many kinds on a damaged file (EOFError too)
            raise StoreError(f"{path}: damaged ({type(exc).__name__}: {_one_line(exc)}); "
                             f"--resume checks every part and runs the damaged ones again") from None

    def check_part(self, index: int) -> str | None:
        """Why the stored part ``index`` cannot be trusted (None: its files match their checksums).

        Catches truncated, emptied or altered files, a part copied from another replication or
        another run, and parts written before parts carried checksums.
        """
        part = self.part_dir(index)
        try:
            meta = json.loads((part / PART_META).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return f"no {PART_META} (no checksums to check it against)"
        except (OSError, ValueError) as exc:
            return f"{PART_META} cannot be read ({_one_line(exc)})"
        if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
            return f"{PART_META} is damaged"
        if meta.get("index") != index:
            return f"it holds replication {_short(meta.get('index'))}, not {index}"
        if meta.get("run_key") != self.key:
            return "it belongs to another run (another scenario, seed or ledger setting)"
        present = {f.name for f in part.iterdir()} - {PART_META}
        if present != set(meta["files"]) or "replication.npz" not in present:
            return f"its files are {', '.join(sorted(present)) or 'none'}, it should have {', '.join(sorted(meta['files']))}"
        for name, digest in sorted(meta["files"].items()):
            try:
                if _sha256(part / name) != digest:
                    return f"{name} does not match its checksum"
            except OSError as exc:
                return f"{name} cannot be read ({exc.strerror})"
        return None

    def _verify(self) -> None:
        """Check every stored part and the assembled files; drop what is damaged so that it is redone.

        What was dropped and why is in :attr:`notes`. Assembled files that do not match the
        checksums recorded when they were written are rebuilt (from the parts) by the next assembly.
        """
        bad = {i: why for i in sorted(self._stored) if (why := self.check_part(i))}
        for index, why in bad.items():
            shutil.rmtree(self.part_dir(index))
            self._stored.discard(index)
            self.notes.append(f"parts/{index:07d}: {why}: replication {index} will be run again")
        if bad:
            self._remove_finals()
            return
        recorded = self.manifest.get("assembled")
        if not self.assembled():
            return
        if not isinstance(recorded, dict):
            self.notes.append("the assembled files carry no checksums: they will be rebuilt from the parts")
            self._remove_finals(derived=False)
            return
        for name in FINAL_FILES:
            path = self.root / name
            if recorded.get(name) != (_sha256(path) if path.is_file() else None):
                self.notes.append(f"{name} does not match its checksum: the assembled files will be rebuilt from the parts")
                self._remove_finals(derived=False)  # rebuilt from verified parts: the same bytes
                return

    # failures
    def _read_failures(self) -> dict[int, dict[str, Any]]:
        path = self.root / FAILURES
        if not path.exists():
            return {}
        records = _read_json(path)
        if not isinstance(records, list) or not all(
                isinstance(r, dict) and isinstance(r.get("index"), int) and not isinstance(r.get("index"), bool)
                for r in records):
            raise StoreError(f"{path}: damaged (not a list of failure records); choose another --out, "
                             f"or --overwrite to discard the stored run")
        return {int(r["index"]): r for r in records}

    def failures(self) -> list[dict[str, Any]]:
        return [self._failures[i] for i in sorted(self._failures)]

    def record_failure(self, record: dict[str, Any]) -> None:
        """Note that a replication failed (index, seed, stage, error, ...); written at once."""
        self._failures[int(record["index"])] = record
        self._write_failures()

    def clear_failure(self, index: int) -> None:
        if self._failures.pop(index, None) is not None:
            self._write_failures()

    def _write_failures(self) -> None:
        path = self.root / FAILURES
        current = [r for r in self.failures() if int(r["index"]) not in self._stored]
        if current:
            _write_text_atomic(path, json.dumps(current, indent=2) + "\n")
        else:
            path.unlink(missing_ok=True)

    # the assembled files
    def assembled(self) -> bool:
        return (self.root / "summary.json").is_file()

    def _remove_finals(self, derived: bool = True) -> None:
        """Drop the assembled files (summary.json first) and, with ``derived``, what was made from them."""
        foreign = set(self.manifest.get("foreign_files") or [])
        for name in FINAL_FILES[::-1] + (tuple(_derived_by_launderflow(self.root)) if derived else ()):
            if name not in foreign:
                (self.root / name).unlink(missing_ok=True)

    def prepare(self) -> None:
        """Before new parts are added: drop the assembled files, which would no longer match."""
        self._cleanup_temp()
        if self.missing():
            self._remove_finals()

    def assemble(self, write: Callable[[Path], list[Path]] | None) -> list[Path]:
        """Put the run's files in place: ``write(tmp)`` writes them into a temp directory, then they
        are moved in (summary.json last: it marks a finished assembly) and their checksums go into
        the manifest. ``write`` None: nothing is stored, the assembled files are removed.
        """
        self._write_failures()
        if write is None:
            self._remove_finals()
            return []
        tmp = self.root / f".assemble-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            made = {p.name for p in write(tmp)}
            written = []
            sums = {name: _sha256(tmp / name) for name in FINAL_FILES if name in made}
            if self.manifest.pop("assembled", None) is not None:
                self._write_manifest()  # the old checksums go before the files they describe
            for name in FINAL_FILES:  # summary.json last
                if name in made:
                    os.replace(tmp / name, self.root / name)
                    written.append(self.root / name)
                else:
                    (self.root / name).unlink(missing_ok=True)
            self.manifest["assembled"] = sums
            self._write_manifest()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return written

    def summary(self) -> dict[str, Any] | None:
        path = self.root / "summary.json"
        return _read_json(path) if path.is_file() else None


# --- reading a stored run ------------------------------------------------------------------------


class StoredRun:
    """A run directory opened for reading: its manifest, scenario and stored replications.

    Unlike :meth:`RunStore.open` it checks nothing against a command and changes nothing: it is
    how analyses (``compare``, the Python API) read the replications a run stored.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)
        refuse_links(self.root, reading=True)  # a linked file would be read as this run's
        path = self.root / MANIFEST
        if not path.is_file():
            raise StoreError(f"{self.root}: not a run directory (no {MANIFEST})")
        self.manifest = _read_json(path)
        try:
            self.scenario = Scenario.model_validate(self.manifest["scenario"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{path}: its scenario cannot be read ({exc})") from None
        runs = int(self.manifest["runs"])
        parts = self.root / PARTS
        stored = {int(p.name) for p in parts.iterdir() if p.name.isdigit() and p.is_dir()} if parts.is_dir() else set()
        self.indices = sorted(i for i in stored if i < runs)

    def replication(self, index: int, skip: tuple[str, ...] = ()) -> Replication:
        return load_replication(self.root / PARTS / f"{index:07d}" / "replication.npz", skip)

    def replications(self, skip: tuple[str, ...] = ("ledger", "lots_table")) -> dict[int, Replication]:
        """Every stored replication, by index (ascending); without their ledgers unless asked."""
        return {i: self.replication(i, skip) for i in self.indices}
