"""Making an :class:`~parallelrun.pipeline.environment.Environment` into a virtualenv of its own.

A job's environment is not layered on parallelrun's interpreter: it is a virtualenv made from
the Python its ``python=`` pin asks for (:mod:`parallelrun.pipeline.interpreters`), holding the
user's packages and what parallelrun's worker imports (:data:`WORKER_REQUIREMENTS`), resolved
together in one resolution, so ``numpy<2`` gives the worker a pyarrow and a pandas that work
with numpy 1.x. parallelrun itself is put on the virtualenv's path (a ``.pth`` file naming a
folder that holds only the parallelrun package), not installed with its own dependencies.

Steps, each skipped when its result is already there:

1. resolve: ``uv pip compile`` of the user's requirements (pip options such as
   ``--extra-index-url`` included) and the worker's, for the chosen interpreter. The lock (every
   package pinned) is kept under ``resolved/<spec key>.txt``, the spec key being the hash of the
   packages, options, interpreter and worker needs, so the same spec is not resolved again (nor
   needs the network again). A conflict is a ConfigurationError before any work, naming the
   user's pins and the worker's needs involved (or, when the user's pins conflict among
   themselves, saying so); a conda package that the registry does not have is named as
   conda-only;
2. build: ``<root>/<lock hash>/`` is made by ``uv venv`` and ``uv pip sync`` of the lock, under a
   file lock (two jobs asking at once build it once: the second waits, then finds it ready), and
   ``.parallelrun-ready`` is written last; a folder without it is an interrupted build and is
   made again. Two specs that resolve to the same lock share one virtualenv.

``<root>`` is ``$PARALLELRUN_ENVIRONMENTS`` (a cache several workspaces share), else the
workspace's ``.parallelrun/environments``, else the user's cache folder.

Packages named ``azureml-*`` are left out with a note: inside workers parallelrun's stand-ins
are ``azureml.core`` (:mod:`parallelrun.compat`), unless the environment sets
``PARALLELRUN_AZUREML_COMPAT=0`` to use a real SDK.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from parallelrun.data.urls import scheme_of
from parallelrun.errors import BackendError, ConfigurationError
from parallelrun.pipeline.interpreters import Interpreter, find_interpreter

if TYPE_CHECKING:
    from parallelrun.pipeline.environment import Environment

READY_MARKER = ".parallelrun-ready"

#: What parallelrun's worker imports beyond the standard library, and why. A job over files with
#: text output imports none of them; tabular datasets (pyarrow reads the pieces into pandas
#: DataFrames, data/readers.py and data/records.py), csv and parquet outputs (engine/outputs.py)
#: remote data (data/remote.py) and the mlflow / mltable stand-ins (compat/modules) do. An
#: environment serves any job, so it holds them all.
#: The lower bounds are the oldest versions the worker side is tested with.
WORKER_REQUIREMENTS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy>=1.21", "tables are split into records with numpy"),
    "pandas": ("pandas>=1.5", "tables reach run() as pandas DataFrames"),
    "pyarrow": ("pyarrow>=10", "tabular datasets are read and parquet output written with pyarrow"),
    "fsspec": ("fsspec>=2022.1", "remote files are read through fsspec"),
    "pyyaml": ("pyyaml>=5.4", "the mlflow and mltable stand-ins read their YAML files"),
}

#: Needs the packages' metadata does not declare, so the resolver cannot see them: (when the
#: lock has this package in these versions, this requirement must hold too, why). Applied by
#: resolving again with the requirement added.
UNDECLARED_NEEDS: list[tuple[str, str, str, str]] = [
    ("numpy", "<2", "pyarrow<26", "pyarrow 26 refuses to import with numpy 1.x"),
]

_COMPAT_SWITCH = "PARALLELRUN_AZUREML_COMPAT"
# uv's words for a package the registry does not have
_NOT_FOUND = re.compile(r"Because (\S+) was not found in the package registry")


def environments_root(workspace: Any = None) -> str:
    """Where virtualenvs are made: ``$PARALLELRUN_ENVIRONMENTS`` (one cache shared by several
    workspaces), else the workspace's ``.parallelrun/environments``, else the user's cache."""
    shared = os.environ.get("PARALLELRUN_ENVIRONMENTS")
    if shared:
        return os.path.abspath(shared)
    if workspace is not None:
        return os.path.join(workspace.path, ".parallelrun", "environments")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "parallelrun", "environments")


#: the fsspec implementation a worker needs to read inputs of a URL scheme (data/remote.py)
STORAGE_REQUIREMENTS = {"az": "adlfs", "abfs": "adlfs", "abfss": "adlfs", "s3": "s3fs",
                        "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}


def storage_requirements(inputs: Any) -> list[str]:
    """The fsspec implementations a job's workers need to read ``inputs`` (datasets, paths or
    URLs): an environment holds them only where its job reads such URLs.

    Example: ``storage_requirements([Dataset.File.from_files("az://c/x/*.png")]) == ["adlfs"]``
    """
    from parallelrun.data.base import AbstractDataset

    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    needs = set()
    for item in items:
        if isinstance(item, AbstractDataset):
            paths = item.paths
        elif isinstance(item, (str, os.PathLike)):
            paths = [os.fspath(item)]
        else:
            continue   # a step's PipelineData: a local folder the runner hands over
        for path in paths:
            scheme = (scheme_of(path) or "").lower()
            if scheme in STORAGE_REQUIREMENTS:
                needs.add(STORAGE_REQUIREMENTS[scheme])
    return sorted(needs)


def materialise(env: Environment | None, workspace: Any = None, log_file: str | None = None,
                extra_requirements: Sequence[str] = ()) -> str | None:
    """The interpreter for ``env``'s workers, making its virtualenv first if need be.

    None (the current interpreter) for no environment, or one without packages whose Python
    pin (if any) the current interpreter meets. ``extra_requirements`` are what this job's
    workers need beyond the environment's own pins (``storage_requirements(inputs)``). Example::

        python = materialise(batch_env, ws)   # .../environments/<lock hash>/bin/python
    """
    from parallelrun.pipeline.environment import check_environment  # it imports this module

    if env is None:
        return None
    check_environment(env).validate()
    if env.python.user_managed_dependencies:
        path = env.python.interpreter_path
        return None if path in ("python", "python3", None) else path
    planned = _plan(env, workspace, extra_requirements)
    if planned is None:
        return None
    interpreter, lock, root = planned
    folder = os.path.join(root, _lock_key(lock, interpreter))
    python = os.path.join(folder, "bin", "python")
    if os.path.exists(os.path.join(folder, READY_MARKER)):
        return python
    os.makedirs(root, exist_ok=True)
    # fcntl rather than a library: three lines, and workers only run on POSIX systems anyway
    with open(folder + ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)   # another job may be making the same one
        if not os.path.exists(os.path.join(folder, READY_MARKER)):
            _build(env, interpreter, lock, folder, log_file)
    return python


def resolve_environment(env: Environment | None, workspace: Any = None) -> str | None:
    """Resolve ``env`` now (the lock is kept for its build), so that a Python version that is
    not here or a conflict with the worker's needs is refused before any work: what submit
    checks. The lock's text, or None where there is nothing to resolve."""
    if env is None or not hasattr(env, "python") or env.python.user_managed_dependencies:
        return None   # none, or not parallelrun's Environment (an object giving Ray's runtime_env)
    env.validate()
    planned = _plan(env, workspace)
    return planned[1] if planned is not None else None


