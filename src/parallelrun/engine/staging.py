"""Outputs and logs on a datastore: staged in a local folder, uploaded while the job runs
(every ``PARALLELRUN_CHECKPOINT_SECONDS``) and when it ends.

``run_job(output=store.path("results/"))`` (or an ``az://``/``s3://`` URL, for ``output`` or
``log_dir``): the job itself always writes locally (the coordinator appends the ``append_row``
file, ``summary_only`` scripts write under ``EntryScript().output_dir``, logs go to ``logs/``), in
a staging folder; when the job ends, finished or failed or interrupted, the staging folder is
uploaded to the datastore path and removed. The :class:`~parallelrun.engine.job.JobResult` then
names the remote URLs. With ``resume=True`` the remote output (journal included) is downloaded
into the staging folder first, so a resumed job continues where the uploaded one stopped.
While it runs, the job holds those folders (``engine/remote_hold.py``): a second job into
them is refused, as a second job into a local folder is. A job killed before its last upload
is resumed from its staging folder on the same machine (the hold names it), from its last
checkpoint elsewhere.

The engine stays local-first: a local ``output`` takes no detour (the wrapper passes it through).
This also removes cache folders that workers killed mid-job left behind
(:func:`parallelrun.data.remote.sweep_stale_caches`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import Any, Callable

from parallelrun.config import JOB_MARKER_NAME
from parallelrun.data.urls import is_remote
from parallelrun.engine.remote_hold import RemoteHold
from parallelrun.errors import ConfigurationError, ResumeMismatchError, StorageError

log = logging.getLogger("parallelrun.staging")


def _remote_target(value: Any) -> tuple[str, dict | None] | None:
    """(url, storage options) when ``value`` names remote storage, else None."""
    if value is None:
        return None
    url = getattr(value, "url", value)
    if not is_remote(url):
        return None
    from parallelrun.data import remote

    options = getattr(value, "storage_options", None)
    if options is None:
        options = remote.registered_storage_options(str(url))
    return str(url).rstrip("/"), options


def _local_value(value: Any) -> Any:
    # a local datastore path is its folder
    url = getattr(value, "url", None)
    return url if url is not None and not isinstance(value, (str, os.PathLike)) else value


def stage_remote_outputs(run: Callable) -> Callable:
    """Decorator of ``run_job``: remote ``output``/``log_dir`` are staged locally and uploaded."""
    signature = inspect.signature(run)

    @functools.wraps(run)
    def wrapper(*args: Any, **kwargs: Any):
        bound = signature.bind(*args, **kwargs)
        output = bound.arguments.get("output")
        log_dir = bound.arguments.get("log_dir")
        out_target, log_target = _remote_target(output), _remote_target(log_dir)
        if out_target is None and log_target is None:
            bound.arguments["output"] = _local_value(output)
            if log_dir is not None:
                bound.arguments["log_dir"] = _local_value(log_dir)
            try:
                return run(*bound.args, **bound.kwargs)
            finally:
                _sweep_caches(bound.arguments.get("config"))
        return _run_staged(run, bound, out_target, log_target)

    return wrapper


#: the name of every staging folder starts so (a folder a dead job's hold names is used, or
#: removed, only if it does)
STAGE_PREFIX = "parallelrun-stage-"


def _run_staged(run: Callable, bound: inspect.BoundArguments, out_target, log_target):
    remote_folders = [target[0] for target in (out_target, log_target) if target]
    _refuse_inputs_in(bound.arguments.get("inputs"), remote_folders)
    checkpoint_seconds = _checkpoint_seconds()
    fresh = stage = tempfile.mkdtemp(prefix=STAGE_PREFIX)
    running = False
    try:
        # one job per datastore folder, from before the claim (which may remove an earlier
        # job's results) until this job's files are uploaded
        with RemoteHold([target for target in (out_target, log_target) if target],
                        stage) as hold:
            earlier = _left_behind(hold, bound, remote_folders[0])
            if earlier and bound.arguments.get("resume"):
                shutil.rmtree(fresh, ignore_errors=True)
                stage = earlier
                hold.restage(stage)
            elif earlier:
                shutil.rmtree(earlier, ignore_errors=True)   # overwrite: start anew
            if not bound.arguments.get("resume"):
                _claim_remote(bound, out_target, log_target)
            running = True
            return _run_in_stage(run, bound, out_target, log_target, remote_folders, stage, hold,
                                 checkpoint_seconds,
                                 download=bool(bound.arguments.get("resume")) and not earlier)
    finally:
        if not running:
            shutil.rmtree(fresh, ignore_errors=True)


def _left_behind(hold: RemoteHold, bound: inspect.BoundArguments, url: str) -> str | None:
    """The staging folder of a job that died on this machine holding these folders, with its
    finished work (never uploaded); a new job is refused there unless it resumes that work or
    overwrites it, as in a local folder holding an earlier job's results."""
    folder = hold.left_behind
    # only a folder that proves to be a staging folder of ours (its name and place, and a job's
    # marker in it) is used, or removed by an overwrite: the hold's record is only a pointer
    ours = folder and os.path.basename(folder).startswith(STAGE_PREFIX) and \
        os.path.realpath(os.path.dirname(folder)) == os.path.realpath(tempfile.gettempdir()) \
        and any(os.path.isfile(os.path.join(folder, part, JOB_MARKER_NAME))
                for part in ("output", "logs"))
    if not ours:
        return None
    if not bound.arguments.get("resume") and not bound.arguments.get("overwrite"):
        hold.give_back()
        raise ConfigurationError(
            "output", url, f"a folder without an earlier job's results, and a job that died on "
            f"this machine left its finished work for it in {folder}. To continue that job pass "
            "--resume (resume=True); to start anew pass --overwrite (overwrite=True); or choose "
            "another output folder")
    return folder


