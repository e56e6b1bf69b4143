"""``parallelrun pipeline list|show|submit|enable|disable`` (published pipelines) and
``parallelrun schedule list|serve|enable|disable`` (their schedules).

A pipeline is published from Python (``pipeline.publish(name=...)``); these commands find it
by id (or a unique prefix of it) in the workspace (``--workspace PATH``, else config.json from
the current folder upward). ``schedule serve`` is the scheduler: it submits due schedules until
it is stopped (Ctrl+C or SIGTERM). Exit status: 0 done, 1 a submitted run failed (``submit
--wait``), 2 an error.

\b
Examples:
  parallelrun pipeline list
  parallelrun pipeline submit 3f2a --experiment nightly --param batch_size=10 --wait
  parallelrun schedule serve --workspace ./ws
"""

from __future__ import annotations

import json
import signal
import sys

import click
from rich.table import Table

from parallelrun.cli import main
from parallelrun.cli.common import (format_time, key_values, open_workspace, reports_errors,
                                     stdout, workspace_option)
from parallelrun.statuses import RunStatus


@main.group("pipeline")
def pipeline_group() -> None:
    """Published pipelines: list, show, submit by id, enable, disable."""


@main.group("schedule")
def schedule_group() -> None:
    """Schedules of published pipelines, and the scheduler that runs them."""


def _published(workspace, pipeline_id: str):
    from parallelrun.errors import WorkspaceError
    from parallelrun.pipeline.published import PublishedPipeline

    matches = [p for p in PublishedPipeline.list(workspace, active_only=False)
               if p.id.startswith(pipeline_id)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise WorkspaceError(f"{pipeline_id!r} starts {len(matches)} published pipeline ids "
                             f"({', '.join(p.id for p in matches[:5])}); give more of the id")
    return PublishedPipeline.get(workspace, pipeline_id)    # the error names what exists


def _schedule(workspace, schedule_id: str):
    from parallelrun.pipeline.schedules import Schedule

    matches = [s for s in Schedule.list(workspace, active_only=False)
               if s.id.startswith(schedule_id)]
    return matches[0] if len(matches) == 1 else Schedule.get(workspace, schedule_id)


@pipeline_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Disabled ones too (default: active only).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@workspace_option
@reports_errors
def pipeline_list(show_all, as_json, workspace_path) -> None:
    """The workspace's published pipelines, newest first."""
    from parallelrun.pipeline.published import PublishedPipeline

    published = PublishedPipeline.list(open_workspace(workspace_path), active_only=not show_all)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in published], indent=2, default=str))
        return
    table = Table(title=f"published pipelines ({len(published)})", title_justify="left")
    for column in ("id", "name", "version", "status", "published", "parameters"):
        table.add_column(column, overflow="fold")
    for item in published:
        table.add_row(item.id, item.name, item.version or "", item.status,
                      format_time(item.to_dict()["created_at"]),
                      ", ".join(f"{k}={v}" for k, v in item.parameters.items()))
    stdout.print(table)


@pipeline_group.command("show")
@click.argument("pipeline_id")
@workspace_option
@reports_errors
def pipeline_show(pipeline_id, workspace_path) -> None:
    """One published pipeline as JSON: steps, parameters, status, schedules."""
    from parallelrun.pipeline.schedules import Schedule

    workspace = open_workspace(workspace_path)
    item = _published(workspace, pipeline_id)
    data = item.to_dict()
    data["schedules"] = [s.to_dict() for s in Schedule.get_schedules_for_pipeline_id(
        workspace, item.id)]
    click.echo(json.dumps(data, indent=2, default=str))


@pipeline_group.command("submit")
@click.argument("pipeline_id")
@click.option("--experiment", required=True, help="The experiment the run belongs to.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A PipelineParameter's value for this run (repeatable; default: its "
                   "default).")
