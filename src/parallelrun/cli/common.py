"""What every command module shares: the consoles, error reporting (in the terminal's words),
the workspace lookup, the ``--version`` type and the parsing of ``KEY=VALUE`` flags."""

from __future__ import annotations

import datetime
import functools
import re
import shlex
import sys

import click
from rich.console import Console
from rich.text import Text

from parallelrun.errors import ConfigurationError, ParallelRunError

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)

workspace_option = click.option(
    "--workspace", "workspace_path", default=None, metavar="PATH",
    help="Workspace folder (default: found from config.json upward from the current folder).")


# The library's messages speak Python (they are read by Python callers too); on the terminal the
# same advice names what the user types. Applied to the text of errors the CLI prints, in order.
_CLI_WORDS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"create_if_not_exists=True"), "--create"),
    (re.compile(r"address='local'"), "--ray-address local"),
    (re.compile(r"address='([^']*)'"), r"--ray-address \1"),
    (re.compile(r"Workspace\.create\((?:name|'[^']*'), path=\.\.\.\)"),
     "`parallelrun workspace create NAME --workspace PATH`"),
    (re.compile(r"\bpass path=,"), "pass --workspace PATH,"),
]
# ParallelRunError parameters whose flag is not the parameter's own name in kebab case
_PARAMETER_FLAGS = {"compute_target": "--compute",
                    "environment_variables": "--environment-variables"}


def _flag_of(parameter: str, ctx: click.Context | None) -> str | None:
    """The flag of the running command that sets ``parameter``, None when it has none."""
    if ctx is None:
        return None
    for param in ctx.command.params:
        if isinstance(param, click.Option) and param.name == parameter and not param.hidden:
            return max(param.opts, key=len)
    flag = _PARAMETER_FLAGS.get(parameter)
    return flag if flag and any(flag in p.opts for p in ctx.command.params) else None


def in_cli_words(exc: ParallelRunError, ctx: click.Context | None = None) -> str:
    """The message of ``exc`` as the terminal user should read it: a parameter that came from a
    flag named as that flag (``run_max_try=0 is not allowed`` -> ``--run-max-try 0 is not
    allowed``), and Python spellings of advice replaced by the flags and commands (see
    ``_CLI_WORDS``)."""
    ctx = ctx or click.get_current_context(silent=True)
    message = str(exc)
    if isinstance(exc, ConfigurationError):
        flag = _flag_of(exc.parameter, ctx)
        stated = f"{exc.parameter}={exc.value!r} is not allowed"
        if flag and message.startswith(stated):
            if exc.value is None:
                said = f"{flag} is not given"
            elif exc.value is True:
                said = f"{flag} is not allowed"
            else:
                said = f"{flag} {shlex.quote(str(exc.value))} is not allowed"
            message = said + message[len(stated):]
    for pattern, words in _CLI_WORDS:
        message = pattern.sub(words, message)
    return message


def print_error(exc: ParallelRunError, console: Console | None = None) -> None:
    """``error: <message in the terminal's words>`` on stderr (or ``console``)."""
    (console or stderr).print(Text.assemble(("error: ", "bold red"), in_cli_words(exc)),
                              soft_wrap=True, highlight=False)


def reports_errors(func):
    """Print a :class:`ParallelRunError` as one ``error:`` line on stderr and exit with status 2,
    instead of a traceback: those errors already say what is wrong and how to fix it."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ParallelRunError as exc:
            print_error(exc)
            sys.exit(2)
    return wrapper


class VersionType(click.ParamType):
    """``--version`` of a registered dataset or model: a number >= 1 or ``latest``; converts to
    the number, or None for the latest."""

    name = "N|latest"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "latest":
            return None
        if text.isdigit() and int(text) >= 1:
            return int(text)
        self.fail(f"{value!r}: expected a version number (1, 2, ...) or 'latest'", param, ctx)


def version_option(kind: str):
    """The ``--version`` option of ``dataset show`` and ``model show``: one type for both."""
    return click.option("--version", type=VersionType(), default="latest", show_default=True,
                        help=f"Which version of the {kind}: a number (1, 2, ...) or latest.")


def all_versions_option(kind: str):
    """``--all-versions``: the one way every ``list`` says it (default: the latest of each)."""
    return click.option("--all-versions", is_flag=True,
                        help=f"Every version of each {kind} (default: only the latest).")


def open_workspace(path: str | None):
    """The workspace at ``path`` or, without one, found from config.json upward."""
    from parallelrun.workspace.workspace import Workspace  # the CLI's start stays light

    return Workspace.from_config(path)


def deprecated(old: str, new: str) -> None:
    """Say on stderr that ``parallelrun OLD`` is now ``parallelrun NEW`` (it still works)."""
    stderr.print(f"note: `parallelrun {old}` is now `parallelrun {new}`; the old spelling "
                 "still works but will go.", soft_wrap=True, highlight=False, markup=False)


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
