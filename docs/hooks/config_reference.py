"""MkDocs hook: the configuration reference, generated from ``ParallelRunConfig``'s fields.

``<!-- parallelrun: config-reference -->`` in a page becomes a section for every field, in
declaration order: its name, the ``parallelrun run`` flag that sets it, its type, its default
(and the flag's, where the terminal differs), and its help text, written once beside the field
(``metadata={"help": ..., "default": ...}`` in ``parallelrun/config.py``, the text the CLI's
``--help`` shows too). A field without help text is a warning, so ``mkdocs build --strict``
fails until it is documented.
"""

from __future__ import annotations

import dataclasses

import click
from mkdocs.plugins import get_plugin_logger

from parallelrun.config import ParallelRunConfig

log = get_plugin_logger(__name__)

MARKER = "<!-- parallelrun: config-reference -->"


#: fields whose name a ``parallelrun run`` flag shares without setting them: ``--input-format``
#: says what ``--input`` holds (files, csv, parquet, jsonl); the field is Azure ML's, unused
_NOT_SET_BY_A_FLAG = {"input_format"}


def _run_options() -> dict[str, click.Option]:
    """``parallelrun run``'s options by the flags they answer to (``--compute-target`` and
    ``--compute`` are one option)."""
    from parallelrun.cli import main

    run = main.commands["run"]
    job = getattr(run, "job_command", run)   # the job command behind the ``run`` group, if any
    return {flag: param for param in job.params if isinstance(param, click.Option)
            for flag in param.opts}


def _flag(field: dataclasses.Field, options: dict[str, click.Option]) -> click.Option | None:
    if field.name in _NOT_SET_BY_A_FLAG:
        return None
    return options.get("--" + field.name.replace("_", "-"))


def _terminal_default(option: click.Option) -> object | None:
    """The flag's own default, or None when it has none (click marks that with a sentinel)."""
    default = option.default
    if default is None or type(default).__name__ == "Sentinel" or option.multiple and not default:
        return None
    return default


def _default(field: dataclasses.Field) -> str:
    """The default as the field documents it in words (``metadata["default"]``, for what
    ``None`` means), else its value."""
    if field.metadata.get("default"):
        return field.metadata["default"]
    if field.default is not dataclasses.MISSING:
        return f"`{field.default!r}`"
    if field.default_factory is not dataclasses.MISSING:
        return f"`{field.default_factory()!r}`"
    return "required"


def reference_markdown() -> str:
    """One section per field: its name (the anchor), a line of facts, its help text."""
    options = _run_options()
    sections = []
    for field in dataclasses.fields(ParallelRunConfig):
        help_text = field.metadata.get("help")
        if not help_text:
            log.warning("ParallelRunConfig.%s has no help text: give the field "
                        "metadata={'help': '...'} in parallelrun/config.py", field.name)
            help_text = ""
        option = _flag(field, options)
        facts = [f"type `{field.type}`", f"default {_default(field)}"]
        if option is not None:
            facts.insert(0, f"flag `{max(option.opts, key=len)}`")
            terminal = _terminal_default(option)
            if terminal is not None and terminal != field.default \
                    and str(terminal) != field.metadata.get("default"):
                facts.append(f"`{terminal}` on the terminal")
        else:
            facts.insert(0, "Python only")
        sections.append(f"### `{field.name}` {{#{field.name}}}\n\n{' · '.join(facts)}\n\n"
                        f"{help_text}\n")
    return "\n".join(sections)


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, reference_markdown())
    return markdown
