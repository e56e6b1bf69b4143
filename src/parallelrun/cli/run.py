"""``parallelrun run``: one parallel job from the terminal.

Every ParallelRunConfig parameter is a flag of the same name in kebab case; the script's own
arguments follow ``--``. The job is a run (``parallelrun runs list``): its id is printed when it
starts (:mod:`parallelrun.pipeline.job_runs`). Exit status: 0 finished, 1 failed, 2 bad usage or configuration (nothing
ran), 130 stopped by Ctrl-C and 143 by SIGTERM (the job is Canceled and can be resumed: the
terminal prints the command).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import signal
import sys
import threading

import click
from rich.console import Console
from rich.text import Text

from parallelrun.backends import BackendTarget
from parallelrun.cli import main
from parallelrun.cli.common import key_values, print_error
from parallelrun.cli.hints import HintingCommand
from parallelrun.cli.progress_view import TerminalProgress
from parallelrun.config import ParallelRunConfig, default_text
from parallelrun.data.urls import is_remote
from parallelrun.engine.stop_signals import StopSignals
from parallelrun.errors import ParallelRunError
from parallelrun.statuses import RunStatus

# ParallelRunConfig fields that get a flag of another shape (or none: objects, not values)
_SPECIAL_FIELDS = {"environment", "compute_target", "environment_variables", "partition_keys",
                   "input_format"}
_INT_FIELDS = {"error_threshold", "node_count", "process_count_per_node", "allowed_failed_count",
               "run_max_try"}
_FLOAT_FIELDS = {"run_invocation_timeout", "init_timeout", "allowed_failed_percent"}
# The original requires these; on the terminal they take the v2 parallel job's defaults.
_CLI_DEFAULTS = {"error_threshold": -1, "output_action": "append_row"}


INPUT_FORMATS = ("file", "csv", "parquet", "jsonl")
_TABULAR_CONSTRUCTORS = {"csv": "from_delimited_files", "parquet": "from_parquet_files",
                         "jsonl": "from_json_lines_files"}
_BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def tabular_input(path: str, input_format: str, options: dict[str, str]):
    """A tabular dataset from ``--input``, ``--input-format`` and ``--input-option`` values.

    Example: ``tabular_input("data/*.csv", "csv", {"separator": ";", "header": "false"})``
    """
    import inspect

    from parallelrun.data.tabular import TabularDataset

    constructor = getattr(TabularDataset, _TABULAR_CONSTRUCTORS[input_format])
    params = inspect.signature(constructor).parameters
    kwargs: dict = {}
    for key, text in options.items():
        name = key.replace("-", "_")
        if name not in params or name == "path":
            known = ", ".join(p for p in params if p != "path")
            raise click.BadParameter(f"{key!r} is not an option of {input_format} inputs; "
                                     f"known: {known}", param_hint="--input-option")
        default = params[name].default
        if name == "set_column_types":
            kwargs[name] = dict(item.split(":", 1) for item in text.split(",") if ":" in item)
        elif isinstance(default, bool) or text.lower() in ("true", "false"):
            if text.lower() not in _BOOL_WORDS:
                raise click.BadParameter(f"{key}={text!r}: expected true or false",
                                         param_hint="--input-option")
            kwargs[name] = _BOOL_WORDS[text.lower()]
        elif name == "separator":
            kwargs[name] = {"\\t": "\t", "tab": "\t"}.get(text, text)
        else:
            kwargs[name] = text
    return constructor(path, **kwargs)


def config_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_FIELD_NAME = re.compile(r"\b(?:" + "|".join(
    f.name for f in dataclasses.fields(ParallelRunConfig) if "_" in f.name) + r")\b")


def field_help(name: str) -> str:
    """The help of the ParallelRunConfig field ``name`` (config.py), other fields named by their
    flags: the one text for the Python docs and for the terminal."""
    field = next(f for f in dataclasses.fields(ParallelRunConfig) if f.name == name)
    return _FIELD_NAME.sub(lambda m: config_flag(m.group()), field.metadata["help"])


def _config_options(func):
    """A flag per ParallelRunConfig field, its help the field's own, its default the field's or,
    for those Python requires, the terminal's (``_CLI_DEFAULTS``)."""
    for field in reversed(dataclasses.fields(ParallelRunConfig)):
        if field.name in _SPECIAL_FIELDS:
            continue
        kind = int if field.name in _INT_FIELDS else float if field.name in _FLOAT_FIELDS else str
        default = _CLI_DEFAULTS.get(field.name, field.default)
        required = default is None and default_text(field) == "required"
        shown = True if default is not None else not required and default_text(field)
        # a required flag has no default at all: click (8.3) takes default=None for a value
        given = {"required": True} if required else {"default": default}
        func = click.option(config_flag(field.name), field.name, type=kind, show_default=shown,
                            help=field_help(field.name), **given)(func)
    return func


@main.command("run", cls=HintingCommand, context_settings={"ignore_unknown_options": False},
              epilog="Runs (of this command, pipelines and job files): parallelrun runs list | "
                     "show RUN_ID | watch RUN_ID | cancel RUN_ID | resume RUN_ID.")
@_config_options
@click.option("--input", "inputs", multiple=True, required=True,
              help="Files, folder or glob to process (repeatable).")
@click.option("--output", required=True, help="Output folder (the append_row file goes here).")
@click.option("--log-dir", default=None, help="Where logs go (default: OUTPUT/logs).")
@click.option("--partition-keys", default=None, metavar="COLUMN,...",
              help=field_help("partition_keys") + " Comma-separated. Default: none (mini-batches "
                   "by size).")
