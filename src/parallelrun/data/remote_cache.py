"""The workers' side of remote inputs: :class:`RemoteFileList`, the payload of a remote file
mini-batch, and the per-process download cache that fetches it.

``RemoteFileList.load()`` downloads the files into a local cache and returns local paths, so
``run()`` gets what it gets for local files. Its ``prefetch()`` is called by the worker as soon
as the mini-batch is queued there (the scheduler queues mini-batches ahead), so the next
mini-batch downloads while the current one runs.

The worker's cache (:class:`_Cache`) is bounded: at most ``PARALLELRUN_PREFETCH`` mini-batches
(default 2; 0 turns prefetching off) are fetched ahead, and only while the files held stay under
``PARALLELRUN_CACHE_BYTES`` (default 2 GiB); the mini-batch being loaded is always fetched. A
mini-batch's files are deleted when the worker loads the next one (its ``run()`` has returned),
and the whole folder at worker exit; folders of workers that died without cleaning up are
removed by the next worker that starts a cache (:func:`sweep_stale_caches`), and by the
coordinator at the end of the job. The cache lives under ``PARALLELRUN_CACHE_DIR`` (default:
the system's temporary folder).

Storage options (credentials, endpoints) travel with each payload, resolved on the coordinator
from the datastore; a payload's ``repr`` never shows them.

Separate from listing and copying trees (coordinator jobs): this is what a worker process runs,
with its own threads, bounds and clean-up. Callers import these names from
:mod:`parallelrun.data.remote`.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
import time

from parallelrun.data.remote_storage import filesystem, storage_error
from parallelrun.data.urls import split_url
from parallelrun.errors import StorageError

log = logging.getLogger("parallelrun.remote")


class RemoteFileList:
    """Payload of a remote file mini-batch: URLs, fetched to local paths inside the worker.

    ``load()`` returns local paths in the order of the URLs; each keeps its file name, so
    ``os.path.basename(path)`` is the remote file's name.
    """

    __slots__ = ("urls", "sizes", "storage_options")

    def __init__(self, urls: list[str], sizes: list[int], storage_options: dict | None):
        self.urls = urls
        self.sizes = sizes
        self.storage_options = storage_options

    def load(self) -> list[str]:
        return _cache().load(self)

    def prefetch(self) -> None:
        """Start fetching this mini-batch in the background (bounded; may do nothing)."""
        _cache().prefetch(self)

    def names(self) -> list[str]:
        return self.urls

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(self.urls)

    def __getstate__(self):
        return (self.urls, self.sizes, self.storage_options)

    def __setstate__(self, state):
        self.urls, self.sizes, self.storage_options = state

    def __repr__(self) -> str:  # never the storage options: they hold secrets
        return f"RemoteFileList({len(self.urls)} files, first {self.urls[0] if self.urls else None!r})"


def cache_base() -> str:
    base = os.environ.get("PARALLELRUN_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), f"parallelrun-cache-{os.getuid() if hasattr(os, 'getuid') else 0}")
    return base


def _pid_alive(pid: int) -> bool:
    # os.kill(pid, 0), not psutil.pid_exists: this runs in workers, whose environment need not
    # hold psutil (pipeline/environment_build.WORKER_REQUIREMENTS)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def sweep_stale_caches(base: str | None = None) -> int:
    """Remove cache folders of worker processes that are gone; returns how many."""
    base = base or cache_base()
    removed = 0
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        match = re.match(r"^w(\d+)-", name)
        if match and not _pid_alive(int(match.group(1))):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed += 1
    return removed


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class _Fetch:
    __slots__ = ("future", "folder", "bytes")

    def __init__(self, future, folder: str, size: int):
        self.future = future
        self.folder = folder
        self.bytes = size


class _Cache:
    """One worker process's download cache (see the module docstring for its bounds)."""

    def __init__(self):
        self.ahead = max(0, _env_int("PARALLELRUN_PREFETCH", 2))
        self.max_bytes = max(0, _env_int("PARALLELRUN_CACHE_BYTES", 2 * 1024 ** 3))
        base = cache_base()
        os.makedirs(base, exist_ok=True)
        sweep_stale_caches(base)
        self.root = tempfile.mkdtemp(prefix=f"w{os.getpid()}-", dir=base)
        # one fetch for the mini-batch being loaded and `ahead` more, each an fsspec batch call
        # that is concurrent by itself for async filesystems (adlfs, s3fs)
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.ahead + 1, thread_name_prefix="parallelrun-fetch")
        self.fetches: "collections.OrderedDict[tuple, _Fetch]" = collections.OrderedDict()
        self.current: tuple | None = None
        self.lock = threading.Lock()
        self.counter = itertools.count()
        self.prefetched_hits = 0
        atexit.register(self.close)

    def held_bytes(self) -> int:
        return sum(f.bytes for f in self.fetches.values())

    def prefetch(self, payload: RemoteFileList) -> None:
        if not self.ahead:
            return
        with self.lock:
            if payload.key in self.fetches:
                return
            waiting = sum(1 for key in self.fetches if key != self.current)
            size = sum(payload.sizes)
            if waiting >= self.ahead or self.held_bytes() + size > self.max_bytes:
                return  # over the bounds: it is fetched when loaded
            self._start(payload, size)

    def _start(self, payload: RemoteFileList, size: int) -> _Fetch:
        folder = os.path.join(self.root, str(next(self.counter)))
        fetch = _Fetch(self.pool.submit(_download, payload, folder), folder, size)
        self.fetches[payload.key] = fetch
        return fetch

    def load(self, payload: RemoteFileList) -> list[str]:
        with self.lock:
            # the previous mini-batch's run() has returned: its files can go
            if self.current is not None and self.current != payload.key:
                self._drop(self.current)
            self.current = payload.key
            fetch = self.fetches.get(payload.key)
            ahead = fetch is not None
            if fetch is None:
                fetch = self._start(payload, sum(payload.sizes))
            elif fetch.future.done():
                self.prefetched_hits += 1
        started = time.perf_counter()
        try:
            paths = fetch.future.result()
            log.debug("%d files ready after %.4f s (%s)", len(paths), time.perf_counter() - started,
                      "fetch started ahead" if ahead else "fetched on load")
            return paths
        except BaseException:
            with self.lock:
                self._drop(payload.key)
                self.current = None
            raise

    def _drop(self, key: tuple) -> None:
        fetch = self.fetches.pop(key, None)
        if fetch is not None:
            try:
                fetch.future.result()  # a fetch still running would write after the delete
            except BaseException:  # noqa: BLE001 - its error was reported to its load()
                pass
            shutil.rmtree(fetch.folder, ignore_errors=True)

    def close(self) -> None:
        # no waiting for a download in flight: the process is exiting and must not hang on it
        self.pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _download(payload: RemoteFileList, folder: str) -> list[str]:
    fs = None
    locals_: list[str] = []
    remotes: list[str] = []
    for url in payload.urls:
        scheme, path = split_url(url)
        # keep the remote path below the folder: names stay unique and keep their basename
        target = os.path.join(folder, *[p for p in path.split("/") if p not in ("", ".", "..")])
        locals_.append(target)
        remotes.append(path)
    for target in locals_:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        fs, _ = filesystem(payload.urls[0], payload.storage_options)
        fs.get(remotes, locals_)
    except Exception as exc:  # noqa: BLE001
        shutil.rmtree(folder, ignore_errors=True)
        failed = next((u for u, t in zip(payload.urls, locals_) if not os.path.exists(t)),
                      payload.urls[0])
        raise storage_error(exc, failed, "downloading") from None
    missing = [u for u, t in zip(payload.urls, locals_) if not os.path.isfile(t)]
    if missing:
        shutil.rmtree(folder, ignore_errors=True)
        raise StorageError(f"downloading {missing[0]!r}: the file is gone from the storage "
                           f"({len(missing)} of {len(payload.urls)} files of this mini-batch)")
    return locals_


_CACHE: _Cache | None = None
_CACHE_LOCK = threading.Lock()


def _cache() -> _Cache:
    global _CACHE
    if _CACHE is None:
        with _CACHE_LOCK:
            if _CACHE is None:
                _CACHE = _Cache()
    return _CACHE
