"""``Environment`` and ``CondaDependencies``: the Python packages and variables a step's workers
run with, after Azure ML's classes of the same names.

Locally an environment with packages, or with a ``python=`` pin other than the Python
parallelrun runs in, becomes a virtualenv of its own, made once and reused (built by
:mod:`parallelrun.pipeline.environment_build`: the user's packages and what parallelrun's worker
needs resolved together, from an interpreter of the pinned version found on this machine,
:mod:`parallelrun.pipeline.interpreters`).

An environment without packages or pin is the current interpreter. Environment variables go to
the workers. Docker and Spark settings are accepted, so code written for Azure ML runs, and
ignored with a note: locally workers are processes on this machine. Conda files are read for
their Python version and pip part; their conda packages are installed from PyPI under the same
names (there is no conda here), with a note, and one PyPI does not have is an error naming it.

Longer than most modules: Azure ML's ``Environment`` and ``CondaDependencies`` surface is kept
whole, so notebooks written for it run; the virtualenv build lives in ``environment_build``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from parallelrun.backends.base import RuntimeSpec
from parallelrun.errors import ConfigurationError
# materialise is imported from here by the runner
from parallelrun.pipeline.environment_build import (  # noqa: F401
    environments_root, materialise, storage_requirements)
from parallelrun.pipeline.interpreters import find_interpreter

log = logging.getLogger("parallelrun.pipeline.environment")

#: Azure ML's default base image names, as its SDK exports them (``docker.base_image``'s default)
DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/base:intelmpi2018.3-ubuntu16.04"
#: the GPU counterpart of DEFAULT_CPU_IMAGE
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/base-gpu:intelmpi2018.3-cuda10.0-cudnn7-ubuntu16.04"

# conda "packages" that are not packages for pip
_NOT_PIP = {"python", "pip"}


class CondaDependencies:
    """Packages of an environment: pip packages, conda packages and a Python version.

    Example::

        deps = CondaDependencies.create(pip_packages=["pillow", "onnxruntime==1.17.*"])
        deps.add_pip_package("scikit-learn")
        env.python.conda_dependencies = deps

    ``CondaDependencies(conda_dependencies_file_path="env.yml")`` reads a conda spec file
    (``dependencies: [python=3.11, numpy, {pip: [pillow]}]``).
    """

    def __init__(self, conda_dependencies_file_path: str | os.PathLike | None = None,
                 _underlying_structure: dict | None = None):
        self.name = "project_environment"
        self.channels: list[str] = []
        self._conda: list[str] = []
        self._pip: list[str] = []
        self._pip_options: list[str] = []
        self._python: str | None = None
        if conda_dependencies_file_path is not None:
            _underlying_structure = _read_spec_file(conda_dependencies_file_path)
        if _underlying_structure is not None:
            self._load(_underlying_structure, str(conda_dependencies_file_path or "spec"))

    @staticmethod
    def create(pip_packages: list[str] | None = None, conda_packages: list[str] | None = None,
               python_version: str | None = None, pin_sdk_version: bool = True,
               pip_indexurl: str | None = None) -> "CondaDependencies":
        """Dependencies from lists of packages (Azure ML's signature).

        Example: ``CondaDependencies.create(pip_packages=["pillow"], python_version="3.11")``.
        """
        deps = CondaDependencies()
        for name in conda_packages or []:
            deps.add_conda_package(name)
        for name in pip_packages or []:
            deps.add_pip_package(name)
        if python_version is not None:
            deps.set_python_version(python_version)
        if pip_indexurl:
            deps.set_pip_option(f"--index-url {pip_indexurl}")
        return deps

    def _load(self, data: dict, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigurationError("conda_dependencies", where,
                                     "a conda spec: a mapping with 'dependencies'")
        self.name = str(data.get("name") or self.name)
        self.channels = [str(c) for c in data.get("channels") or []]
        for item in data.get("dependencies") or []:
            if isinstance(item, dict):
                pip = item.get("pip")
                if pip is None:
                    raise ConfigurationError("dependencies", item, "package names, or a "
                                             "{'pip': [...]} mapping for pip packages")
                for name in pip:
                    name = str(name).strip()
                    if name.startswith("-"):
                        self._pip_options.append(name)
                    else:
                        self.add_pip_package(name)
            else:
                self.add_conda_package(str(item))

    @property
    def pip_packages(self) -> list[str]:
        return list(self._pip)

    @property
    def conda_packages(self) -> list[str]:
        return list(self._conda)

    @property
    def pip_options(self) -> list[str]:
        return list(self._pip_options)

    def add_pip_package(self, pip_package: str) -> None:
        pip_package = str(pip_package).strip()
        if not pip_package:
            raise ConfigurationError("pip_packages", pip_package, "a non-empty package spec")
        if pip_package not in self._pip:
            self._pip.append(pip_package)

    def remove_pip_package(self, pip_package: str) -> None:
        self._pip = [p for p in self._pip if _package_name(p) != _package_name(pip_package)]

    def add_conda_package(self, conda_package: str) -> None:
        conda_package = str(conda_package).strip()
        name = _package_name(conda_package)
        if name == "python":
            self._python = _version_of(conda_package) or self._python
            return
        if name == "pip" or not conda_package:
            return
        if conda_package not in self._conda:
            self._conda.append(conda_package)

    def remove_conda_package(self, conda_package: str) -> None:
        self._conda = [p for p in self._conda if _package_name(p) != _package_name(conda_package)]

    def add_channel(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.append(channel)

    def set_pip_option(self, pip_option: str) -> None:
        if pip_option not in self._pip_options:
            self._pip_options.append(pip_option)

    def set_python_version(self, version: str) -> None:
        self._python = str(version).strip()

    def get_python_version(self) -> str | None:
        return self._python

    def spec(self) -> dict:
        """The parts that decide what gets installed (sorted: order does not matter)."""
        return {"pip": sorted(self._pip), "conda": sorted(self._conda),
                "pip_options": list(self._pip_options), "python": self._python}

    def serialize_to_string(self) -> str:
        """The conda spec file text (YAML)."""
        import yaml

        deps: list[Any] = [f"python={self._python}" if self._python else "python", "pip"]
        deps += self._conda
        if self._pip or self._pip_options:
            deps.append({"pip": self._pip_options + self._pip})
        return yaml.safe_dump({"name": self.name, "channels": self.channels or ["conda-forge"],
                               "dependencies": deps}, sort_keys=False)

    def save(self, path: str | os.PathLike) -> str:
        Path(path).write_text(self.serialize_to_string(), encoding="utf-8")
        return os.fspath(path)

    def __repr__(self) -> str:
        return f"CondaDependencies(pip={self._pip}, conda={self._conda}, python={self._python})"


class _Section:
    """Settings accepted for Azure ML code and ignored locally; setting one leaves a note."""

    _kind = ""
    _defaults: dict[str, Any] = {}

    def __init__(self, owner: "Environment"):
        object.__setattr__(self, "_owner", owner)
        for key, value in self._defaults.items():
            object.__setattr__(self, key, copy.copy(value))

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)
        default = self._defaults.get(key)
        if value != default and value not in (None, False):
            self._owner._note(f"{self._kind}.{key} is ignored: locally the workers are processes "
                              "on this machine")


class DockerSection(_Section):
    _kind = "docker"
    _defaults = {"enabled": False, "base_image": DEFAULT_CPU_IMAGE, "base_dockerfile": None,
                 "base_image_registry": None, "shm_size": None, "arguments": [],
                 "gpu_support": False, "shared_volumes": True}


class SparkSection(_Section):
    _kind = "spark"
    _defaults = {"precache_packages": True, "repositories": [], "packages": []}


class PythonSection:
    """``env.python``: ``conda_dependencies``, ``user_managed_dependencies``, ``interpreter_path``."""

    def __init__(self):
        self.conda_dependencies = CondaDependencies()
        #: True: use ``interpreter_path`` as it is, install nothing
        self.user_managed_dependencies = False
        self.interpreter_path = "python"
        self.conda_dependencies_file = None


class Environment:
    """The Python environment of a step's workers.

    Example (the original document's code)::

        batch_env = Environment(name="batch_environment")
        batch_env.python.conda_dependencies = CondaDependencies.create(pip_packages=["pillow"])
        batch_env.environment_variables = {"OMP_NUM_THREADS": "1"}
        batch_env.docker.enabled = True          # accepted, ignored locally (noted)

    Give it to ``ParallelRunConfig(environment=batch_env)`` or a ``PythonScriptStep``.
    """

    def __init__(self, name: str):
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("Environment.name", name, "a non-empty name")
        self.name = name
        self.version: str | None = None
        self.python = PythonSection()
        self.docker = DockerSection(self)
        self.spark = SparkSection(self)
        self.environment_variables: dict[str, str] = {}
        self.inferencing_stack_version = None
        self.r = None
        self.notes: list[str] = []

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            log.info("environment %s: %s", self.name, text)

    # Azure ML's constructors ----------------------------------------------------------------
    @staticmethod
    def from_conda_specification(name: str, file_path: str | os.PathLike) -> "Environment":
        """An environment from a conda spec file; its pip part is installed, see the module doc.

        Example: ``Environment.from_conda_specification("batch", "env.yml")``.
        """
        env = Environment(name)
        env.python.conda_dependencies = CondaDependencies(conda_dependencies_file_path=file_path)
        return env

    @staticmethod
    def from_pip_requirements(name: str, file_path: str | os.PathLike) -> "Environment":
        """An environment from a ``requirements.txt`` (comments and blank lines skipped)."""
        env = Environment(name)
        deps = CondaDependencies()
        try:
            lines = Path(file_path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError("file_path", os.fspath(file_path),
                                     f"a readable requirements file ({exc.strerror})") from None
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line.startswith("-"):
                deps.set_pip_option(line)
            elif line:
                deps.add_pip_package(line)
        env.python.conda_dependencies = deps
        return env

    @staticmethod
    def from_existing_conda_environment(name: str, conda_environment_name: str) -> "Environment":
        raise ConfigurationError(
            "conda_environment_name", conda_environment_name,
            "not available: there is no conda here; use Environment.from_conda_specification "
            "with the environment's exported spec (conda env export > env.yml)")

    @staticmethod
    def get(workspace: Any, name: str, version: int | str | None = None) -> "Environment":
        """A registered environment (``env.register(ws)``), the latest version by default."""
        from parallelrun.pipeline.records import RunStore

        record = RunStore(workspace).environment(name, version)
        env = Environment.from_spec(record["spec"])
        env.version = str(record["version"])
        return env

    def register(self, workspace: Any) -> "Environment":
        """Store this environment in the workspace; a new version only if its spec changed."""
        from parallelrun.pipeline.records import RunStore

        self.version = str(RunStore(workspace).register_environment(
            self.name, self.spec(), self.spec_hash()))
        return self

    @staticmethod
    def from_spec(spec: dict) -> "Environment":
        """The environment :meth:`spec` describes."""
        env = Environment(spec["name"])
        deps = CondaDependencies()
        for name in spec.get("conda") or []:
            deps.add_conda_package(name)
        for name in spec.get("pip") or []:
            deps.add_pip_package(name)
        for option in spec.get("pip_options") or []:
            deps.set_pip_option(option)
        if spec.get("python"):
            deps.set_python_version(spec["python"])
        env.python.conda_dependencies = deps
        env.python.user_managed_dependencies = bool(spec.get("user_managed"))
        env.python.interpreter_path = spec.get("interpreter_path") or "python"
        env.environment_variables = dict(spec.get("environment_variables") or {})
        return env

    # What it is -------------------------------------------------------------------------------
    def spec(self) -> dict:
        """Everything that defines this environment, JSON-able."""
        deps = self.python.conda_dependencies or CondaDependencies()
        return {"name": self.name, **deps.spec(),
                "user_managed": bool(self.python.user_managed_dependencies),
                "interpreter_path": self.python.interpreter_path,
                "environment_variables": {str(k): str(v) for k, v in
                                          sorted((self.environment_variables or {}).items())}}

    def spec_hash(self) -> str:
        """SHA-256 of :meth:`spec` (what reuse hashes for the environment)."""
        return hashlib.sha256(json.dumps(self.spec(), sort_keys=True).encode()).hexdigest()

    def packages(self) -> list[str]:
        """What pip installs: pip packages, then conda packages by the same name."""
        deps = self.python.conda_dependencies or CondaDependencies()
        return deps.pip_packages + [_conda_to_pip(p) for p in deps.conda_packages]

    def runtime_spec(self, python: str | None = None) -> RuntimeSpec:
        """What the engine and its backends are given of this environment: plain values
        (``python``: the interpreter :func:`materialise` made for it, None for the
        coordinator's).

        Example: ``env.runtime_spec().pip`` -> ``("pillow",)``
        """
        return RuntimeSpec(python=python, pip=tuple(self.packages()),
                           environment_variables={str(k): str(v) for k, v in
                                                  (self.environment_variables or {}).items()})

    def validate(self) -> None:
        """Check what can be checked without installing: variables and the Python version."""
        env_vars = self.environment_variables or {}
        if not isinstance(env_vars, dict) or not all(isinstance(k, str) for k in env_vars):
            raise ConfigurationError("environment_variables", env_vars,
                                     "a dict of str to str, e.g. {'OMP_NUM_THREADS': '1'}")
        check_python_version(self)
        if self.python.user_managed_dependencies and self.python.interpreter_path not in (
                "python", "python3", None):
            path = self.python.interpreter_path
            if not os.path.isfile(path) or not os.access(path, os.X_OK):
                raise ConfigurationError("python.interpreter_path", path,
                                         "an existing Python interpreter, e.g. /opt/venv/bin/python")

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, packages={self.packages()})"


class RunConfiguration:
    """Azure ML's run configuration, as far as a ``PythonScriptStep`` uses it: its
    ``environment`` (an Environment without packages, i.e. this interpreter, until set).

    Example::

        run_config = RunConfiguration()
        run_config.environment.python.conda_dependencies = CondaDependencies.create(
            pip_packages=["pandas"])
        PythonScriptStep(script_name="prep.py", runconfig=run_config, ...)
    """

    def __init__(self, script: str | None = None, arguments: list | None = None,
                 framework: str | None = None, communicator: str | None = None,
                 conda_dependencies: CondaDependencies | None = None, **_azure_arguments: Any):
        self.script = script
        self.arguments = list(arguments or [])
        self.target = "local"
        self.environment = Environment(name="run_configuration_environment")
        if conda_dependencies is not None:
            self.environment.python.conda_dependencies = conda_dependencies

    @property
    def environment_variables(self) -> dict[str, str]:
        return self.environment.environment_variables


def _pip_form(spec: str) -> str | None:
    """``spec`` as pip writes a requirement, or None where it is none (a URL, a path, a conda
    spec that pip cannot express). pip's form (``numpy>=1.26``) is kept as written; conda's forms
    are translated: ``numpy=1.26`` and ``numpy 1.26`` pin (``numpy==1.26``), ``numpy=1.26=py311_0``
    drops the build, ``conda-forge::numpy`` the channel, ``numpy 1.26*`` is ``numpy==1.26.*``."""
    # pip's form goes to packaging; conda's match specs are translated here by hand, as no
    # small, kept library parses them (conda's own parser comes only with conda)
    spec = spec.strip().rsplit("::", 1)[-1]
    if _requirement_or_none(spec) is not None:
        return spec
    # conda's match spec: name, then version and build separated by spaces or by single "="
    name, *rest = spec.split(None, 2) if " " in spec else spec.split("=", 2)
    version = rest[0].strip() if rest else ""
    if version and version[0] not in "<>=!~":
        if version.endswith("*") and not version.endswith(".*"):
            version = version[:-1].rstrip(".") + ".*"
        version = "==" + version
    translated = name.strip() + version
    return translated if _requirement_or_none(translated) is not None else None


def _requirement_or_none(text: str) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _requirement(spec: str) -> Requirement | None:
    """``spec`` (pip's or conda's form, see :func:`_pip_form`) parsed, or None."""
    text = _pip_form(spec)
    return Requirement(text) if text is not None else None


def _package_name(spec: str) -> str:
    """The package a spec names, normalized as pip compares names (``Scikit_Learn>=1`` ->
    ``scikit-learn``); a spec that is not a requirement (a URL, a wheel) stands for itself."""
    requirement = _requirement(spec)
    return canonicalize_name(requirement.name) if requirement else spec.strip().lower()


def _version_of(spec: str) -> str | None:
    """The version a ``python`` spec pins (``python=3.11``, ``python==3.11.*`` -> ``3.11``);
    None for a range or no version."""
    requirement = _requirement(spec)
    pins = [s for s in requirement.specifier if s.operator in ("==", "===")] if requirement else []
    return pins[0].version.rstrip(".*") if len(pins) == 1 else None


def _conda_to_pip(spec: str) -> str:
    """A conda package spec as pip installs it (same name; see :func:`_pip_form`)."""
    text = _pip_form(spec)
    if text is None:
        raise ConfigurationError(
            "conda_packages", spec, "a package pip can install by the same name, e.g. 'numpy', "
            "'numpy=1.26', 'numpy>=1.26,<2' (or give it as a pip package)")
    return text


def _read_spec_file(path: str | os.PathLike) -> dict:
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError("conda_dependencies_file_path", os.fspath(path),
                                 f"a readable conda spec file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError("conda_dependencies_file_path", os.fspath(path),
                                 f"a YAML conda spec; it does not parse: {exc}") from None
    return data


def check_python_version(env: Environment) -> None:
    """A pinned Python version (``3``, ``3.11``, ``3.11.7``) must be one the worker runs on and
    one installed on this machine; otherwise the error names the oldest supported, or the
    versions there are and how to add one (see :mod:`parallelrun.pipeline.interpreters`)."""
    deps = env.python.conda_dependencies
    wanted = deps.get_python_version() if deps is not None else None
    if wanted and not env.python.user_managed_dependencies:
        find_interpreter(wanted)


def runtime_spec(environment: Any, python: str | None = None) -> RuntimeSpec | None:
    """``ParallelRunConfig.environment`` as the engine takes it: None, or a RuntimeSpec made from
    an Environment (one already made passes through); anything else is refused by name.

    Example: ``dataclasses.replace(config, environment=runtime_spec(config.environment, python))``
    """
    if environment is None or isinstance(environment, RuntimeSpec):
        return environment
    return check_environment(environment).runtime_spec(python)


def check_environment(environment: Any) -> Environment:
    """``environment`` when it is an Environment; ConfigurationError naming it otherwise."""
    if not isinstance(environment, Environment):
        raise ConfigurationError("environment", environment,
                                 "an Environment, e.g. Environment(name='batch_environment') or "
                                 "Environment.from_conda_specification(name, 'conda.yml')")
    return environment


def engine_config(config: Any, python: str | None = None) -> Any:
    """A ``ParallelRunConfig`` as the engine takes it: its Environment as a RuntimeSpec, and
    that environment's variables under the config's own ``environment_variables`` (which win).

    Example: ``run_job(engine_config(config, materialise(config.environment)), ...)``
    """
    runtime = runtime_spec(config.environment, python)
    if runtime is None or runtime is config.environment:
        return config
    return dataclasses.replace(config, environment=runtime, environment_variables={
        **runtime.environment_variables, **(config.environment_variables or {})})

