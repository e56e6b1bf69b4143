"""Hints for the known mistakes of a ``parallelrun run`` command line.

Two mistakes are common enough to name: a glob left unquoted (the shell expands
``--input data/*.png`` into one argument per file, and the job would see a list of file names
where the entry script's flags belong), and an entry script's flag written without ``--`` before
it (click only knows that no such option exists). Each becomes a usage error that says what
happened and the command line that works.
"""

from __future__ import annotations

import os
import shlex

import click

_SHOWN_NAMES = 3  # file names quoted in the glob hint; the rest are counted


def _pattern_of(paths: list[str]) -> str:
    """The glob a list of expanded file names most likely came from: their common folder and
    extension around ``*`` (``data/a.png``, ``data/b.png`` -> ``data/*.png``)."""
    folders = {os.path.dirname(p) for p in paths}
    extensions = {os.path.splitext(p)[1] for p in paths}
    folder = folders.pop() if len(folders) == 1 else os.path.commonpath(paths) or "."
    extension = extensions.pop() if len(extensions) == 1 else ""
    return os.path.join(folder, "*" + extension) if folder else "*" + extension


def stray_arguments_error(stray: list[str], inputs: tuple[str, ...],
                          ctx: click.Context | None = None) -> click.UsageError:
    """The error for words before ``--`` that no option took: an expanded glob when they are
    existing paths (with the quoted glob to use), else the entry script's arguments without
    ``--``."""
    if all(os.path.exists(word) for word in stray):
        expanded = [*inputs[-1:], *stray]
        names = ", ".join(expanded[:_SHOWN_NAMES])
        more = f" and {len(expanded) - _SHOWN_NAMES} more" if len(expanded) > _SHOWN_NAMES else ""
        pattern = _pattern_of(expanded)
        return click.UsageError(
            f"--input got {len(expanded)} file names ({names}{more}) instead of one pattern: the "
            f"shell expanded an unquoted glob. Quote the glob: --input {shlex.quote(pattern)}",
            ctx)
    words = shlex.join(stray)
    return click.UsageError(
        f"unexpected argument(s) {words}. The entry script's own arguments go after `--`, at the "
        f"end of the command: parallelrun run [OPTIONS] -- {words}", ctx)


def script_flag_hint(error: click.NoSuchOption) -> click.NoSuchOption:
    """``No such option '--threshold'`` with the reminder that the entry script's own flags go
    after ``--``."""
    return click.NoSuchOption(
        error.option_name, ctx=error.ctx,
        message=f"{error.format_message()} If {error.option_name} is a flag of the entry script, "
                f"put it after `--`, at the end of the command: "
                f"parallelrun run [OPTIONS] -- {error.option_name} ...")


class HintingCommand(click.Command):
    """The job command's parsing, with the hints above for its two known mistakes.

    Its last parameter takes the entry script's arguments (``nargs=-1``): whatever follows
    ``--``, and also any word before ``--`` that no option took, which is always a mistake."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        after_separator = len(args) - args.index("--") - 1 if "--" in args else 0
        try:
            rest = super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            raise script_flag_hint(exc) from None
        script_args = list(ctx.params.get("script_args") or ())
        stray = script_args[:len(script_args) - after_separator]
        if stray and not ctx.resilient_parsing:
            raise stray_arguments_error(stray, ctx.params.get("inputs") or (), ctx)
        return rest
