"""``parallelrun ui``: serve the dashboard of a workspace on this machine.

It listens on 127.0.0.1 (``--host`` opens it to others, with a warning) at ``--port`` or the next
free port, and prints the URL and the token that the one action, cancelling a run, requires.
Everything it shows comes from the workspace catalog and log folders, so runs started by any
process appear and update live. Outside a workspace it shows the default one (``~/.parallelrun``
or ``$PARALLELRUN_HOME``), where jobs started outside a workspace are recorded.

\b
Examples:
  parallelrun ui
  parallelrun ui --workspace ~/projects/mnist --port 9000
"""

from __future__ import annotations

import sys

import click

from parallelrun.cli import main
from parallelrun.cli.common import (open_workspace, reports_errors, stderr, stdout,
                                     workspace_option)


@main.command("ui")
@workspace_option
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; the next free one when taken (0: any free port).")
@click.option("--host", default=None, metavar="ADDRESS",
              help="Listen on this address instead of 127.0.0.1 (e.g. 0.0.0.0): anyone who can "
                   "reach it can read the workspace's runs and logs. Default: 127.0.0.1.")
@click.option("--token", default=None, envvar="PARALLELRUN_UI_TOKEN", metavar="SECRET",
              help="The cancel token to require (default: a new random one). "
                   "Env: PARALLELRUN_UI_TOKEN.")
@reports_errors
def ui_command(workspace_path, port, host, token) -> None:
    """Serve a live dashboard of the workspace's experiments, runs, steps, logs and registries."""
    try:
        from parallelrun.ui.server import DEFAULT_HOST, Dashboard, is_loopback

        if workspace_path is None:
            # outside a workspace: the default one, where jobs started here are recorded
            from parallelrun.workspace.default_workspace import workspace_for_runs

            workspace, created = workspace_for_runs()
            if created:
                stderr.print(f"note: no workspace here: showing the default workspace "
                             f"{workspace.path} (made now), where jobs started outside a "
                             "workspace are recorded", soft_wrap=True, markup=False)
        else:
            workspace = open_workspace(workspace_path)
        if host is not None and not is_loopback(host):
            stderr.print(f"[bold yellow]warning:[/] listening on {host}: anyone who can reach this "
                         "address can read this workspace's runs, logs and registries (the cancel "
                         "token still guards cancelling). Use the default 127.0.0.1 and an SSH "
                         "tunnel to share it safely.", soft_wrap=True)
        dashboard = Dashboard(workspace, host=host or DEFAULT_HOST, port=port, token=token)
    except ImportError as exc:
        stderr.print(f"[bold red]error:[/] the dashboard needs the ui extra ({exc.name} is "
                     "missing): pip install 'parallelrun[ui]'", soft_wrap=True)
        sys.exit(2)
    if port and dashboard.port != port:
        stdout.print(f"port {port} is taken; using {dashboard.port}")
    stdout.print(f"parallelrun dashboard of workspace {workspace.name!r} ({workspace.path})",
                 soft_wrap=True, markup=False)
    stdout.print(f"URL: {dashboard.url}", soft_wrap=True, markup=False)
    stdout.print(f"cancel token: {dashboard.token}", soft_wrap=True, markup=False)
    stdout.print(f"open with the token (cancel enabled in that tab): {dashboard.url_with_token}",
                 soft_wrap=True, markup=False)
    stdout.print("Ctrl-C stops it.", markup=False)
    sys.stdout.flush()
    try:
        dashboard.serve()
    except KeyboardInterrupt:
        pass
