"""The folders a job writes into: proving they are its own, locking them, checking a resume.

parallelrun deletes, overwrites or truncates only what it can prove it wrote. The proof is a
marker file, ``.parallelrun``, that a job writes into its output folder and its log folder before
anything else. It names what the job writes there (the ``append_row`` file, the log layout) and,
in the log folder, the job's fingerprint: what must be the same for a resume to be exact.

Before any work, :func:`claim_job_folders` decides, for a new job:

- an output folder that holds an earlier job's results (its ``append_row`` file) is refused
  unless the caller asked to replace them (``overwrite=True`` / ``--overwrite``), or to continue
  that job (``resume=True`` / ``--resume``); everything else in the folder stays untouched;
- a log folder that holds anything is refused unless its marker proves an earlier job wrote it
  (and then only with ``overwrite``, which removes the log layout's own entries, nothing else);
- a resume must match the job it resumes: each fingerprint field that differs is named with both
  values, and nothing runs.

The marker file is also the job's lock (``flock``, held by an open descriptor for the job's life,
so the kernel releases it however the job dies): a second job on the same folder is refused at
once, naming the job that holds it. ``fcntl.flock`` is used directly rather than the ``filelock``
package because the lock file carries the holder's details, which ``filelock`` truncates on every
attempt to acquire.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from parallelrun.config import JOB_MARKER_NAME
from parallelrun.errors import ConfigurationError, FolderInUseError, ResumeMismatchError

MARKER_NAME = JOB_MARKER_NAME
_MARKER_FORMAT = 1

#: what the log layout consists of (engine/logs.py); ``overwrite`` removes these and nothing else
LOG_LAYOUT = ("readme.txt", "job_result.txt", "job_error.txt", "job_progress_overview.*.txt",
              "sys", "user")


def job_fingerprint(config: Any, arguments: Sequence[str], inputs: Sequence[str]) -> dict[str, Any]:
    """What decides a job's output rows, as JSON-able values; a resume must match every field.

    ``inputs`` are the datasets' descriptions (paths, globs, reader options); the listing itself
    is checked mini-batch by mini-batch against the journal when the job resumes.
    """
    with open(config.script_path, "rb") as fh:
        script_digest = hashlib.sha256(fh.read()).hexdigest()
    return {
        "entry_script": f"{config.script_path} (sha256 {script_digest[:16]})",
        "arguments": list(arguments),
        "mini_batch_size": None if config.mini_batch_size is None else str(config.mini_batch_size),
        "partition_keys": list(config.partition_keys or []),
        "output_action": config.output_action,
        "append_row_format": config.append_row_format,
        "append_row_file_name": config.append_row_file_name,
        "inputs": list(inputs),
    }


def _holder() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:500]}


def _describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another job"
    return (f"job pid {holder.get('pid')} on {holder.get('host')}, started "
            f"{holder.get('started_at')} ({holder.get('command') or 'no command line'})")


class _LockedMarker:
    """A folder's ``.parallelrun`` file, open and locked by this process."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, MARKER_NAME)
        self.created = False
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            self.created = True
        except FileExistsError:
            self.fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = self.read().get("holder")
            os.close(self.fd)
            raise FolderInUseError(folder, _describe_holder(holder)) from None
        self.previous = self.read()

    def read(self) -> dict[str, Any]:
        data = b""
        while chunk := os.pread(self.fd, 1 << 16, len(data)):
            data += chunk
        try:
            content = json.loads(data) if data.strip() else {}
        except ValueError:
            content = {}
        return content if isinstance(content, dict) else {}

    def write(self, content: dict[str, Any]) -> None:
        data = json.dumps(content, indent=1).encode() + b"\n"
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self, keep: bool = True) -> None:
        """Unlock; ``keep=False`` removes a marker this job created and never used."""
        if self.fd < 0:
            return
        if not keep and self.created:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(self.fd)  # closing the last descriptor releases the flock
        self.fd = -1


@dataclasses.dataclass
class JobFolders:
    """The output and log folders of a running job, claimed and locked."""

    output_dir: str
    log_dir: str
    markers: list[_LockedMarker]
    fresh_logs: bool = True             # the log folder held no logs when it was claimed

    def release(self) -> None:
        for marker in self.markers:
            marker.release()

    def discard_new_logs(self) -> None:
        """Remove the logs this job wrote, for a job refused before any work: a folder that held
        none stays as it was, so the corrected job starts there without ``overwrite``."""
        if self.fresh_logs:
            _remove_log_layout(self.log_dir)


def _is_empty_folder(path: str) -> bool:
    return not os.path.exists(path) or (os.path.isdir(path) and not os.listdir(path))


def _layout_entries(log_dir: str) -> list[str]:
    import fnmatch

    names = sorted(os.listdir(log_dir)) if os.path.isdir(log_dir) else []
    return [name for name in names
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in LOG_LAYOUT)]


def _remove_log_layout(log_dir: str) -> None:
    """Remove what an earlier job's logs consist of; anything else in the folder stays."""
    for name in _layout_entries(log_dir):
        path = os.path.join(log_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def _differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(name, recorded.get(name), current.get(name))
            for name in sorted(set(recorded) | set(current))
            if recorded.get(name) != current.get(name)]


