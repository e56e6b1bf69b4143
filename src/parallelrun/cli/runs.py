"""``parallelrun runs list|show|resume|cancel|watch``: runs of pipelines and jobs from the terminal.

``parallelrun run`` is the command that runs one job (``cli/run.py``); the runs are ``runs``.
They were once ``run list|show|...`` too: ``run`` still sends a first argument that names one of
these commands here, with a note on stderr that the spelling is now ``runs``.

Every command finds the workspace with ``--workspace PATH`` or, by default, ``config.json`` from
the current folder upward, else the default workspace (``~/.parallelrun`` or
``$PARALLELRUN_HOME``), where jobs started outside a workspace are recorded. A run id may be
shortened to a unique prefix. Exit status: 0 the run
Finished (or the command did its work), 1 the run Failed or was Canceled, 2 an error.

\b
Examples:
  parallelrun runs list
  parallelrun runs show digit_identification_1700000000_1a2b3c4d
  parallelrun runs watch digit_identification_17
  parallelrun runs cancel digit_identification_17
  parallelrun runs resume digit_identification_17
"""

from __future__ import annotations

import json
import sys
import time

import click
from rich.table import Table

import parallelrun.cli.run  # noqa: F401 - the job command this group wraps must be registered
from parallelrun.cli import main
from parallelrun.cli.common import deprecated, format_time, reports_errors, stdout
from parallelrun.statuses import RunStatus


@main.group("runs")
def run_group() -> None:
    """List, show, watch, cancel and resume runs (pipelines, job files, jobs) by id."""


class JobOrOldRunsCommand(click.Command):
    """``run``: the job command (``cli/run.py``), except that ``run list|show|watch|cancel|resume``,
    the old spelling of ``runs ...``, still reaches those commands (with a note)."""

    def __init__(self, job_command: click.Command):
        super().__init__(name=job_command.name, help=job_command.help,
                         short_help=job_command.short_help, epilog=job_command.epilog)
        self.job_command = job_command

    def make_context(self, info_name, args, parent=None, **extra):
        if args and args[0] in run_group.commands:
            deprecated(f"run {args[0]}", f"runs {args[0]}")
            return run_group.make_context("runs", args, parent=parent, **extra)
        return self.job_command.make_context(info_name, args, parent=parent, **extra)


main.add_command(JobOrOldRunsCommand(main.commands["run"]), "run")


workspace_option = click.option(
    "--workspace", "workspace_path", default=None, metavar="PATH",
    help="Workspace folder (default: found from config.json upward from the current folder, "
         "else the default workspace ~/.parallelrun or $PARALLELRUN_HOME, which records jobs "
         "started outside a workspace).")

#: runs.kind in the words of the list
_KIND_WORDS = {"pipeline": "pipeline", "job": "job file", "run_job": "job"}


def open_workspace(path: str | None, must_exist: bool = True):
    """The workspace at ``path``, else found from config.json upward, else the default one;
    None when there is none yet and not ``must_exist``."""
    from parallelrun.errors import WorkspaceError
    from parallelrun.workspace.default_workspace import default_workspace_path, workspace_for_runs

    workspace, _ = workspace_for_runs(path, create=False)
    if workspace is None and must_exist:
        raise WorkspaceError(
            "no runs here: no workspace config.json in this folder or a parent, and no default "
            f"workspace yet ({default_workspace_path()}; the first job run outside a workspace "
            "makes it). Give --workspace PATH, or cd into a workspace")
    return workspace


def _duration(start: float | None, end: float | None) -> str:
    if not start:
        return ""
    seconds = (end or time.time()) - start
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _exit_for(status: str) -> None:
    sys.exit(0 if status == RunStatus.FINISHED else 1)


