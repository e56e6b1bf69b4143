"""``parallelrun job submit|validate job.yml``: v2-style parallel jobs from the terminal.

``submit`` checks the file (every problem is reported with its line), records the run in the
workspace and starts it in the background; ``--stream`` follows it until it ends. See
``parallelrun.pipeline.yaml_job`` for the keys.

Exit status: 0 submitted (or, with ``--stream``, Finished), 1 Failed or Canceled, 2 the file
or the workspace has a problem.

\b
Examples:
  parallelrun job validate job.yml
  parallelrun job submit job.yml --stream
"""

from __future__ import annotations

import sys

import click

from parallelrun.cli import main
from parallelrun.cli.common import open_workspace, reports_errors, stdout, workspace_option
from parallelrun.statuses import RunStatus


@main.group("job")
def job_group() -> None:
    """Submit and check v2-style parallel job files (type: parallel)."""


@job_group.command("validate")
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--workspace", "workspace_path", default=None, metavar="PATH",
              help="Also look up the workspace names the file uses (datasets, models, compute) in "
                   "this workspace (default: only the file is checked).")
@reports_errors
def job_validate(job_file, workspace_path) -> None:
    """Check JOB_FILE and print its problems (with line numbers), or 'ok'."""
    from parallelrun.pipeline.yaml_job import load_job

    job = load_job(job_file)
    if workspace_path:
        job.to_pipeline(open_workspace(workspace_path))
    stdout.print(f"{job_file}: ok (experiment {job.experiment_name}, step {job.step_name})")


@job_group.command("submit")
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--stream", is_flag=True, help="Follow the run until it ends (log lines, progress).")
@click.option("--experiment-name", default=None, help="Experiment (default: the file's "
              "experiment_name, else its folder's name).")
@workspace_option
@reports_errors
def job_submit(job_file, stream, experiment_name, workspace_path) -> None:
    """Submit JOB_FILE; prints the run id (parallelrun runs show|watch RUN_ID)."""
    from parallelrun.pipeline.yaml_job import submit_job

    run = submit_job(job_file, open_workspace(workspace_path), experiment_name)
    stdout.print(f"submitted run {run.id} (experiment {run.experiment.name})")
    if stream:
        status = run.wait_for_completion(show_output=True, raise_on_error=False)
        sys.exit(0 if status == RunStatus.FINISHED else 1)
