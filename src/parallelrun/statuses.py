"""The status vocabularies: what a run, a step or a job is in, and what one try came to.

Every status parallelrun writes (the catalog's ``runs`` and ``step_runs`` rows,
``job_result.txt``, the log folder's records, the CLI, ``run.get_status()``) is a member of
one of these enums. They are string-valued: a member *is* its text (``RunStatus.FINISHED ==
"Finished"``, ``json.dumps`` and ``sqlite3`` write ``Finished``, ``f"{status}"`` prints
``Finished``), so the files and the API keep the words Azure ML uses, and code that
compares against the words keeps working. Sets of statuses that code tests membership in
(``TERMINAL_STATUSES``, ``IN_PROGRESS_STATUSES``) live here too, once.

- :class:`RunStatus`: a pipeline run, a step run, a job run, a job's result. These are the
  words of Azure ML's ``PipelineRun`` and ``StepRun`` (``Finished``, not the ``Completed``
  of a plain script run). Steps use the same words, so there is no separate step enum.
- :class:`JobStatus`: an SDK v2 / CLI v2 job's ``status`` (``ml_client.jobs.get(name).status``),
  Azure ML v2's words for the same run: ``Completed`` where v1 says ``Finished``.
- :class:`ScriptRunStatus`: Azure ML's ``Run.get_status()`` of a script run, which the
  ``azureml.core.Run`` stand-in answers for an entry script.
- :class:`OutcomeStatus`: one try of one mini-batch, as a worker (or the coordinator, for a
  worker it lost) reports it; :class:`TryOutcome`: what that try means for its mini-batch.

Worker processes import this module, so it keeps to Python 3.8 (no ``enum.StrEnum``, which
is 3.11's).
"""
from __future__ import annotations

import enum

__all__ = ["IN_PROGRESS_STATUSES", "TERMINAL_STATUSES", "JobStatus", "OutcomeStatus",
           "RunStatus", "ScriptRunStatus", "TryOutcome"]


class _TextEnum(str, enum.Enum):
    """``enum.StrEnum`` for Python 3.8 to 3.10: ``str()`` and ``format()`` give the value on
    every version (a plain ``(str, Enum)`` mixin prints ``RunStatus.FINISHED`` on some)."""

    __str__ = str.__str__
    __format__ = str.__format__


class RunStatus(_TextEnum):
    """The status of a pipeline run, a step run, a job run and a job's result.

    ``NotStarted -> Queued -> Running -> Finished | Failed | Canceled``; a resubmitted or
    resumed run goes from ``Failed`` or ``Canceled`` back to ``Queued``. A member equals its
    text, so it compares with what ``get_status()`` and ``JobResult.status`` return::

        if run.wait_for_completion() == RunStatus.FAILED:
            ...
    """

    NOT_STARTED = "NotStarted"
    """Recorded, not yet handed to a runner (a step: not reached yet)."""
    QUEUED = "Queued"
    """Handed to a runner process that has not started it yet (a step: its inputs are ready)."""
    RUNNING = "Running"
    """Running now."""
    FINISHED = "Finished"
    """Ended with every step (every mini-batch within the thresholds) done."""
    FAILED = "Failed"
    """Ended by a failure: a step, the thresholds, the entry script, the runner's process."""
    CANCELED = "Canceled"
    """Ended by ``cancel()``, Ctrl-C or SIGTERM; a job canceled this way can be resumed."""


class ScriptRunStatus(_TextEnum):
    """What Azure ML's ``Run.get_status()`` says of a script run, as far as the entry script's
    ``Run.get_context()`` stand-in answers it."""

    RUNNING = "Running"
    """Inside a worker of a running job."""
    COMPLETED = "Completed"
    """An offline run (outside any job), which Azure ML reports as completed."""


class OutcomeStatus(_TextEnum):
    """What one try of one mini-batch came to (``RunOutcome.status``, the ``status`` column
    of ``processed_mini-batches.csv`` and of the try records)."""

    RUN_DONE = "RUN_DONE"
    """``run()`` returned a valid result; its rows are committed (some items may have failed)."""
    RUN_EXCEPTION = "RUN_EXCEPTION"
    """``run()`` raised."""
    RUN_BAD_RESULT = "RUN_BAD_RESULT"
    """``run()`` returned something that is not a result (wrong type or length)."""
    RUN_TIMEOUT = "RUN_TIMEOUT"
    """The coordinator stopped the worker: ``run()`` took longer than ``run_invocation_timeout``."""
    PROCESS_DIED = "PROCESS_DIED"
    """The worker process died (exit, signal, out of memory) with the mini-batch in hand."""
    DATA_ERROR = "DATA_ERROR"
    """The mini-batch's data could not be loaded in the worker, before ``run()``."""


class TryOutcome(_TextEnum):
    """What a finished try means for its mini-batch (the ``outcome`` of the log folder's try
    records, which the dashboard counts): its status and whether it was the last try."""

    DONE = "done"
    """``RUN_DONE``, every item succeeded."""
    DONE_WITH_FAILED_RECORDS = "done, with failed records"
    """``RUN_DONE`` with an error message: bad rows were skipped."""
    WILL_BE_RETRIED = "will be retried"
    """Failed; the mini-batch gets another try."""
    FAILED = "failed"
    """Failed on its last try: its items count as failed."""


#: The statuses a run, step or job ends in (it may be resubmitted or resumed from them).
TERMINAL_STATUSES = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.CANCELED})
#: A run handed to its runner process and not ended: that process should be alive.
IN_PROGRESS_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


class JobStatus(_TextEnum):
    """An Azure ML v2 job's ``status`` (``ml_client.jobs.get(name).status``, ``az ml job show
    --query status``): the v1 words but ``Completed`` for ``Finished``, so v2 code such as
    ``if job.status == "Completed":`` runs unchanged. :meth:`of` translates a run's status."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @classmethod
    def of(cls, status: str) -> "JobStatus":
        """The v2 word for a run's status: ``JobStatus.of("Finished") == "Completed"``."""
        return cls.COMPLETED if status == RunStatus.FINISHED else cls(status)