@click.option("--input-format", type=click.Choice(INPUT_FORMATS), default="file", show_default=True,
              help="What --input holds: files (run() gets paths) or csv/parquet/jsonl tables "
                   "(run() gets DataFrames; --mini-batch-size is then a data size, default 1MB).")
@click.option("--input-option", "input_options", multiple=True, metavar="KEY=VALUE",
              help="Option of the tabular reader (repeatable), e.g. separator=';' header=false "
                   "include_path=true partition_format='{region}/*.csv' on_bad_lines=skip "
                   "set_column_types=id:str,amount:float. Default: the reader's defaults.")
@click.option("--environment-variables", "env_vars", multiple=True, metavar="KEY=VALUE",
              help="Environment variable set in every worker (repeatable; default: none).")
@click.option("--compute", "--compute-target", "compute", default="local", show_default=True,
              help="Where the workers run: local (processes on this machine) or ray (a Ray "
                   "cluster, see --ray-address).")
@click.option("--ray-address", default=None, metavar="ADDRESS",
              help="The Ray cluster of --compute ray: head:6379, ray://head:10001, or local (a "
                   "private cluster for this job). Default: $RAY_ADDRESS, else the cluster "
                   "running on this machine.")
@click.option("--resume", is_flag=True,
              help="Continue a job that died or was stopped, from its log folder's journal; the "
                   "job must be the same (script, arguments, inputs, mini-batch size, output).")
@click.option("--overwrite", is_flag=True,
              help="Replace the results of an earlier job in --output (its output file and its "
                   "logs; nothing else in the folder is touched). Without it such a folder is "
                   "refused.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option("--workspace", "workspace_path", default=None, metavar="PATH",
              help="Workspace that records the job as a run (default: found from config.json "
                   "upward from the current folder, else the default workspace ~/.parallelrun, "
                   "or $PARALLELRUN_HOME).")
@click.option("--experiment-name", default=None, metavar="NAME",
              help="Experiment the run is listed under (default: the current folder's name).")
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
def run_command(inputs, output, log_dir, partition_keys, input_format, input_options, env_vars,
                compute, ray_address, resume, overwrite, quiet, workspace_path, experiment_name,
                script_args, **config_values):
    """Run ENTRY_SCRIPT's run() over the input files in parallel.

    \b
    Example:
      parallelrun run --source-directory scripts --entry-script score.py \\
          --input 'data/*.png' --mini-batch-size 5 --output out/ -- --threshold 0.5
    """
    from parallelrun.data.files import FileDataset
    from parallelrun.pipeline.job_runs import record_job

    console = Console(stderr=True)
    try:
        compute_target = compute
        if ray_address is not None:
            compute_target = BackendTarget(compute, {"address": ray_address})
        config = ParallelRunConfig(
            compute_target=compute_target,
            partition_keys=[k.strip() for k in partition_keys.split(",")] if partition_keys else None,
            environment_variables=key_values(env_vars, "--environment-variables") or None,
            **config_values)
        if any(is_remote(p) for p in (*inputs, output, log_dir)):
            # URLs under a datastore of the job's workspace use that datastore's credentials
            from parallelrun.cli.workspace import use_workspace_datastores

            use_workspace_datastores(workspace_path)
        if input_format == "file":
            datasets = [FileDataset.from_files(path) for path in inputs]
        else:
            datasets = [tabular_input(path, input_format,
                                      key_values(input_options, "--input-option"))
                        for path in inputs]
        listeners = [] if quiet else [TerminalProgress(console)]
        cancel = threading.Event()
        with StopSignals(cancel) as stop:
            # every job is a run: its id is printed when it starts (see pipeline/job_runs.py)
            result = record_job(config, datasets, output, list(script_args), log_dir=log_dir,
                                listeners=listeners, resume=resume, overwrite=overwrite,
                                cancel=cancel, workspace=workspace_path,
                                experiment_name=experiment_name, started_by="cli",
                                say=lambda text: console.print(text, markup=False,
                                                               highlight=False, soft_wrap=True))
    except ParallelRunError as exc:
        print_error(exc, console)
        sys.exit(2)
    except KeyboardInterrupt:  # a second Ctrl-C: the job stopped at once, its result is written
        console.print("[bold red]Canceled[/] (stopped at once)", highlight=False)
        _print_resume_command(console)
        sys.exit(128 + signal.SIGINT)
    colour = "green" if result.succeeded else "red"
    console.print(f"[bold {colour}]{result.status}[/]", highlight=False)
    console.print(result.summary(), highlight=False, markup=False, soft_wrap=True)
    if result.status == RunStatus.CANCELED or (
            result.status == RunStatus.FAILED and result.minibatches_succeeded):
        _print_resume_command(console, result.run_id)
    if stop.received is not None:
        sys.exit(128 + int(stop.received))
    sys.exit(0 if result.succeeded else 1)


def _print_resume_command(console: Console, run_id: str | None = None) -> None:
    """The exact command that continues this job where it stopped (and, for a recorded job,
    the shorter one by its run id)."""
    args = [a for a in sys.argv[1:] if a not in ("--overwrite", "--resume")]
    at = args.index("--") if "--" in args else len(args)
    command = shlex.join(["parallelrun", *args[:at], "--resume", *args[at:]])
    console.print(Text.assemble("to resume it: ", (command, "bold")), soft_wrap=True)
    if run_id:
        console.print(Text.assemble("or by its run id: ", (f"parallelrun runs resume {run_id}",
                                                            "bold")), soft_wrap=True)