def _plan(env: Environment, workspace: Any,
          extra_requirements: Sequence[str] = ()) -> tuple[Interpreter, str, str] | None:
    """(interpreter, lock, root) for ``env``, or None for the current interpreter as it is."""
    deps = env.python.conda_dependencies
    interpreter = find_interpreter(deps.get_python_version() if deps is not None else None)
    own = _installed_packages(env)
    if not own and interpreter.path == sys.executable:
        return None
    packages = own + [r for r in extra_requirements if r not in own]
    root = environments_root(workspace)
    return interpreter, _resolve(env, interpreter, packages, root), root


def worker_requirements() -> list[str]:
    """The requirements of parallelrun's worker (see :data:`WORKER_REQUIREMENTS`)."""
    return [requirement for requirement, _ in WORKER_REQUIREMENTS.values()]


# Resolving --------------------------------------------------------------------------------

def _installed_packages(env: Environment) -> list[str]:
    """The requirements the user's environment asks for, less ``azureml-*`` (noted)."""
    packages = env.packages()
    if (env.environment_variables or {}).get(_COMPAT_SWITCH) == "0":
        return packages
    kept, left = [], []
    for spec in packages:
        name = _name_of(spec)
        (left if name and name.startswith("azureml-") else kept).append(spec)
    if left:
        env._note(f"{left} are not installed: inside workers parallelrun's stand-ins are "
                  f"azureml.* (set {_COMPAT_SWITCH}=0 in environment_variables to install and "
                  "use the real SDK)")
    deps = env.python.conda_dependencies
    if deps is not None and deps.conda_packages:
        env._note(f"conda packages {deps.conda_packages} are installed from PyPI under the same "
                  "names (there is no conda here)")
    return kept


