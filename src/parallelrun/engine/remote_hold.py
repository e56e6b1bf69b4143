"""A job's hold on its output and log folders on a datastore: one job per folder, as locally.

A local folder is locked with ``flock`` on its marker (engine/job_folders.py), which the
kernel releases when the job's process dies. A datastore has no such lock, and a job with a
remote output writes there only now and then (engine/staging.py uploads its staged files), so
without a hold two jobs into one ``az://`` or ``s3://`` folder would both run, and each upload
would replace the other job's results and logs.

The hold is a small JSON object, ``.parallelrun.lock``, in the folder: who holds it (host, pid,
start time), where it stages its files, and when it last said so. The holder rewrites it every
``BEAT_SECONDS`` while the job runs and removes it when the job's files are uploaded. Another
job finding a hold refuses (:class:`~parallelrun.errors.FolderInUseError`), unless the hold is
stale: not renewed for ``STALE_SECONDS``, or left by a process of this machine that is gone (a
job killed with ``kill -9``: its resume is not kept waiting, and finds the dead job's staged
files through ``left_behind``). Two jobs that take a free folder in the same instant are told
apart by reading the hold back after ``SETTLE_SECONDS``: the last writer keeps it, the other
refuses. A holder that finds its hold taken over (its renewals failed for longer than a hold
lasts) stops writing there (``check``). Listings never name the hold (``data/globbing.py``),
nor do downloads.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

from parallelrun.config import JOB_LOCK_NAME
from parallelrun.errors import FolderInUseError, ParallelRunError, StorageError

log = logging.getLogger("parallelrun.staging")

#: seconds between two renewals of a hold while its job runs
BEAT_SECONDS = 20.0
#: a hold not renewed for this long is left by a job that is gone
STALE_SECONDS = 3 * BEAT_SECONDS
#: seconds between writing a hold and reading it back (two jobs taking a folder at once)
SETTLE_SECONDS = 0.5


class RemoteHold:
    """The hold of one job on datastore folders; ``with RemoteHold(folders, stage):`` holds them.

    ``folders`` are ``(url, storage options)`` pairs: the job's remote output and log folders;
    ``stage`` is the local folder where the job writes them until they are uploaded. A hold
    taken over from a job that died on this machine keeps where that job staged its files in
    ``left_behind``: its finished work, never uploaded (engine/staging.py resumes from it).
    """

    def __init__(self, folders: list[tuple[str, dict | None]], stage: str | None = None):
        # the output and log folders may be one: held once
        self.folders = list({url.rstrip("/"): (url, options) for url, options in folders}.values())
        self.record = {"host": socket.gethostname(), "pid": os.getpid(),
                       "started": time.strftime("%Y-%m-%d %H:%M:%S"), "id": uuid.uuid4().hex,
                       "stage": stage}
        self.left_behind: str | None = None
        self._previous: dict[str, dict] = {}          # path of a hold taken over -> its record
        self._giving_back = False
        self._held: list[tuple[object, str]] = []    # (filesystem, path of the hold)
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        #: the job that took the hold over while this one ran (its renewals failed for longer
        #: than a hold lasts), if one did: this job must not write there any more
        self.lost_to: str | None = None

    def __enter__(self) -> "RemoteHold":
        from parallelrun.data import remote

        try:
            for url, options in self.folders:
                fs, root = remote.filesystem(url, options)
                path = f"{root.rstrip('/')}/{JOB_LOCK_NAME}"
                try:
                    self._refuse_if_held(fs, path, url)
                    self._write(fs, path)
                except ParallelRunError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a missing container, refused keys...
                    missing = remote._missing_root_error(url, root, options)
                    raise (missing or remote.storage_error(exc, url, "holding")) from None
                self._held.append((fs, path))
            time.sleep(SETTLE_SECONDS)
            for (fs, path), (url, _) in zip(self._held, self.folders):
                holder = self._other_holder(fs, path)
                if holder is not None:
                    raise FolderInUseError(url, _describe(holder))   # theirs: _release keeps it
        except BaseException:
            self._release()
            raise
        self._beat = threading.Thread(target=self._renew, name="parallelrun-remote-hold",
                                      daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        self._release()

    def _refuse_if_held(self, fs, path: str, url: str) -> None:
        holder = _read(fs, path)
        if holder is None:
            return
        if _stale(holder):
            log.warning("%s: taking over the hold of a job that is gone (%s)", url,
                        _describe(holder))
            if holder.get("host") == self.record["host"] and holder.get("stage"):
                self.left_behind = str(holder["stage"])
            self._previous[path] = holder
            return
        raise FolderInUseError(url, _describe(holder))

    def give_back(self) -> None:
        """Leave the holds taken over as they were when this one ends (a job refused before any
        work: the hold of the dead job still says where its work is)."""
        self._giving_back = True

    def restage(self, stage: str) -> None:
        """Say that the job's files are staged in ``stage`` now (a job resumed from the files
        of one that died: if it dies too, its own resume finds them there)."""
        self.record["stage"] = stage
        for fs, path in self._held:
            self._write(fs, path)

    def _write(self, fs, path: str) -> None:
        fs.pipe_file(path, json.dumps({**self.record, "beat": time.time()}).encode())

    def _renew(self) -> None:
        while not self._stop.wait(BEAT_SECONDS) and self.lost_to is None:
            for fs, path in list(self._held):
                try:
                    holder = self._other_holder(fs, path)
                    if holder is not None:
                        self.lost_to = _describe(holder)
                        log.error("%s was taken over by %s: this job's files stay local",
                                  path, self.lost_to)
                        return
                    self._write(fs, path)
                except Exception as exc:  # noqa: BLE001 - the job goes on; the next beat retries
                    log.warning("could not renew the hold %s: %s", path, exc)

    def check(self) -> None:
        """Raise StorageError if another job took the hold over (see ``lost_to``): asked before
        each upload, so it reads the hold again rather than wait for the next renewal."""
        for fs, path in list(self._held):
            if self.lost_to is not None:
                break
            try:
                holder = self._other_holder(fs, path)
            except Exception:  # noqa: BLE001 - unreadable now: the upload will say why
                continue
            if holder is not None:
                self.lost_to = _describe(holder)
        if self.lost_to is not None:
            raise StorageError(f"another job took over the folder while this one ran: "
                               f"{self.lost_to} (this job's renewals of its hold failed for "
                               f"over {STALE_SECONDS:.0f} s); nothing of this job's was written "
                               "there since")

    def _other_holder(self, fs, path: str) -> dict | None:
        """The record of another job that holds ``path`` now; None when it is ours, or none."""
        holder = _read(fs, path)
        return holder if holder is not None and holder.get("id") != self.record["id"] else None

    def _release(self) -> None:
        for fs, path in self._held:
            try:
                holder = _read(fs, path)
                if holder is None or holder.get("id") != self.record["id"]:
                    continue
                if self._giving_back and path in self._previous:
                    fs.pipe_file(path, json.dumps(self._previous[path]).encode())
                else:
                    fs.rm_file(path)
            except Exception as exc:  # noqa: BLE001 - a stale hold is taken over later
                log.warning("could not remove the hold %s: %s", path, exc)
        self._held.clear()


def _read(fs, path: str) -> dict | None:
    try:
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except ValueError:   # cut short: a holder that died while writing it
        return {"beat": 0}


def _stale(holder: dict) -> bool:
    if time.time() - float(holder.get("beat") or 0) > STALE_SECONDS:
        return True
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder.get("pid") or 0), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False
    return False


def _describe(holder: dict) -> str:
    seen = time.time() - float(holder.get("beat") or 0)
    return (f"the job of pid {holder.get('pid', '?')} on {holder.get('host', '?')} (started "
            f"{holder.get('started', '?')}, last seen {seen:.0f} s ago)")