def _mkdir(path: str, parameter: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigurationError(parameter, path, "a folder (a file has that name)")
    above = os.path.dirname(path)
    while above != os.path.dirname(above) and not os.path.exists(above):
        above = os.path.dirname(above)
    if os.path.exists(above) and not os.path.isdir(above):
        raise ConfigurationError(parameter, path, f"a folder, and {above} is a file: choose a "
                                 "path that is not under a file")
    os.makedirs(path, exist_ok=True)


def claim_job_folders(output_dir: str, log_dir: str, output_files: Sequence[str],
                      fingerprint: dict[str, Any], *, resume: bool = False,
                      overwrite: bool = False) -> JobFolders:
    """Check and lock the job's folders before any work; see the module docstring for the rules.

    ``output_files`` are the names the output action writes in ``output_dir`` (the append_row
    file and its staging file); returns the claim, to :meth:`JobFolders.release` when the job
    ends. Raises ConfigurationError (FolderInUseError, ResumeMismatchError) and changes nothing
    in the folders when it refuses.

    Example::

        folders = claim_job_folders("out", "out/logs", ["parallel_run_step.txt"], fingerprint)
        try:
            ...  # run the job
        finally:
            folders.release()
    """
    if resume and overwrite:
        raise ConfigurationError("overwrite", True, "resume=True continues the earlier job and "
                                 "keeps its results; pass one of resume or overwrite, not both")
    _mkdir(output_dir, "output")
    log_existed_nonempty = not _is_empty_folder(log_dir)
    markers: list[_LockedMarker] = []
    try:
        output_marker = _LockedMarker(output_dir)
        markers.append(output_marker)
        log_marker = output_marker
        if os.path.realpath(log_dir) != os.path.realpath(output_dir):
            if log_existed_nonempty and not os.path.exists(os.path.join(log_dir, MARKER_NAME)):
                raise ConfigurationError(
                    "log_dir", log_dir,
                    "an empty or new folder, or the log folder of an earlier parallelrun job: "
                    "this folder holds files parallelrun did not write (it has no "
                    f"{MARKER_NAME} marker), and parallelrun never deletes or mixes its logs into "
                    "a user's files. Choose another log folder (--log-dir / log_dir=), or empty "
                    "this one yourself")
            _mkdir(log_dir, "log_dir")
            log_marker = _LockedMarker(log_dir)
            markers.append(log_marker)
        previous_logs = log_marker.previous.get("logs")
        if resume:
            if previous_logs is None and _layout_entries(log_dir):
                raise ConfigurationError(
                    "resume", True, f"a log folder that parallelrun wrote: {log_dir!r} has no "
                    f"{MARKER_NAME} marker, so nothing proves its journal belongs to this job")
            recorded = (previous_logs or {}).get("fingerprint")
            if recorded is not None:
                differences = _differences(recorded, fingerprint)
                if differences:
                    raise ResumeMismatchError(log_dir, differences)
        else:
            existing = [name for name in output_files
                        if os.path.lexists(os.path.join(output_dir, name))]
            earlier_logs = previous_logs is not None and bool(_layout_entries(log_dir))
            if not overwrite and (existing or earlier_logs):
                what = ", ".join(existing) if existing else f"logs in {log_dir}"
                raise ConfigurationError(
                    "output", output_dir,
                    f"a folder without an earlier job's results, and this one holds {what}. "
                    "To replace them pass --overwrite (overwrite=True); to continue that job "
                    "pass --resume (resume=True); or choose another output folder")
            if previous_logs is None and _layout_entries(log_dir):
                raise ConfigurationError(
                    "log_dir", log_dir,
                    f"a log folder that parallelrun wrote or an empty one: it holds "
                    f"{', '.join(_layout_entries(log_dir))} but no {MARKER_NAME} marker, so "
                    "parallelrun cannot tell they are its own. Choose another log folder, or "
                    "move those files away yourself")
            if overwrite:
                for name in existing:
                    os.unlink(os.path.join(output_dir, name))
                _remove_log_layout(log_dir)
        fresh_logs = not _layout_entries(log_dir)
        holder = _holder()
        output_marker.write({**output_marker.previous, "parallelrun": _MARKER_FORMAT,
                             "holder": holder, "output": {"files": list(output_files),
                                                          "log_dir": log_dir}})
        log_content = log_marker.read() if log_marker is output_marker else log_marker.previous
        log_marker.write({**log_content, "parallelrun": _MARKER_FORMAT, "holder": holder,
                          "logs": {"fingerprint": fingerprint, "output_dir": output_dir,
                                   "written_at": time.time()}})
    except BaseException:
        for marker in markers:
            marker.release(keep=False)
        raise
    return JobFolders(output_dir, log_dir, markers, fresh_logs)


@contextlib.contextmanager
def job_folders(*args: Any, **kwargs: Any) -> Iterator[JobFolders]:
    """:func:`claim_job_folders` as a context manager that releases the claim on exit."""
    folders = claim_job_folders(*args, **kwargs)
    try:
        yield folders
    finally:
        folders.release()
