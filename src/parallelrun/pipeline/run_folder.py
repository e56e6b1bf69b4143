"""The layout of a run's folder, ``<workspace>/.parallelrun/runs/<run id>/``, and its log.

=================================  ================================================================
``pipeline.pkl``                   the pipeline (and submit options) that ``submit`` pickled
``run.log``                        what the runner did; ``wait_for_completion(show_output=True)``
                                   streams it
``runner.out``                     the runner process's own stdout and stderr
``steps/<step>/logs/``             a step's log folder (a ParallelRunStep's journal is in it)
``steps/<step>/output/``           a ParallelRunStep's output folder when it declares no output
``inputs/<step run>/<name>/``      a dataset a step reads as a folder (arguments, side inputs)
``outputs/<step run>/<name>/``     an output written here, then uploaded to its datastore
=================================  ================================================================
"""

from __future__ import annotations

import logging
import os

from parallelrun.script import utc_formatter

PIPELINE_FILE = "pipeline.pkl"
RUN_LOG = "run.log"
RUNNER_OUT = "runner.out"


def step_log_dir(run_dir: str, step_name: str) -> str:
    """The log folder of a step of the run."""
    return os.path.join(run_dir, "steps", step_name, "logs")


def step_default_output_dir(run_dir: str, step_name: str) -> str:
    """Where a ParallelRunStep with no declared output writes."""
    return os.path.join(run_dir, "steps", step_name, "output")


def input_folder(run_dir: str, step_run_id: str, name: str) -> str:
    """Where a dataset a step reads as a folder is put."""
    return os.path.join(run_dir, "inputs", step_run_id, name)


def staged_output_folder(run_dir: str, step_run_id: str, output_name: str) -> str:
    """Where an output bound for a remote datastore (or an upload) is written first."""
    return os.path.join(run_dir, "outputs", step_run_id, output_name)


def open_run_log(run_dir: str, run_id: str) -> logging.Logger:
    """The logger writing the run's ``run.log`` (UTC times), this process's only handler of it."""
    logger = logging.getLogger(f"parallelrun.pipeline.run.{run_id}")
    handler = logging.FileHandler(os.path.join(run_dir, RUN_LOG), encoding="utf-8")
    handler.setFormatter(utc_formatter("%(asctime)sZ %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