@run_group.command("list")
@click.option("--experiment", default=None, help="Only this experiment's runs (default: every experiment's).")
@click.option("--limit", default=20, show_default=True, help="How many runs (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@workspace_option
@reports_errors
def run_list(experiment, limit, as_json, workspace_path) -> None:
    """The workspace's runs, newest first."""
    from parallelrun.pipeline.records import RunStore
    from parallelrun.pipeline.runs import reconcile

    workspace = open_workspace(workspace_path, must_exist=False)
    store = RunStore(workspace) if workspace is not None else None
    runs = [reconcile(store, r) for r in store.runs(experiment, limit=limit)] if store else []
    if as_json:
        click.echo(json.dumps(runs, indent=2, default=str))
        return
    table = Table(title=f"runs ({len(runs)} shown)", title_justify="left")
    table.add_column("run id", overflow="fold", min_width=max([6] + [len(r["id"]) for r in runs]))
    for column in ("experiment", "kind", "status", "created", "duration", "steps"):
        table.add_column(column)
    for record in runs:
        steps = store.steps(record["id"])
        done = sum(1 for s in steps if s["status"] == RunStatus.FINISHED)
        table.add_row(record["id"], record["experiment"],
                      _KIND_WORDS.get(record["kind"], record["kind"]), _status(record["status"]),
                      format_time(record["created_at"]),
                      _duration(record["started_at"], record["finished_at"]),
                      f"{done}/{len(steps)}")
    stdout.print(table)
    if workspace is not None:
        stdout.print(f"workspace {workspace.name!r} ({workspace.path})", soft_wrap=True,
                     markup=False)


def _status(status: str) -> str:
    colour = {RunStatus.FINISHED: "green", RunStatus.FAILED: "red", RunStatus.CANCELED: "yellow",
              RunStatus.RUNNING: "cyan"}.get(status, "white")
    return f"[{colour}]{status}[/]"


def _pipeline_run(workspace_path: str | None, run_id: str):
    """The pipeline run ``run_id`` names, or the one a step run ``run_id`` belongs to."""
    from parallelrun.pipeline.runs import PipelineRun, Run

    run = Run.get(open_workspace(workspace_path), run_id)
    return run if isinstance(run, PipelineRun) else run.parent


@run_group.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (get_details()).")
@workspace_option
@reports_errors
def run_show(run_id, as_json, workspace_path) -> None:
    """A run: status, timings, its steps with their counts, outputs, logs and errors."""
    run = _pipeline_run(workspace_path, run_id)
    details = run.get_details()
    if as_json:
        click.echo(json.dumps(details, indent=2, default=str))
        return
    stdout.print(f"[bold]{details['runId']}[/]  {_status(details['status'])}")
    stdout.print(f"experiment {details['experiment']}; created {details['createdTimeUtc']}; "
                 f"started {details['startTimeUtc'] or '-'}; ended {details['endTimeUtc'] or '-'}; "
                 f"attempts {details['attempts']}; runner pid {details['runner']['pid'] or '-'}",
                 soft_wrap=True)
    stdout.print(f"run folder {details['runDir']}", soft_wrap=True)
    for step in details["steps"]:
        counts = step["counts"]
        parts = [f"[bold]{step['name']}[/] ({step['kind']}): {_status(step['status'])}"]
        if step["kind"] == "parallel" and step["status"] != RunStatus.NOT_STARTED:
            parts.append(f"mini-batches {counts['minibatches_succeeded'] + counts['minibatches_failed']}"
                         f"/{counts['minibatches_total']}, items {counts['items_succeeded']} ok "
                         f"{counts['items_failed']} failed, {counts['retries']} retried, "
                         f"{counts['items_per_second']:.1f} items/s")
        if step["durationSeconds"] is not None:
            parts.append(f"{step['durationSeconds']:.1f} s")
        if step["reusedFrom"]:
            parts.append(f"reused step run {step['reusedFrom']}")
        stdout.print("  " + "; ".join(parts), soft_wrap=True)
    for step in details["steps"]:
        for name, output in step["outputs"].items():
            where = output.get("local_path") or \
                f"{output.get('datastore')}:{output.get('path_on_datastore')}"
            stdout.print(f"{step['name']}: output {name} -> {where}", soft_wrap=True, markup=False)
        if step["logDir"]:
            stdout.print(f"{step['name']}: logs {step['logDir']}", soft_wrap=True, markup=False)
        if step["error"] and step["status"] != RunStatus.FINISHED:
            stdout.print(f"[red]{step['name']}: error:[/]", markup=True)
            stdout.print(step["error"], markup=False, soft_wrap=True)
    if details["error"]:
        stdout.print("[red]run error:[/] ", markup=True, end="")
        stdout.print(details["error"], markup=False, soft_wrap=True)


@run_group.command("watch")
@click.argument("run_id")
@workspace_option
@reports_errors
def run_watch(run_id, workspace_path) -> None:
    """Follow a run until it ends: its log lines and each step's progress."""
    run = _pipeline_run(workspace_path, run_id)
    _exit_for(run.wait_for_completion(show_output=True, raise_on_error=False))


@run_group.command("cancel")
@click.argument("run_id")
@click.option("--wait", is_flag=True, help="Wait until the run has stopped.")
@workspace_option
@reports_errors
def run_cancel(run_id, wait, workspace_path) -> None:
    """Stop a run: running steps stop, finished work stays; resume goes on from there."""
    run = _pipeline_run(workspace_path, run_id)
    run.cancel()
    if wait:
        status = run.wait_for_completion(raise_on_error=False)
        stdout.print(f"{run.id}: {status}")
    else:
        stdout.print(f"{run.id}: cancel requested")


@run_group.command("resume")
@click.argument("run_id")
@click.option("--detach", is_flag=True, help="Return at once instead of following the run.")
@workspace_option
@reports_errors
def run_resume(run_id, detach, workspace_path) -> None:
    """Continue a run that died, failed or was canceled: finished steps and mini-batches are
    kept, the rest runs (each output row once)."""
    run = _pipeline_run(workspace_path, run_id)
    run.resume()
    if detach:
        stdout.print(f"{run.id}: resumed in the background (parallelrun runs watch {run.id})")
        return
    _exit_for(run.wait_for_completion(show_output=True, raise_on_error=False))
