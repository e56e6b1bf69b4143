"""The one exception tree of parallelrun.

Every error parallelrun raises on purpose is a :class:`ParallelRunError`; each failure domain has
its own subclass, so callers can catch as broadly or as narrowly as they like::

    ParallelRunError
    ├── ConfigurationError (ValueError)   a ParallelRunConfig value, a CLI flag, a step or job spec
    │   ├── FolderInUseError              another running job holds the output or log folder
    │   └── ResumeMismatchError           a resume whose job differs from the one it resumes
    ├── EntryScriptError                  the user's entry script: missing, unimportable, no init/run,
    │                                     init() failing repeatedly, run() returning the wrong type
    ├── DataError (ValueError)            inputs: a glob matching nothing, a bad mini-batch, bad rows
    ├── StorageError (OSError)            datastores and fsspec: missing container, credentials
    ├── BackendError (RuntimeError)       compute: workers that cannot start, Ray, node counts
    ├── WorkspaceError                    catalog: unknown dataset/model/run names and versions
    └── JobFailedError                    a job that ran and ended Failed (carries the JobResult)

Messages name the offending value and say how to fix it. Exceptions of dependencies (pyarrow,
fsspec, ray) are translated into these at the boundary where parallelrun calls them.
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


class JobFailedError(ParallelRunError):
    """A job ran and ended Failed; ``.result`` holds its counts and first error."""

    def __init__(self, message: str, result: object = None):
        super().__init__(message)
        self.result = result
