"""The one exception tree of parallelrun.

Every error parallelrun raises on purpose is a :class:`ParallelRunError`, defined here and
exported from ``parallelrun``; each kind of mistake has one class, so callers can catch as
broadly or as narrowly as they like::

    ParallelRunError
    ├── ConfigurationError (ValueError)   a ParallelRunConfig value, a CLI flag, a step or job spec
    │   ├── FolderInUseError              another running job holds the output or log folder
    │   ├── ResumeMismatchError           a resume whose job differs from the one it resumes
    │   └── JobSpecError                  a YAML job file; ``.problems`` lists (line, key, message)
    ├── EntryScriptError                  the user's entry script: missing, unimportable, no init/run,
    │   │                                 init() failing repeatedly
    │   └── BadResultError                run() returned what cannot be written or counted
    ├── DataError (ValueError)            inputs: a glob matching nothing, a bad mini-batch, bad rows
    ├── StorageError (OSError)            datastores and fsspec: missing container, credentials
    ├── BackendError (RuntimeError)       compute: workers that cannot start, Ray, node counts
    │   └── ComputeTargetException        a compute target cannot be made or found (Azure ML's name)
    ├── WorkspaceError                    catalog: a workspace missing or inconsistent
    │   ├── UnknownNameError (KeyError)   a name, id or version the workspace lacks (the API's 404)
    │   └── UnsafeArchiveError            a model archive entry outside its folder, or too big
    ├── JobFailedError                    a job that ran and ended Failed: ``.result`` (run_job's
    │                                     JobResult) or ``.run`` (a pipeline or step run)
    └── RunTimeoutError (TimeoutError)    wait_for_completion's timeout passed before the run ended

Messages name the offending value and say how to fix it. Exceptions of dependencies (pyarrow,
fsspec, ray) are translated into these at the boundary where parallelrun calls them. Older
import paths (``parallelrun.pipeline.yaml_job.JobSpecError``, ``parallelrun.compute.
ComputeTargetException``, ``parallelrun.workspace.workspace.UnknownNameError``,
``parallelrun.ui.state.NotFound``, ...) re-export these classes.
"""

from __future__ import annotations


class ParallelRunError(Exception):
    """Base class of every error parallelrun raises on purpose."""


class ConfigurationError(ParallelRunError, ValueError):
    """A configuration value is not allowed.

    Example message: ``mini_batch_size='0': a file dataset needs a count of files, an integer >= 1
    (e.g. 5 or "5").``
    """

    def __init__(self, parameter: str, value: object, allowed: str):
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
        super().__init__(f"{parameter}={value!r} is not allowed: {allowed}")


class FolderInUseError(ConfigurationError):
    """Another job is writing into this output or log folder now; ``.holder`` says which."""

    def __init__(self, folder: str, holder: str):
        self.holder = holder
        super().__init__("output", folder, f"a folder no other job is writing into; {holder} "
                         "holds it. Wait for that job to end, or choose another folder")


class ResumeMismatchError(ConfigurationError):
    """A resume asked of a job that differs from the one whose journal is there.

    ``.differences`` lists ``(field, recorded value, value now)``.
    """

    def __init__(self, log_dir: str, differences: list[tuple[str, object, object]]):
        self.log_dir = log_dir
        self.differences = differences
        listed = "; ".join(f"{name}: was {old!r}, now {new!r}" for name, old, new in differences)
        super().__init__("resume", True, f"the same job as the one whose journal is in "
                         f"{log_dir!r}, and this one differs ({listed}). Resume it with the "
                         "settings it had, or start a new job (--overwrite, or another output "
                         "folder)")


class EntryScriptError(ParallelRunError):
    """The entry script cannot be used: missing, unimportable, wrong functions, wrong results."""


class DataError(ParallelRunError, ValueError):
    """An input dataset cannot be planned or read."""


class StorageError(ParallelRunError, OSError):
    """A datastore or storage URL cannot be reached, listed or written."""


class BackendError(ParallelRunError, RuntimeError):
    """A compute backend cannot start or keep its workers."""


class WorkspaceError(ParallelRunError):
    """A workspace, or something asked of its catalog, does not exist or is inconsistent."""


class JobSpecError(ConfigurationError):
    """A job file with problems; ``problems`` lists ``(line, key, message)`` for each."""

    def __init__(self, path: str, problems: list[tuple[int | None, str, str]]):
        self.path = path
        self.problems = problems
        line, key, message = problems[0]
        self.parameter, self.value, self.allowed = key, None, message
        lines = [f"{path}:{ln or '?'}: {k}: {m}" for ln, k, m in problems]
        # not ConfigurationError's one-value message: a job file can have many problems
        Exception.__init__(self, f"{len(problems)} problem(s) in job file {path}:\n"
                           + "\n".join("  " + text for text in lines))


class BadResultError(EntryScriptError):
    """What run() returned cannot be written or counted: the mini-batch's try fails."""


class ComputeTargetException(BackendError):
    """A compute target cannot be created or found (Azure ML's exception name)."""


class UnknownNameError(WorkspaceError, KeyError):
    """A name or id (dataset, model, datastore, compute target, run, step run) or a version the
    workspace lacks. The dashboard's API answers it with 404."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnsafeArchiveError(WorkspaceError):
    """An archive entry would land outside the model's folder (or is a device file), or the
    archive is beyond the extraction limits."""


class JobFailedError(ParallelRunError):
    """A job ran and ended Failed.

    ``.result`` is the :class:`~parallelrun.JobResult` (counts, first error, log folder) when
    ``run_job`` raised it, else None; ``.run`` is the :class:`~parallelrun.Run` (a pipeline run)
    or :class:`~parallelrun.StepRun` whose ``wait_for_completion`` raised it, else None.
    """

    def __init__(self, message: str, result: object = None, run: object = None):
        super().__init__(message)
        self.result = result
        self.run = run


class RunTimeoutError(ParallelRunError, TimeoutError):
    """``wait_for_completion(timeout_seconds=...)`` returned before the run ended; the run goes
    on. ``.run_id``, ``.status`` and ``.timeout_seconds`` say which, where and how long."""

    def __init__(self, run_id: str, status: str, timeout_seconds: float):
        self.run_id = run_id
        self.status = status
        self.timeout_seconds = timeout_seconds
        super().__init__(f"run {run_id} is still {status} after timeout_seconds="
                         f"{timeout_seconds}: it goes on; wait again with a larger "
                         "timeout_seconds, or cancel it (run.cancel())")