def _run_in_stage(run: Callable, bound: inspect.BoundArguments, out_target, log_target,
                  remote_folders: list[str], stage: str, hold: RemoteHold,
                  checkpoint_seconds: float, download: bool):
    from parallelrun.data import remote

    local_out = os.path.join(stage, "output") if out_target else _local_value(bound.arguments["output"])
    local_log = os.path.join(stage, "logs") if log_target else bound.arguments.get("log_dir")
    if local_log is not None and not log_target:
        local_log = _local_value(local_log)
    if download:
        try:
            if out_target:
                remote.download_tree(out_target[0], local_out, out_target[1], overwrite=True)
            if log_target:
                remote.download_tree(log_target[0], local_log, log_target[1], overwrite=True)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    bound.arguments["output"] = local_out
    bound.arguments["log_dir"] = local_log
    # the remote folders are the job's own: never listed as input, though staged elsewhere
    bound.arguments["remote_folders"] = remote_folders
    result = None
    failed = True
    try:
        with _Checkpoints(checkpoint_seconds, hold, local_out, out_target, local_log,
                          log_target):
            result = run(*bound.args, **bound.kwargs)
        failed = False
        return result
    except ResumeMismatchError as exc:   # name the journal where the user knows it: remote
        journal = (_rebase(exc.log_dir, local_log, log_target[0]) if log_target
                   else _rebase(exc.log_dir, local_out, out_target[0]))
        raise ResumeMismatchError(journal, exc.differences) from None
    finally:
        try:
            _upload(hold, local_out, out_target, local_log, log_target)
        except StorageError as exc:
            log.error("the job's files stay in %s: %s", stage, exc)
            if not failed:
                raise StorageError(f"{exc}; the job's files were kept in {stage!r}") from exc
        else:
            shutil.rmtree(stage, ignore_errors=True)
            if result is not None:
                _point_at_remote(result, local_out, out_target, local_log, log_target)
        _sweep_caches(bound.arguments.get("config"))


def _refuse_inputs_in(inputs: Any, folders: list[str]) -> None:
    """Refuse an input that lists the job's remote output or log folder before the claim, which
    may remove an earlier job's results there (run_job checks every input again)."""
    from parallelrun.data.base import AbstractDataset

    for item in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
        if isinstance(item, AbstractDataset):
            item.check_outside(folders)
        elif isinstance(item, (str, os.PathLike)) and is_remote(os.fspath(item)):
            from parallelrun.data.remote import check_remote_outside

            check_remote_outside(os.fspath(item), folders)


