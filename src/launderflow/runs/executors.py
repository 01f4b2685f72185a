"""Executors for replications: in process, a local process pool, or a dask.distributed cluster.

:func:`open_executor` turns ``--jobs``/``--scheduler`` into a :class:`concurrent.futures.Executor`
(or None: in process). A local pool's workers ignore Ctrl-C and are stopped at once when the run
is interrupted; :class:`DaskExecutor` names every task after its replication so that dask never
merges two of them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from multiprocessing import popen_spawn_posix, spawn
from typing import Any

DEFAULT_SCHEDULER_TIMEOUT = 30.0  # seconds to connect to a dask scheduler and hear its handshake
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
# --scheduler-timeout sets it for the command; open_executor reads it when not given a timeout
scheduler_timeout: ContextVar[float] = ContextVar("scheduler_timeout", default=DEFAULT_SCHEDULER_TIMEOUT)


def check_scheduler_address(address: str) -> str:
    """The address as dask takes it (``tcp://`` added when there is no scheme), or ValueError saying
    what is wrong: checked before any work, so that a typo is not a 30-second wait."""
    from distributed.comm.addressing import parse_host_port

    text = address.strip()
    scheme, sep, location = text.partition("://")
    if not sep:
        scheme, location = "tcp", text
    allowed = f"(allowed: SCHEME://HOST:PORT with SCHEME one of {', '.join(SCHEDULER_SCHEMES)}, e.g. tcp://10.0.0.5:8786)"
    if scheme not in SCHEDULER_SCHEMES:
        raise ValueError(f"{address!r}: unknown scheme {scheme!r} {allowed}")
    try:
        host, port = parse_host_port(location)
    except (ValueError, TypeError):
        raise ValueError(f"{address!r} is not HOST:PORT {allowed}") from None
    if not host or any(c.isspace() or c in "/?#@" for c in host) or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not HOST:PORT {allowed}")
    return f"{scheme}://{location}"


class NotAScheduler(OSError):
    """The service at --scheduler answered, but not as a dask scheduler does (a usage error: exit 2)."""


MAX_HANDSHAKE_BYTES = 1 << 24  # a dask handshake is a few hundred bytes; its first 8 bytes give its length


def _probe(address: str, timeout: float) -> None:
    """Read the first 8 bytes a ``tcp://`` scheduler sends, before dask reads (and allocates) anything.

    A dask scheduler sends its handshake as soon as it accepts a connection, prefixed by its length
    (8 bytes, little-endian). Another service (an HTTP server, SSH) sends text whose first 8 bytes
    read as an absurd length: dask would try to allocate it (``Unable to allocate 3.01 EiB``).
    Raises :class:`NotAScheduler` for such an answer, OSError for none within ``timeout``.
    """
    import socket

    host, _, port = address.partition("://")[2].rpartition(":")
    data = b""
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            while len(data) < 8:
                chunk = sock.recv(8 - len(data))
                if not chunk:
                    break
                data += chunk
    except (TimeoutError, socket.timeout):
        if not data:
            raise OSError(f"the dask scheduler at {address} did not answer within {timeout:g} s "
                          f"(is it a dask scheduler? --scheduler-timeout to wait longer)") from None
    except OSError as exc:
        raise OSError(f"cannot connect to the dask scheduler at {address}: {exc.strerror or exc}") from None
    size = int.from_bytes(data, "little") if len(data) == 8 else 0
    if not 0 < size <= MAX_HANDSHAKE_BYTES:
        seen = f"it sent {data[:8]!r}" if data else "it closed the connection without a word"
        raise NotAScheduler(f"{address} is not a dask scheduler ({seen}; a scheduler starts with the length "
                            f"of its handshake): check the address and port of --scheduler")


def _handshake(address: str, timeout: float) -> None:
    """Connect to the scheduler and read its handshake within ``timeout`` seconds, or raise OSError.

    ``distributed.Client(timeout=...)`` bounds the TCP connect but not the handshake that follows,
    so a port that accepts and never answers would hang it forever.
    """
    from distributed.comm import connect

    if address.startswith("tcp://"):
        _probe(address, timeout)

    async def probe() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    try:
        asyncio.run(probe())
    except (asyncio.TimeoutError, TimeoutError):
        raise OSError(f"the dask scheduler at {address} did not answer within {timeout:g} s "
                      f"(is it a dask scheduler? --scheduler-timeout to wait longer)") from None
    except OSError as exc:
        raise OSError(f"cannot connect to the dask scheduler at {address}: {exc}") from None
    except (MemoryError, ValueError, TypeError, KeyError) as exc:  # its answer could not be read as dask's
        raise NotAScheduler(f"{address} is not a dask scheduler (its answer cannot be read as a dask "
                            f"handshake: {type(exc).__name__}): check the address and port of --scheduler") from None


def _init_worker(parent: int) -> None:
    """Worker initializer: Ctrl-C is the parent's business (it stops the pool), and the worker dies
    with its parent — a parent killed with SIGKILL cannot stop its pool, and orphaned workers would
    go on computing (and keep multiprocessing's resource tracker alive) for nobody.

    The watch polls ``os.getppid()`` (the worker is re-parented when the parent dies) rather than
    using Linux's PR_SET_PDEATHSIG, which fires when the *thread* that started the worker ends:
    calibrate submits from feeding threads, and the pool starts workers in the submitting thread.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), name="launderflow-parent-watch", daemon=True).start()


