"""The process that executes a run:
``python -m parallelrun.pipeline.runner RUN_ID --workspace PATH [--resume]``.

``Experiment.submit`` starts it in its own session (``start_new_session=True``), so the
submitter may exit; ``Run.resume()`` starts it again with ``--resume`` after it died. This
module is only the process: its arguments, its signals (SIGTERM, SIGINT and SIGHUP cancel the
run) and, should it fail, the run recorded Failed with why. The work is split by job:

* :mod:`~parallelrun.pipeline.executor` the run: claim, steps in dependency order, outcome;
* :mod:`~parallelrun.pipeline.step_execution` the interface each step kind implements:
  :mod:`~parallelrun.pipeline.parallel_execution` (ParallelRunStep, with ``run_job``) and
  :mod:`~parallelrun.pipeline.script_execution` (PythonScriptStep and v2 command nodes, as a
  child process);
* :mod:`~parallelrun.pipeline.output_placement` where outputs go, their upload, registration;
* :mod:`~parallelrun.pipeline.reuse_lookup` taking an earlier step run's outputs;
* :mod:`~parallelrun.pipeline.run_watcher` live counts to the catalog, the cancel flag from it;
* :mod:`~parallelrun.pipeline.processes` (and :mod:`~parallelrun.pipeline.child_launcher`)
  child processes that die with the runner;
* :mod:`~parallelrun.pipeline.step_compute` the compute a step runs on;
* :mod:`~parallelrun.pipeline.run_folder` the run folder's layout and ``run.log``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any

from parallelrun.pipeline.executor import RunExecutor
from parallelrun.pipeline.records import RunStore
from parallelrun.statuses import TERMINAL_STATUSES, RunStatus


def main(argv: list[str] | None = None) -> int:
    """Execute the run named on the command line; 0 when it finished."""
    parser = argparse.ArgumentParser(prog="python -m parallelrun.pipeline.runner")
    parser.add_argument("run_id")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    from parallelrun.workspace.workspace import Workspace

    print(f"{datetime.now(timezone.utc).isoformat()} runner pid {os.getpid()} for run "
          f"{args.run_id} (resume={args.resume})", flush=True)
    workspace = Workspace(args.workspace)
    try:
        executor = RunExecutor(workspace, args.run_id, resume=args.resume)
    except Exception:  # noqa: BLE001 - record why, for the user waiting on the run
        _fail_run(workspace, args.run_id, traceback.format_exc())
        raise
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: executor.cancel.set())
    try:
        status = executor.execute()
    except Exception:  # noqa: BLE001
        _fail_run(workspace, args.run_id, traceback.format_exc())
        raise
    return 0 if status == RunStatus.FINISHED else 1


def _fail_run(workspace: Any, run_id: str, error: str) -> None:
    store = RunStore(workspace)
    try:
        store.update_run(run_id, status=RunStatus.FAILED, finished_at=time.time(),
                         error=f"the run's process failed:\n{error}")
        for row in store.steps(run_id):
            if row["status"] not in TERMINAL_STATUSES:
                store.update_step(row["id"], status=RunStatus.FAILED,
                                  error="the run's process failed")
    except Exception:  # noqa: BLE001
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