def _claim_remote(bound: inspect.BoundArguments, out_target, log_target) -> None:
    """The rules of engine/job_folders.py for a new job into remote folders: earlier results
    there are refused unless ``overwrite``, which removes what the earlier job's marker proves
    it wrote (its output files and log layout) before this job uploads its own."""
    from parallelrun.data import remote
    from parallelrun.engine.job_folders import LOG_LAYOUT, MARKER_NAME

    config = bound.arguments["config"]
    file_names = [config.append_row_file_name] if config.output_action == "append_row" else []
    folders = []   # (url, storage options, names of ours there)
    if out_target:
        logs = [] if log_target else [f"logs/{name}" for name in LOG_LAYOUT]
        folders.append((*out_target, [*file_names, f".{config.append_row_file_name}.arrows",
                                      *logs]))
    if log_target:
        folders.append((*log_target, list(LOG_LAYOUT)))
    for url, options, names in folders:
        fs, root = remote.filesystem(url, options)
        root = root.rstrip("/")
        try:
            marked = fs.exists(f"{root}/{MARKER_NAME}")
            found = [path for name in names for path in fs.glob(f"{root}/{name}")]
        except Exception as exc:  # noqa: BLE001
            raise remote.storage_error(exc, url, "checking") from None
        if not found:
            continue
        if not bound.arguments.get("overwrite"):
            listed = ", ".join(path[len(root) + 1:] for path in found[:3])
            raise ConfigurationError(
                "output", url, f"a folder without an earlier job's results, and this one holds "
                f"{listed}. To replace them pass --overwrite (overwrite=True); to continue that "
                "job pass --resume (resume=True); or choose another output folder")
        if not marked and any(not path.endswith(tuple(file_names)) for path in found):
            raise ConfigurationError(
                "log_dir", url, f"a log folder that parallelrun wrote: it holds "
                f"{found[0][len(root) + 1:]} but no {MARKER_NAME} marker, so parallelrun cannot "
                "tell it is its own. Choose another folder")
        try:
            fs.rm(found, recursive=True)
        except Exception as exc:  # noqa: BLE001
            raise remote.storage_error(exc, url, "replacing the earlier results in") from None


def _upload(hold: RemoteHold, local_out: str, out_target, local_log: str | None,
            log_target) -> None:
    from parallelrun.data import remote

    hold.check()   # never over the files of a job that took the folders over

    if out_target and os.path.isdir(local_out):
        remote.upload_tree(local_out, out_target[0], out_target[1])
    if log_target and local_log and os.path.isdir(local_log):
        remote.upload_tree(local_log, log_target[0], log_target[1])


def _checkpoint_seconds() -> float:
    value = os.environ.get("PARALLELRUN_CHECKPOINT_SECONDS", "60").strip() or "0"
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigurationError("PARALLELRUN_CHECKPOINT_SECONDS", value,
                                 "a number of seconds between uploads of a running job's files "
                                 "to its datastore, e.g. 60 (0: only when the job ends)")
    return seconds


class _Checkpoints:
    """Uploads a running job's files every ``PARALLELRUN_CHECKPOINT_SECONDS`` (default 60; 0
    for never), so that a job lost with its machine, or resumed on another, loses at most the
    work since the last upload. Taken while the job appends, the output and the journal there
    may disagree on the last few mini-batches; a resume cuts the output back to the journal's
    last commit and runs again any commit whose rows the output lacks (engine/journal.py).
    An upload that took long spaces the next ones (10 times its length at least: uploads take
    at most a tenth of the job's time); one that fails is logged and tried at the next."""

    def __init__(self, interval: float, *upload_args: Any):
        self.interval = interval
        self.upload_args = upload_args
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parallelrun-checkpoints",
                                        daemon=True)

    def __enter__(self) -> "_Checkpoints":
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                _upload(*self.upload_args)
            except StorageError as exc:
                log.warning("uploading the job's files so far failed (tried again in %.0f s): "
                            "%s", wait, exc)
            wait = max(self.interval, 10 * (time.monotonic() - started))


def _rebase(path: str | None, local_root: str, url: str) -> str | None:
    if not path:
        return path
    rel = os.path.relpath(path, local_root)
    if rel == ".":
        return url + "/"
    if rel.startswith(".."):
        return path
    return url + "/" + rel.replace(os.sep, "/")


def _point_at_remote(result: Any, local_out: str, out_target, local_log, log_target) -> None:
    """Make the JobResult name where its files are now: the remote URLs."""
    if out_target:
        result.output_file = _rebase(result.output_file, local_out, out_target[0])
        result.log_dir = _rebase(result.log_dir, local_out, out_target[0])
        result.output_dir = out_target[0] + "/"
    if log_target and local_log:
        result.log_dir = _rebase(result.log_dir, local_log, log_target[0])


def _sweep_caches(config: Any) -> None:
    """Remove download caches of workers that died (only if remote inputs were used)."""
    remote = sys.modules.get("parallelrun.data.remote")
    if remote is None:
        return
    bases = {remote.cache_base()}
    extra = (getattr(config, "environment_variables", None) or {}).get("PARALLELRUN_CACHE_DIR")
    if extra:
        bases.add(extra)
    for base in bases:
        remote.sweep_stale_caches(base)