def _watch_parent(parent: int, every: float = 0.5) -> None:
    """Exit the worker as soon as its parent is gone."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


class _NoMainPopen(popen_spawn_posix.Popen):
    """A spawned worker that does not re-run the calling script: multiprocessing's spawn imports the
    parent's ``__main__`` in every worker, so a plain script calling ``lf.run(..., jobs=2)`` at its
    top level would run again in each worker (and fail there on the writer lock). The workers need
    only launderflow, which every task names by module."""

    _patch = threading.Lock()

    def _launch(self, process_obj: Any) -> None:
        original = spawn.get_preparation_data

        def without_main(name: str) -> dict[str, Any]:
            data = original(name)
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
            return data

        with self._patch:  # (the pool may start workers from several threads)
            spawn.get_preparation_data = without_main
            try:
                super()._launch(process_obj)
            finally:
                spawn.get_preparation_data = original


class _NoMainProcess(multiprocessing.context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _NoMainPopen(process_obj)


class _NoMainContext(multiprocessing.context.SpawnContext):
    Process = _NoMainProcess


def _main_needed() -> bool:
    """A class the calling script registered (a venue kind, say) exists only if workers run the script."""
    from ..model.registry import Registry

    return any(cls.__module__ in ("__main__", "__mp_main__") for registry in Registry.instances
               for cls in registry.classes())


def _spawn_context() -> multiprocessing.context.BaseContext:
    """Spawned workers (never fork: the parent may hold threads and locks), which import the calling
    script only when it registered classes of its own (then it needs ``if __name__ == "__main__":``)."""
    if sys.platform == "win32" or _main_needed():
        return multiprocessing.get_context("spawn")
    return _NoMainContext()


class DaskExecutor(Executor):
    """A dask.distributed client's ``get_executor()`` that names each replication's task.

    ``Client.submit`` is ``pure=True`` by default and merges calls it deems identical; here every
    :class:`Task` is submitted under its own key (scenario content + seed + index), so no two
    replications are merged and the same replication submitted twice is computed once.
    """

    def __init__(self, client: Any):
        self.client = client
        self._inner = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if kwargs:
            raise TypeError("DaskExecutor.submit takes positional arguments only")
        key = getattr(args[0], "key", "") if args else ""
        return self._inner.submit(fn, *args, **({"key": key} if key else {}))  # these kwargs go to Client.submit

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait and not cancel_futures)


def _wait_for_workers(client: Any, address: str, timeout: float, note: Callable[[str], None] | None) -> None:
    """Return once the scheduler has a worker; say so while waiting, give up (OSError) after ``timeout``.

    A scheduler without workers accepts tasks and never runs them: without this a run would wait
    in silence for ever."""
    if client.scheduler_info().get("workers"):
        return
    (note or _stderr)(f"waiting for workers: the dask scheduler at {address} has none yet "
                      f"(up to {timeout:g} s, --scheduler-timeout)")
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, asyncio.TimeoutError):
        raise OSError(f"the dask scheduler at {address} has no workers: none joined within {timeout:g} s "
                      f"(start dask workers for it, or --scheduler-timeout to wait longer)") from None


def _stderr(text: str) -> None:
    import sys

    print(text, file=sys.stderr, flush=True)


@contextmanager
def open_executor(jobs: int = 1, scheduler: str | None = None, timeout: float | None = None,
                  note: Callable[[str], None] | None = None) -> Iterator[Executor | None]:
    """The executor for ``--jobs``/``--scheduler``: None (in process), a process pool, or a dask cluster.

    A local pool's workers ignore Ctrl-C; when the block is left by an exception (Ctrl-C included)
    the pool is stopped at once, without waiting for the replications in flight. Connecting to a
    scheduler takes at most ``timeout`` seconds (default: :data:`scheduler_timeout`), else OSError
    (:class:`NotAScheduler` when the service there is not a dask scheduler); so does waiting for a
    scheduler without workers to get one (``note``, default stderr, says that it waits).
    """
    if scheduler:
        from distributed import Client

        try:
            address = check_scheduler_address(scheduler)
        except ValueError as exc:
            raise OSError(str(exc)) from None
        timeout = scheduler_timeout.get() if timeout is None else timeout
        _handshake(address, timeout)
        try:
            client = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot connect to the dask scheduler at {address}: {exc}") from None
        try:
            _wait_for_workers(client, address, timeout, note)
        except BaseException:
            client.close()
            raise
        executor = DaskExecutor(client)
        try:
            yield executor
        finally:
            executor.shutdown(wait=False)
            client.close()
        return
    if jobs <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_spawn_context(),
                               initializer=_init_worker, initargs=(os.getpid(),))
    finished = False
    try:
        yield pool
        finished = True
    finally:
        if finished:
            pool.shutdown()
        else:
            _stop(pool)


def _stop(pool: ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())  # private, but stable since 3.8
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(timeout=5)