@click.option("--wait", is_flag=True, help="Follow the run until it ends (default: return at once).")
@workspace_option
@reports_errors
def pipeline_submit(pipeline_id, experiment, params, wait, workspace_path) -> None:
    """Submit a published pipeline by id as a new run of EXPERIMENT."""
    workspace = open_workspace(workspace_path)
    run = _published(workspace, pipeline_id).submit(
        workspace, experiment, pipeline_parameters=key_values(params, "--param") or None)
    stdout.print(f"{run.id}: submitted (parallelrun runs watch {run.id})", soft_wrap=True)
    if wait:
        status = run.wait_for_completion(show_output=True, raise_on_error=False)
        sys.exit(0 if status == RunStatus.FINISHED else 1)


@pipeline_group.command("disable")
@click.argument("pipeline_id")
@workspace_option
@reports_errors
def pipeline_disable(pipeline_id, workspace_path) -> None:
    """Refuse submissions of a published pipeline (its schedules skip their runs)."""
    item = _published(open_workspace(workspace_path), pipeline_id)
    item.disable()
    stdout.print(f"{item.id}: {item.status}")


@pipeline_group.command("enable")
@click.argument("pipeline_id")
@workspace_option
@reports_errors
def pipeline_enable(pipeline_id, workspace_path) -> None:
    """Accept submissions of a published pipeline again."""
    item = _published(open_workspace(workspace_path), pipeline_id)
    item.enable()
    stdout.print(f"{item.id}: {item.status}")


@schedule_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Disabled ones too (default: active only).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@workspace_option
@reports_errors
def schedule_list(show_all, as_json, workspace_path) -> None:
    """The workspace's schedules, and whether a scheduler is running them."""
    from parallelrun.pipeline.schedules import Schedule, scheduler_running

    workspace = open_workspace(workspace_path)
    schedules = Schedule.list(workspace, active_only=not show_all)
    running = scheduler_running(workspace)
    if as_json:
        click.echo(json.dumps({"scheduler_running": running,
                               "schedules": [s.to_dict() for s in schedules]},
                              indent=2, default=str))
        return
    table = Table(title=f"schedules ({len(schedules)})", title_justify="left")
    for column in ("id", "name", "pipeline", "experiment", "every", "status", "next run",
                   "last error"):
        table.add_column(column, overflow="fold")
    for item in schedules:
        recurrence = item.recurrence
        table.add_row(item.id, item.name, item.pipeline_id[:8], item.experiment_name,
                      f"{recurrence.interval} {recurrence.frequency}", item.status,
                      item.next_run_time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
                      if item.next_run_time else "", item.last_error or "")
    stdout.print(table)
    if not running:
        stdout.print(f"no scheduler is running for this workspace: nothing runs until one "
                     f"starts (parallelrun schedule serve --workspace {workspace.path})",
                     soft_wrap=True, markup=False)


@schedule_group.command("serve")
@click.option("--tick", type=float, default=None,
              help="Seconds between checks for due schedules (default: 5, or "
                   "$PARALLELRUN_SCHEDULER_TICK).")
@workspace_option
@reports_errors
def schedule_serve(tick, workspace_path) -> None:
    """Run the workspace's schedules: submit each one when it is due, until stopped."""
    from parallelrun.pipeline.schedules import Scheduler

    workspace = open_workspace(workspace_path)
    scheduler = Scheduler(workspace, kind="process", tick=tick)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: scheduler.stop(timeout=0))
    stdout.print(f"scheduler for workspace {workspace.name!r} ({workspace.path}): checking "
                 f"every {scheduler.tick:g} s; Ctrl+C stops it", soft_wrap=True, markup=False)
    scheduler.serve()


def _toggle(schedule_id: str, workspace_path: str | None, enable: bool) -> None:
    item = _schedule(open_workspace(workspace_path), schedule_id)
    if enable:
        item.enable()
    else:
        item.disable()
    stdout.print(f"{item.id}: {item.status}")


@schedule_group.command("disable")
@click.argument("schedule_id")
@workspace_option
@reports_errors
def schedule_disable(schedule_id, workspace_path) -> None:
    """Stop a schedule's runs until it is enabled."""
    _toggle(schedule_id, workspace_path, enable=False)


@schedule_group.command("enable")
@click.argument("schedule_id")
@workspace_option
@reports_errors
def schedule_enable(schedule_id, workspace_path) -> None:
    """Run a schedule again from its next time."""
    _toggle(schedule_id, workspace_path, enable=True)
