"""MkDocs hook: the CLI reference, rendered from the click commands at build time, and a check
of every ``parallelrun ...`` command line the pages show.

``<!-- parallelrun: cli-reference -->`` in a page becomes one section per command (groups and
their subcommands, hidden ones left out) holding exactly what ``parallelrun ... --help`` prints,
so the reference cannot drift from the code. Written here rather than with mkdocs-click: the help
is taken by invoking each command as a user would, so a group that hands its arguments to a
command of its own (``parallelrun run``) shows the help that command really prints.

Every code span or code block line of the pages that starts with ``parallelrun`` is checked
against the same commands: an unknown command or an option the command does not have is a
warning, which ``mkdocs build --strict`` turns into a failed build.
"""

from __future__ import annotations

import re
import shlex

import click
from click.testing import CliRunner
from mkdocs.plugins import get_plugin_logger

from parallelrun.cli import main

log = get_plugin_logger(__name__)

MARKER = "<!-- parallelrun: cli-reference -->"
PROGRAM = "parallelrun"
# what a help page is rendered at (click wraps at the terminal's width)
HELP_WIDTH = 100


def commands(group: click.Group = main, path: tuple[str, ...] = ()):
    """Every visible command under ``group`` as ``(path, command)``, the group itself first,
    subcommands in alphabetical order."""
    yield path, group
    if not isinstance(group, click.Group):
        return
    context = click.Context(group, info_name=PROGRAM)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        yield from commands(command, (*path, name))


def help_text(path: tuple[str, ...]) -> str:
    """What ``parallelrun <path> --help`` prints."""
    result = CliRunner().invoke(main, [*path, "--help"], prog_name=PROGRAM,
                                terminal_width=HELP_WIDTH, catch_exceptions=False)
    if result.exit_code != 0:
        log.warning("`%s %s --help` exited with %s:\n%s", PROGRAM, " ".join(path),
                    result.exit_code, result.output)
    return result.output.rstrip()


def reference_markdown() -> str:
    """One section per command: a heading with its full name, then its help page."""
    parts = []
    for path, _command in commands():
        depth = min(2 + len(path), 4)
        name = " ".join((PROGRAM, *path))
        parts.append(f"{'#' * depth} `{name}`\n\n```text\n{help_text(path)}\n```\n")
    return "\n".join(parts)


def resolve(words: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The command a command line names, the words that named it, and the words left over."""
    command: click.Command = main
    named: list[str] = []
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command, info_name=PROGRAM), rest[0])
        if sub is None:
            break
        # a group that also runs a job of its own (``run``) hands other words to that command
        named.append(rest.pop(0))
        command = sub
    return command, named, rest


def _options_of(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    job = getattr(command, "job_command", None)   # parallelrun run: a group over the job command
    for each in (command, job) if job is not None else (command,):
        for param in each.params:
            names.update(getattr(param, "opts", ()))
            names.update(getattr(param, "secondary_opts", ()))
    return names


def check_command_line(line: str) -> str | None:
    """Why a ``parallelrun ...`` line of the docs would not run, or None."""
    try:
        words = shlex.split(line.replace("\\\n", " "), comments=True)
    except ValueError:
        return None   # not a whole command line (an unbalanced quote in prose)
    if not words or words[0] != PROGRAM:
        return None
    if any(mark in line for mark in ("|", "...", "[")):
        return None   # a summary of several commands (`run list|show`), not one to run
    words = words[1:]
    if "--" in words:
        words = words[:words.index("--")]    # the entry script's own flags
    command, named, rest = resolve(words)
    if isinstance(command, click.Group) and rest and not rest[0].startswith("-") \
            and getattr(command, "job_command", None) is None:
        return f"no command {rest[0]!r} in `{' '.join([PROGRAM, *named])}`"
    known = _options_of(command)
    for word in rest:
        if word.startswith("--") and word.split("=", 1)[0] not in known:
            return f"`{' '.join([PROGRAM, *named])}` has no option {word.split('=', 1)[0]}"
    return None


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```|~~~)[^\n]*\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
                    re.M | re.S)
_CODE_SPAN = re.compile(r"`(parallelrun [^`]+)`")


def command_lines(markdown: str):
    """``parallelrun ...`` lines of the page's code blocks (continuation lines joined) and
    code spans."""
    for block in _FENCE.finditer(markdown):
        text = re.sub(r"\\\n\s*", " ", block.group("body"))
        for line in text.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith(PROGRAM + " ") or line == PROGRAM:
                yield line
    outside = _FENCE.sub("", markdown)
    for span in _CODE_SPAN.finditer(outside):
        yield span.group(1)


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, reference_markdown())
    else:   # the generated reference is right by construction
        for line in command_lines(markdown):
            problem = check_command_line(line)
            if problem:
                log.warning("%s: %s in: %s", page.file.src_uri, problem, line)
    return markdown
