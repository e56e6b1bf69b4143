"""Python interpreters on this machine, for an environment that pins ``python=3.x``.

An environment is a virtualenv made from a real interpreter of the pinned version, so the
version has to be installed somewhere. Where to look (the places Python installers put it):

* the interpreter parallelrun runs in;
* every ``python``, ``python3`` and ``python3.N`` on ``PATH`` (pyenv's shims are skipped: they
  answer only for the versions pyenv's settings select, its versions folder is read instead);
* pyenv's versions (``$PYENV_ROOT/versions/*``, default ``~/.pyenv``), uv's managed Pythons
  (``~/.local/share/uv/python/*``), conda's environments (``~/miniconda3``, ``~/anaconda3``,
  ``~/miniforge3``, ``/opt/conda``), and ``/usr/bin``, ``/usr/local/bin``, ``/opt/python*``.

Each candidate is asked for its version (one ``python -c`` each, only for those whose name does
not already say it). The worker side of parallelrun runs on Python
:data:`OLDEST_WORKER_PYTHON` and newer; an older pin is refused naming that version.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
import re
import subprocess
import sys

from parallelrun.errors import ConfigurationError

#: The oldest Python the worker side (backends/local_worker.py, worker_loop.py, script.py, the
#: data payloads and the azureml/mlflow/mltable stand-ins) runs on: 3.7 has no typing.Protocol
#: and no pandas 1.5 (see environment_build.WORKER_REQUIREMENTS). Worker-side modules keep to
#: 3.8 at run time (``from __future__ import annotations``; ``Union[...]``, not ``X | Y``,
#: outside annotations).
OLDEST_WORKER_PYTHON = (3, 8)

_VERSION_IN_NAME = re.compile(r"(?:^|/)(?:python|cpython-)?(\d+)\.(\d+)(?:\.(\d+))?")
_ASK_VERSION = ("import sys, platform; "
                "print(platform.python_implementation(), *sys.version_info[:3])")


@dataclasses.dataclass(frozen=True)
class Interpreter:
    """A Python interpreter found on this machine: its path and ``(major, minor, micro)``."""

    path: str
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def parse_python_pin(pin: str) -> tuple[int, ...]:
    """``"3.8"`` -> ``(3, 8)``, ``"3.8.5"`` -> ``(3, 8, 5)``, ``"3"`` -> ``(3,)``, ``"3.8.*"`` ->
    ``(3, 8)``; anything else is a ConfigurationError."""
    parts = [p for p in str(pin).strip().split(".") if p not in ("", "*", "x")]
    if not parts or len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise ConfigurationError("python_version", pin, "a Python version such as '3.11' or "
                                 "'3.11.7' (conda's python=3.11 in a conda file)")
    return tuple(int(p) for p in parts)


def find_interpreter(pin: str | None) -> Interpreter:
    """The interpreter for a ``python=`` pin: the running one when it matches (or for no pin),
    else the newest match on the machine. Errors name the versions there are and how to add one.

    Example: ``find_interpreter("3.11").path`` -> ``/root/.pyenv/versions/3.11.7/bin/python``.
    """
    running = Interpreter(sys.executable, tuple(sys.version_info[:3]))
    if pin is None:
        return running
    wanted = parse_python_pin(pin)
    oldest = ".".join(map(str, OLDEST_WORKER_PYTHON))
    if wanted[:2] < OLDEST_WORKER_PYTHON[:len(wanted)]:
        raise ConfigurationError(
            "python_version", pin, f"Python {oldest} or newer: parallelrun's worker runs on "
            f"Python {oldest} and newer (pin python={oldest} or later)")
    if _matches(running.version, wanted):
        return running
    matching = [i for i in available_interpreters(wanted) if _matches(i.version, wanted)]
    if matching:
        return max(matching, key=lambda i: i.version)
    there = sorted({i.version_text for i in available_interpreters()
                    if i.version[:2] >= OLDEST_WORKER_PYTHON}, key=_version_key)
    major_minor = ".".join(map(str, wanted[:2]))
    raise ConfigurationError(
        "python_version", pin,
        f"a Python installed on this machine; none of version {'.'.join(map(str, wanted))} was "
        f"found (looked on PATH, in pyenv's, uv's and conda's folders). Installed: "
        f"{', '.join(there) or 'none'}. Pin one of those, or install {major_minor}: "
        f"`pyenv install {major_minor}`, `uv python install {major_minor}`, or your system's "
        f"package (e.g. apt-get install python{major_minor})")


def available_interpreters(wanted: tuple[int, ...] | None = None) -> list[Interpreter]:
    """The interpreters found (see the module doc), one per real path. With ``wanted``, only
    candidates whose name could be that version are asked (a name without a version always is)."""
    found: dict[str, Interpreter] = {}
    for path in _candidates():
        real = os.path.realpath(path)
        if real in found:
            continue
        hint = _version_from_name(path)
        if wanted is not None and hint is not None and not _matches(hint, wanted[:len(hint)]):
            continue
        version = _ask_version(real)
        if version is not None:
            found[real] = Interpreter(path, version)
    return list(found.values())


def _matches(version: tuple[int, ...], wanted: tuple[int, ...]) -> bool:
    return tuple(version[:len(wanted)]) == tuple(wanted)


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _version_from_name(path: str) -> tuple[int, ...] | None:
    """The version a path's name gives (``.../versions/3.8.18/bin/python`` -> (3, 8, 18),
    ``/usr/bin/python3.11`` -> (3, 11)), or None."""
    match = None
    for match in _VERSION_IN_NAME.finditer(path):
        pass   # the last one: a version folder may sit under another versioned folder
    if match is None:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


@functools.cache
def _ask_version(path: str) -> tuple[int, int, int] | None:
    """``(major, minor, micro)`` of a CPython at ``path``; None for anything that is not one."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return None
    try:
        result = subprocess.run([path, "-I", "-c", _ASK_VERSION], check=False,
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = result.stdout.split()
    if result.returncode != 0 or len(parts) != 4 or parts[0] != "CPython":
        return None
    return tuple(int(p) for p in parts[1:])  # type: ignore[return-value]


def _candidates() -> list[str]:
    home = os.path.expanduser("~")
    pyenv = os.environ.get("PYENV_ROOT") or os.path.join(home, ".pyenv")
    places = [sys.executable]
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and "shims" not in folder.split(os.sep):
            places += _pythons_in(folder)
    places += glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python"))
    uv_managed = os.path.join(home, ".local", "share", "uv", "python")
    places += glob.glob(os.path.join(uv_managed, "*", "bin", "python3"))
    for conda in ("miniconda3", "anaconda3", "miniforge3", "mambaforge"):
        places += glob.glob(os.path.join(home, conda, "bin", "python"))
        places += glob.glob(os.path.join(home, conda, "envs", "*", "bin", "python"))
    places += glob.glob("/opt/conda/bin/python") + glob.glob("/opt/conda/envs/*/bin/python")
    for folder in ("/usr/bin", "/usr/local/bin", *glob.glob("/opt/python*/bin")):
        places += _pythons_in(folder)
    return places


def _pythons_in(folder: str) -> list[str]:
    names = glob.glob(os.path.join(glob.escape(folder), "python3.*")) + [
        os.path.join(folder, n) for n in ("python3", "python")]
    # python3.11-config and the like are not interpreters
    return [p for p in names if re.fullmatch(r"python(3(\.\d+)?)?", os.path.basename(p))]