def _pip_options(env: Environment) -> list[str]:
    deps = env.python.conda_dependencies
    return list(deps.pip_options) if deps is not None else []


def _resolve(env: Environment, interpreter: Interpreter, packages: list[str], root: str) -> str:
    """The lock for ``packages`` with the worker's needs: kept from an earlier resolution of the
    same spec, else resolved now (see the module doc, step 1)."""
    spec = {"packages": sorted(packages), "pip_options": _pip_options(env),
            "python": [os.path.realpath(interpreter.path), list(interpreter.version)],
            "worker": worker_requirements(), "format": 1}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]
    kept = os.path.join(root, "resolved", f"{key}.txt")
    if os.path.exists(kept):
        return Path(kept).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="parallelrun-resolve-") as scratch:
        user_in = os.path.join(scratch, "environment.in")
        worker_in = os.path.join(scratch, "worker.in")
        Path(user_in).write_text("\n".join(_pip_options(env) + packages) + "\n", encoding="utf-8")
        needs = worker_requirements()
        while True:
            Path(worker_in).write_text("\n".join(needs) + "\n", encoding="utf-8")
            result = _compile(interpreter, user_in, worker_in)
            if result.returncode != 0:
                _explain_conflict(env, interpreter, packages, user_in, result.stderr)
            more = _undeclared_needs(result.stdout, needs)
            if not more:
                break
            needs += more
    lock = "".join(line + "\n" for line in result.stdout.splitlines()
                   if line.strip() and not line.lstrip().startswith("#"))
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(kept), suffix=".partial")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(lock)
    os.replace(partial, kept)   # whole or not at all: two resolutions at once both write it
    return lock


def _undeclared_needs(lock: str, needs: list[str]) -> list[str]:
    """The :data:`UNDECLARED_NEEDS` that ``lock`` breaks and ``needs`` does not hold yet."""
    from packaging.specifiers import SpecifierSet

    pinned = {}
    for line in lock.splitlines():
        name, _, version = line.partition("==")
        if version:
            pinned[canonicalize_name(name.strip())] = version.split(";")[0].strip()
    more = []
    for package, versions, requirement, _why in UNDECLARED_NEEDS:
        if package in pinned and SpecifierSet(versions).contains(pinned[package]) \
                and requirement not in needs:
            needed = Requirement(requirement)
            have = pinned.get(canonicalize_name(needed.name))
            if have is not None and not needed.specifier.contains(have):
                more.append(requirement)
    return more


def _compile(interpreter: Interpreter, *requirement_files: str) -> subprocess.CompletedProcess:
    command = [_uv(), "pip", "compile", "--python", interpreter.path, "--no-python-downloads",
               "--no-header", "--no-annotate", "--no-progress", *requirement_files]
    return subprocess.run(command, check=False, capture_output=True, text=True, env=_uv_environment())


