"""Files on remote storage (``az://`` Azure Blob, ``s3://`` S3, any fsspec URL) as inputs.

Three jobs, all through fsspec (parallelrun adds no storage layer of its own):

* **Listing** (coordinator): :func:`iter_remote_entries` names the files of a folder or glob in
  the same deterministic order as local listing (each folder's entries sorted by name,
  subfolders entered where their name falls), one folder listing at a time, so planning starts
  before a big tree is listed. A missing container or bucket, refused credentials and a missing
  package become :class:`~parallelrun.errors.StorageError` naming the URL and the fix.
* **Fetching** (workers): :class:`RemoteFileList` is the payload of a remote file mini-batch.
  Its ``load()`` downloads the files into a local cache and returns local paths, so ``run()``
  gets what it gets for local files. Its ``prefetch()`` is called by the worker as soon as the
  mini-batch is queued there (the scheduler queues mini-batches ahead), so the next mini-batch
  downloads while the current one runs.
* **Copying trees** (coordinator): :func:`upload_tree` / :func:`download_tree` for outputs and
  logs staged locally (``parallelrun.engine.staging``).

The worker's cache (:class:`_Cache`) is bounded: at most ``PARALLELRUN_PREFETCH`` mini-batches
(default 2; 0 turns prefetching off) are fetched ahead, and only while the files held stay under
``PARALLELRUN_CACHE_BYTES`` (default 2 GiB); the mini-batch being loaded is always fetched. A
mini-batch's files are deleted when the worker loads the next one (its ``run()`` has returned),
and the whole folder at worker exit; folders of workers that died without cleaning up are
removed by the next worker that starts a cache, and by the coordinator at the end of the job.
The cache lives under ``PARALLELRUN_CACHE_DIR`` (default: the system's temporary folder).

Storage options (credentials, endpoints) travel with each payload, resolved on the coordinator
from the datastore; a payload's ``repr`` never shows them.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import fnmatch
import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from typing import Any, Iterator, NamedTuple

from parallelrun.config import JOB_MARKER_NAME
# the URL rule's owner is data/urls.py; is_remote is also asked here as remote.is_remote
from parallelrun.data.urls import is_remote, split_url  # noqa: F401
from parallelrun.errors import StorageError

log = logging.getLogger("parallelrun.remote")

#: URL scheme -> the parallelrun extra that installs its fsspec implementation
EXTRAS = {"az": "azure", "abfs": "azure", "abfss": "azure", "s3": "s3", "s3a": "s3"}
_MAGIC = re.compile(r"[*?\[]")


class RemoteFile(NamedTuple):
    """One listed file: its URL, size in bytes, and a version tag (etag, else modified time)."""

    url: str
    size: int
    tag: str


# Storage options registered for URL prefixes -----------------------------------------------------
# Datastore paths carry their options (DataPath.storage_options, a dataset's sources, each
# payload); a plain URL string (`parallelrun run --input az://...`, a dataset registered from
# a URL) finds them here. Such a URL names a container or bucket but not the account or
# endpoint, so each entry also says where its storage is (its *location*: account URL or
# endpoint, and container or bucket): two accounts with a container of one name are two
# locations, and a URL under both is refused as ambiguous, never read with either's
# credentials. Entries are kept per owner (a datastore), so registering it again replaces its own.
class _Registration(NamedTuple):
    prefix: str
    location: str
    options: Any            # a dict, or a callable returning one when used
    name: str               # what an error calls it ("datastore 'mnist'")
    hint: str               # how to name this storage without ambiguity ("{path}" for the rest)


_REGISTERED: dict[str, _Registration] = {}  # owner -> its registration, latest last


def register_storage_options(prefix: str, options: Any, *, location: str | None = None,
                             owner: str | None = None, name: str | None = None,
                             hint: str = "") -> None:
    """Use ``options`` (a dict, or a callable returning one at use) for URLs under ``prefix``.

    ``location`` says where the storage is (``http://127.0.0.1:10000/devstoreaccount1/data``);
    the default, ``prefix``, treats every registration of one prefix as the same storage.
    ``owner`` identifies who registers (a datastore of a workspace), so registering again
    replaces its entry; ``name`` is what errors call it and ``hint`` what an ambiguity error
    offers instead of the plain URL (``{path}`` stands for the URL's rest below ``prefix``).

    Example: ``register_storage_options("az://sampledata/", lambda: {"account_name": ...},
    location="https://pipelinedata.blob.core.windows.net/sampledata")``.
    """
    prefix = prefix.rstrip("/") + "/"
    location = location or prefix
    owner = owner or f"{prefix} at {location}"
    _REGISTERED.pop(owner, None)
    _REGISTERED[owner] = _Registration(prefix, location, options, name or prefix, hint)


def forget_storage_options(owner: str) -> None:
    """Drop what ``owner`` registered (a datastore that was unregistered)."""
    _REGISTERED.pop(owner, None)


def registered_storage_options(url: str) -> dict | None:
    """Options registered for the longest prefix of ``url``, or None.

    A :class:`~parallelrun.errors.StorageError` when that prefix belongs to two locations (a
    container of that name on two accounts): the URL alone cannot say whose credentials apply.
    """
    under = [entry for entry in _REGISTERED.values() if (url + "/").startswith(entry.prefix)]
    if not under:
        return None
    longest = max(len(entry.prefix) for entry in under)
    # one entry per location, the latest registered (same storage, newest credentials)
    by_location = {entry.location: entry for entry in under if len(entry.prefix) == longest}
    if len(by_location) > 1:
        rest = url[longest:]
        where = ", ".join(f"{entry.name} ({entry.location})" for entry in by_location.values())
        fixes = "; ".join(entry.hint.replace("{path}", rest) for entry in by_location.values()
                          if entry.hint)
        raise StorageError(f"{url!r} is under {len(by_location)} storage locations: {where}. A "
                           "plain URL names the container or bucket but not the account or "
                           f"endpoint; name the datastore instead{': ' + fixes if fixes else ''}")
    options = next(iter(by_location.values())).options
    return dict(options() if callable(options) else options)


def filesystem(url: str, storage_options: dict | None = None):
    """The fsspec filesystem for ``url`` (and the path without its scheme).

    Listings are never cached: a listing must show the data as it is now (dataset fingerprints,
    outputs written by earlier steps).
    """
    import fsspec

    scheme, path = split_url(url)
    options = storage_options if storage_options is not None else registered_storage_options(url)
    options = {"use_listings_cache": False, **(options or {})}
    if scheme == "file":
        options["auto_mkdir"] = True  # as object stores do: writing a file makes its folders
    try:
        return fsspec.filesystem(scheme, **options), path
    except ImportError as exc:
        extra = EXTRAS.get(scheme)
        hint = f"pip install 'parallelrun[{extra}]'" if extra else f"install the fsspec " \
            f"implementation of {scheme}://"
        raise StorageError(f"reading {url!r} needs a package that is not installed "
                           f"({exc.name or exc}); {hint}") from exc
    except ValueError as exc:
        # e.g. adlfs: no account name or connection string
        raise StorageError(f"cannot connect to {url!r}: {redact(str(exc))}. Register a datastore "
                           "with its credentials and use datastore.path(...)") from None


_SECRET_IN_TEXT = re.compile(
    r"(AccountKey|SharedAccessSignature|sig|secret_access_key|SecretAccessKey|key|secret|token)"
    r"(=|': '|\": \")([^;&\s'\"]+)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with values of secret-looking fields (``AccountKey=``, ``sig=``...) hidden:
    libraries echo connection strings and signed URLs in their error messages."""
    return _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def storage_error(exc: BaseException, url: str, action: str) -> StorageError:
    """Translate a storage library's exception into a StorageError that says what to fix.

    Raise it ``from None``: the library's own message may hold a signed URL or a connection
    string, and a chained traceback would print it (into the job's error logs, too).
    """
    if isinstance(exc, StorageError):
        return exc
    text = redact(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
    status = code = None
    cause: BaseException | None = exc
    for _ in range(5):  # libraries wrap the service's error (adlfs: ValueError from ...)
        if cause is None:
            break
        status = status or getattr(cause, "status_code", None) or _s3_status(cause)
        code = code or getattr(cause, "error_code", None) or _s3_code(cause)
        cause = cause.__cause__ or cause.__context__
    code = getattr(code, "value", code)  # azure's StorageErrorCode enum
    auth_codes = {"AuthenticationFailed", "AuthorizationFailure", "InvalidAccessKeyId",
                  "SignatureDoesNotMatch", "AccessDenied", "InvalidAuthenticationInfo",
                  "AuthorizationPermissionMismatch", "ExpiredToken", "InvalidToken"}
    if isinstance(exc, PermissionError) or status in (401, 403) or str(code) in auth_codes \
            or type(exc).__name__ == "ClientAuthenticationError":
        return StorageError(f"{action} {url!r}: the storage refused the credentials ({code or text}). "
                            "Check the datastore's account key / SAS token / access keys (or "
                            "the environment variable it reads them from) and register it again "
                            "with overwrite=True")
    if isinstance(exc, FileNotFoundError):
        return StorageError(f"{action} {url!r}: not found ({text})")
    if isinstance(exc, (ConnectionError, TimeoutError)) or "connect" in text.lower():
        return StorageError(f"{action} {url!r}: cannot reach the storage service ({text}); check "
                            "the endpoint and the network")
    return StorageError(f"{action} {url!r} failed: {type(exc).__name__}: {text}")


def _s3_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


def _s3_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        return _s3_code(cause)
    return None


# Listing ----------------------------------------------------------------------------------------
def _tag(info: dict) -> str:
    for key in ("etag", "ETag", "last_modified", "LastModified", "mtime", "created"):
        value = info.get(key)
        if value:
            return str(value).strip('"')
    return ""


def _entries(fs, path: str) -> list[dict]:
    """One folder's entries sorted by name; the folder itself (S3 folder markers) left out."""
    path = path.rstrip("/")
    entries = [e for e in fs.ls(path, detail=True) if e["name"].rstrip("/") != path]
    entries.sort(key=lambda e: e["name"])
    return entries


def _walk(fs, path: str) -> Iterator[dict]:
    for entry in _entries(fs, path):
        if entry.get("type") == "directory":
            yield from _walk(fs, entry["name"])
        else:
            yield entry


def _name(entry: dict) -> str:
    return entry["name"].rstrip("/").rsplit("/", 1)[-1]


def _match(fs, base: str, parts: list[str]) -> Iterator[dict]:
    """Entries under ``base`` matching the glob components ``parts`` (local listing's rules)."""
    try:
        entries = _entries(fs, base)
    except FileNotFoundError:
        return
    part, rest = parts[0], parts[1:]
    if part == "**":
        for entry in entries:
            if not rest:
                yield from _walk(fs, entry["name"]) if entry.get("type") == "directory" else (entry,)
                continue
            # name by name, so the order stays sorted: ``rest`` matched here (zero folders
            # deep), then ``**/rest`` inside the folder of that name
            yield from _match_entries(fs, [entry], rest)
            if entry.get("type") == "directory" and not _name(entry).startswith("."):
                yield from _match(fs, entry["name"], parts)
        return
    yield from _match_entries(fs, entries, parts)


def _match_entries(fs, entries: list[dict], parts: list[str]) -> Iterator[dict]:
    part, rest = parts[0], parts[1:]
    if _MAGIC.search(part):
        regex = re.compile(fnmatch.translate(part))
        hide = not part.startswith(".")  # as shell globs do, wildcards skip hidden names
        entries = [e for e in entries
                   if regex.match(_name(e)) and not (hide and _name(e).startswith("."))]
    else:
        entries = [e for e in entries if _name(e) == part]
    for entry in entries:
        is_dir = entry.get("type") == "directory"
        if rest:
            if is_dir:
                yield from _match(fs, entry["name"], rest)
        elif not is_dir:
            yield entry


def _missing_root_error(url: str, path: str, storage_options: dict | None) -> StorageError | None:
    """A clear error when the container/bucket itself is missing (naming those that exist);
    None when it exists. Refused credentials raise their own StorageError."""
    import fsspec

    scheme = split_url(url)[0]
    root = path.split("/", 1)[0]
    what = "container" if scheme in ("az", "abfs", "abfss") else "bucket"
    fs, _ = filesystem(url, storage_options)
    try:
        if fs.exists(root):  # one cheap request on the usual path
            return None
    except Exception:  # noqa: BLE001 - e.g. a container SAS may list blobs but not read properties
        pass
    try:
        # s3fs answers False for refused credentials too: a listing tells them apart
        fs.ls(root, detail=False)
        return None
    except FileNotFoundError:
        pass
    except Exception as check:  # noqa: BLE001 - credentials refused etc.
        return storage_error(check, url, "listing")
    options = storage_options if storage_options is not None else registered_storage_options(url)
    try:
        # a listing of the account's containers/buckets (adlfs lists them only with its cache on)
        lister = fsspec.filesystem(scheme, skip_instance_cache=True, **(options or {}))
        roots = sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in lister.ls("", detail=False))
        there = ", ".join(roots) or "none"
    except Exception:  # noqa: BLE001 - listing containers may need more rights than reading one
        there = "unknown (the credentials cannot list them)"
    return StorageError(f"{what} {root!r} of {url!r} does not exist ({what}s there: {there}); "
                        f"create it or fix the datastore's {what} name")


def iter_remote_entries(spec: str, storage_options: dict | None = None) -> Iterator[RemoteFile]:
    """The files ``spec`` (a URL of a file, folder or glob) names, in deterministic order.

    Example::

        for f in iter_remote_entries("az://data/images/*.png", {"connection_string": cs}):
            print(f.url, f.size)
    """
    fs, path = filesystem(spec, storage_options)
    scheme = split_url(spec)[0]
    try:
        if _MAGIC.search(path):
            parts = path.split("/")
            fixed = list(itertools.takewhile(lambda p: not _MAGIC.search(p), parts))
            base, rest = "/".join(fixed), parts[len(fixed):]
            if rest and rest[-1] == "":
                rest = rest[:-1]
            missing = _missing_root_error(spec, path, storage_options)
            if missing is not None:
                raise missing
            entries = _match(fs, base, rest)
        else:
            stripped = path.rstrip("/")
            try:
                info = fs.info(stripped)
            except FileNotFoundError as exc:
                missing = _missing_root_error(spec, stripped, storage_options)
                if missing is not None:
                    raise missing from None
                return
            entries = _walk(fs, stripped) if info.get("type") == "directory" else iter([info])
        for entry in entries:
            if _name(entry) == JOB_MARKER_NAME:
                continue  # a job's bookkeeping (engine/job_folders.py), never data
            yield RemoteFile(f"{scheme}://{entry['name']}", int(entry.get("size") or 0), _tag(entry))
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - translated at this boundary
        raise storage_error(exc, spec, "listing") from None


def iter_remote_files(spec: str, storage_options: dict | None = None) -> Iterator[str]:
    """URLs of the files ``spec`` names, in deterministic order."""
    for entry in iter_remote_entries(spec, storage_options):
        yield entry.url


def local_entry(path: str) -> RemoteFile:
    """A local file as a listing entry (size and modification time) for fingerprints."""
    st = os.stat(path)
    return RemoteFile(path, st.st_size, str(st.st_mtime_ns))


# Copying trees ------------------------------------------------------------------------------------
def upload_tree(local_dir: str, url: str, storage_options: dict | None = None) -> int:
    """Copy every file under ``local_dir`` to the folder ``url``; returns the count."""
    fs, root = filesystem(url, storage_options)
    root = root.rstrip("/")
    sources, targets = [], []
    for folder, _, files in os.walk(local_dir):
        for name in sorted(files):
            source = os.path.join(folder, name)
            rel = os.path.relpath(source, local_dir).replace(os.sep, "/")
            sources.append(source)
            targets.append(f"{root}/{rel}")
    if not sources:
        return 0
    try:
        fs.put(sources, targets)
    except Exception as exc:  # noqa: BLE001
        missing = _missing_root_error(url, root, storage_options) \
            if isinstance(exc, FileNotFoundError) else None
        raise (missing or storage_error(exc, url, "uploading to")) from None
    return len(sources)


def download_tree(url: str, local_dir: str, storage_options: dict | None = None, *,
                  overwrite: bool = False) -> int:
    """Copy every file under the folder ``url`` into ``local_dir``; returns the count.

    A file that is already in ``local_dir`` is a StorageError unless ``overwrite``, raised
    before anything is copied.
    """
    fs, root = filesystem(url, storage_options)
    root = root.rstrip("/")
    try:
        if not fs.exists(root):
            return 0
        copies = []  # (source, target), all known before anything is copied
        for entry in _walk(fs, root):
            relative = entry["name"][len(root):].lstrip("/")
            copies.append((entry["name"], os.path.join(local_dir, *relative.split("/"))))
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, url, "downloading") from None
    existing = [target for _, target in copies if os.path.exists(target)] if not overwrite else []
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise StorageError(f"{existing[0]!r}{more} exists; pass overwrite=True to replace it, or "
                           "download into an empty folder")
    try:
        for source, target in copies:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fs.get_file(source, target)
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, url, "downloading") from None
    return len(copies)


# The payload and the worker's cache ---------------------------------------------------------------
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
