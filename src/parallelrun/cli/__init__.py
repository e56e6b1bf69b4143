"""The terminal: ``parallelrun <command>``, a thin layer over the public API.

Each command group lives in its own module and registers itself on :data:`main` when this
package imports it (see ``_COMMAND_MODULES``); adding a command is adding a module.
"""

from __future__ import annotations

import importlib

import click

from parallelrun import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="parallelrun")
def main() -> None:
    """parallelrun: run an entry script's run() over large data in parallel."""


# modules whose import adds commands to ``main``
_COMMAND_MODULES = ["parallelrun.cli.run", "parallelrun.cli.workspace", "parallelrun.cli.runs",
                    "parallelrun.cli.jobs", "parallelrun.cli.ui", "parallelrun.cli.pipelines"]

for _module in _COMMAND_MODULES:
    importlib.import_module(_module)