def _explain_conflict(env: Environment, interpreter: Interpreter, packages: list[str],
                      user_in: str, uv_says: str) -> None:
    """Raise the ConfigurationError for a failed resolution: which side asks for what."""
    from parallelrun.pipeline.environment import _package_name   # conda's forms too

    said = _uv_reason(uv_says)
    deps = env.python.conda_dependencies
    conda = {_package_name(c): c for c in (deps.conda_packages if deps is not None else [])}
    missing = [m for m in _NOT_FOUND.findall(said) if canonicalize_name(m) in conda]
    if missing:
        raise ConfigurationError(
            "conda_packages", [conda[canonicalize_name(m)] for m in missing],
            f"packages PyPI has (there is no conda here): {', '.join(missing)} is conda-only, "
            f"not in the package registry. Give its PyPI counterpart as a pip package, or leave "
            f"it out of environment {env.name!r}. The resolver said: {said}")
    alone = _compile(interpreter, user_in)
    if alone.returncode != 0:
        raise ConfigurationError(
            "pip_packages", packages,
            f"requirements that can be installed together for Python "
            f"{interpreter.version_text}; environment {env.name!r}'s own requirements cannot: "
            f"{_uv_reason(alone.stderr)}")
    # uv explains a failed resolution only in prose (no machine-readable report): the package
    # names it mentions pick out whose pins are in the conflict
    mentioned = set(re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", said.lower()))
    mentioned = {canonicalize_name(word) for word in mentioned}
    users = [p for p in packages if _name_of(p) in mentioned] or packages
    workers = [f"{requirement} ({why})" for name, (requirement, why) in
               WORKER_REQUIREMENTS.items() if name in mentioned] or [
        f"{requirement} ({why})" for requirement, why in WORKER_REQUIREMENTS.values()]
    raise ConfigurationError(
        "pip_packages", users,
        f"requirements that parallelrun's worker can run with: environment {env.name!r} asks "
        f"for {', '.join(users)}, and the worker needs {'; '.join(workers)}. The resolver "
        f"(Python {interpreter.version_text}) said: {said}. Loosen the pin, or (for a job over "
        f"files that needs none of the worker's packages) use "
        f"python.user_managed_dependencies with an interpreter of your own")


def _uv_reason(stderr: str) -> str:
    """uv's explanation, on one line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("Resolved", "warning:"))]
    text = " ".join(line.removeprefix("cause:").strip() for line in lines)
    return text.removeprefix("error:").strip() or "(no explanation given)"


def _name_of(spec: str) -> str | None:
    try:
        return canonicalize_name(Requirement(spec).name)
    except InvalidRequirement:
        return None


def _lock_key(lock: str, interpreter: Interpreter) -> str:
    what = {"lock": lock, "python": [os.path.realpath(interpreter.path),
                                     list(interpreter.version)]}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:20]


# Building ---------------------------------------------------------------------------------

def _build(env: Environment, interpreter: Interpreter, lock: str, folder: str,
           log_file: str | None) -> None:
    if os.path.exists(folder):
        shutil.rmtree(folder)  # an earlier attempt died half-way
    started = time.time()
    os.makedirs(folder)
    build_log = os.path.join(folder, "build.log")
    Path(folder, "requirements.lock").write_text(lock, encoding="utf-8")
    _run([_uv(), "venv", "--python", interpreter.path, "--no-python-downloads", "--no-project",
          "--allow-existing", folder], build_log, env, "create the virtualenv")
    python = os.path.join(folder, "bin", "python")
    _run([_uv(), "pip", "sync", "--python", python, "--no-python-downloads", "--no-progress",
          os.path.join(folder, "requirements.lock")], build_log, env,
         f"install {len(lock.splitlines())} packages")
    _put_parallelrun_on_path(folder, python, env, build_log)
    with open(os.path.join(folder, "spec.json"), "w", encoding="utf-8") as fh:
        json.dump({"environment": env.spec(), "python": interpreter.path,
                   "python_version": interpreter.version_text, "lock": lock.splitlines(),
                   "built_in_seconds": round(time.time() - started, 2)}, fh, indent=2)
    Path(folder, READY_MARKER).write_text(f"{time.time()}\n", encoding="utf-8")
    if log_file:
        with open(log_file, "a", encoding="utf-8") as fh:
            fh.write(f"environment {env.name}: made {folder} (Python "
                     f"{interpreter.version_text}) in {time.time() - started:.1f} s\n")


def _put_parallelrun_on_path(folder: str, python: str, env: Environment, build_log: str) -> None:
    """A ``.pth`` naming a folder that holds only a link to the parallelrun package: putting
    the folder parallelrun is installed in on the path would bring its other packages along."""
    package = Path(__file__).resolve().parents[1]
    holder = os.path.join(folder, "parallelrun-package")
    os.makedirs(holder)
    os.symlink(package, os.path.join(holder, "parallelrun"))
    result = subprocess.run([python, "-I", "-c",
                             "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackendError(f"environment {env.name!r}: its interpreter {python} does not start: "
                           f"{result.stderr.strip()[-500:]}\nfull log: {build_log}")
    Path(result.stdout.strip(), "_parallelrun.pth").write_text(holder + "\n", encoding="utf-8")


def _uv() -> str:
    """The uv executable (the ``uv`` package, a dependency of parallelrun)."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise BackendError("environments are built with uv, which is not installed here: "
                               "pip install uv") from None
        return found


def _uv_environment() -> dict[str, str]:
    # never download an interpreter: a pin uses one that is on this machine
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}


def _run(command: list[str], log_path: str, env: Environment, what: str) -> None:
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=_uv_environment())
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise BackendError(f"environment {env.name!r}: could not {what} (exit code "
                           f"{result.returncode}):\n{tail}\nfull log: {log_path}")
