"""Runs a command node's ``command`` (``python x.py --a 1``, ``bash run.sh``...) as the process
of its pipeline step: ``python command_shim.py <tokens>``.

The runner starts script steps as ``python <script> <arguments>`` in the step's code folder,
with the step's environment's interpreter; this file is that script for command nodes. It
replaces itself with the command (``exec``, so cancel and the runner's death reach the command
itself), ``python``/``python3`` being the same interpreter. A command with shell operators
(``|``, ``&&``, ``>``, ``$VAR``...) runs under ``/bin/sh -c``.

The command's Python finds parallelrun's stand-ins (``mltable``, ``mlflow``, ``azureml.core``;
:mod:`parallelrun.compat`) at the end of ``PYTHONPATH``: packages installed in the environment
come first, the stand-ins fill in for those that are not (``PARALLELRUN_AZUREML_COMPAT=0``: none).
"""

from __future__ import annotations

import os
import shlex
import sys

#: tokens that only a shell gives meaning to (a command holding one runs under /bin/sh -c)
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1", "&"}


def command_line(tokens: list[str]) -> list[str]:
    """What to exec for a command given as ``tokens``."""
    if any(t in SHELL_OPERATORS or "$" in t or "`" in t for t in tokens):
        return ["/bin/sh", "-c", " ".join(t if t in SHELL_OPERATORS or "$" in t or "`" in t
                                          else shlex.quote(t) for t in tokens)]
    if tokens[0] in ("python", "python3"):
        return [sys.executable, *tokens[1:]]
    return tokens


def main() -> None:
    tokens = sys.argv[1:]
    if not tokens:
        sys.exit("command_shim: no command given")
    line = command_line(tokens)
    os.execvpe(line[0], line, command_environment(os.environ))


def command_environment(environ) -> dict[str, str]:
    """The command's environment: ``environ`` with the stand-ins last on ``PYTHONPATH``."""
    from parallelrun import compat

    env = dict(environ)
    if compat.enabled():
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if compat.MODULES_DIR not in paths:
            env["PYTHONPATH"] = os.pathsep.join([*paths, compat.MODULES_DIR])
    return env


if __name__ == "__main__":
    main()
