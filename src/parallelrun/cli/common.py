"""What every command module shares: the consoles, error reporting, the workspace lookup and
the parsing of ``KEY=VALUE`` flags."""

from __future__ import annotations

import datetime
import functools
import sys

import click
from rich.console import Console

from parallelrun.errors import ParallelRunError

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)

workspace_option = click.option(
    "--workspace", "workspace_path", default=None, metavar="PATH",
    help="Workspace folder (default: found from config.json upward from the current folder).")


def reports_errors(func):
    """Print a :class:`ParallelRunError` as one ``error:`` line on stderr and exit with status 2,
    instead of a traceback: those errors already say what is wrong and how to fix it."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ParallelRunError as exc:
            stderr.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            sys.exit(2)
    return wrapper


def open_workspace(path: str | None):
    """The workspace at ``path`` or, without one, found from config.json upward."""
    from parallelrun.workspace.workspace import Workspace  # the CLI's start stays light

    return Workspace.from_config(path)


def key_values(values: tuple[str, ...], flag: str) -> dict[str, str]:
    """``("a=1", "b=2")`` from a repeatable flag -> ``{"a": "1", "b": "2"}``."""
    result = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=flag)
        result[key] = value
    return result


def format_time(timestamp: float | None) -> str:
    """A catalog timestamp as local ``YYYY-MM-DD HH:MM:SS``; empty when unset."""
    if not timestamp:
        return ""
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
