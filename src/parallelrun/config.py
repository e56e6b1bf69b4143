"""ParallelRunConfig: every knob of a parallel run step, with its defaults and its checks.

The names, order and defaults follow Azure ML's ``ParallelRunConfig`` (SDK v1) so that existing
code keeps working; see SPEC.md section 3. Every value is checked when the object is built, and
an error names the parameter, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from parallelrun.errors import ConfigurationError

OUTPUT_ACTIONS = ("append_row", "summary_only")
LOGGING_LEVELS = ("WARNING", "INFO", "DEBUG")
DEFAULT_APPEND_ROW_FILE_NAME = "parallel_run_step.txt"
#: append_row_format values; the default file name follows the format (.txt, .csv, .parquet)
APPEND_ROW_FORMATS = ("text", "csv", "parquet")
_MINI_BATCH_SIZE_RE = re.compile(r"^\d+([kKmMgG][bB])?$")
_BAD_FILE_NAME_CHARS = set('~"#%&*:<>?/\\{|}')
# Names the engine owns; a script argument with one of these names would be ambiguous.
RESERVED_ARGUMENT_NAMES = (
    "mini_batch_size", "error_threshold", "allowed_failed_count", "allowed_failed_percent",
    "output", "output_action", "logging_level", "process_count_per_node",
    "run_invocation_timeout", "run_max_try", "append_row_file_name",
)
_SIZE_UNITS = {"": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
#: the most worker processes on one node, and nodes in one job: more is a typo (10**9), and
#: would exhaust the machine's process table or the cluster before the first mini-batch ran
MAX_PROCESS_COUNT_PER_NODE = 1024
MAX_NODE_COUNT = 1024
#: the fewest tries of a mini-batch: its first one
MIN_RUN_MAX_TRY = 1
#: names an append_row file may not take in the output folder: the default log folder and the
#: marker a job leaves in its folders (engine/job_folders.py); a file there would be clobbered
#: the marker a job writes into its output and log folders (engine/job_folders.py)
JOB_MARKER_NAME = ".parallelrun"
#: the hold a running job keeps on a datastore folder (engine/remote_hold.py)
JOB_LOCK_NAME = ".parallelrun.lock"
RESERVED_OUTPUT_NAMES = ("logs", JOB_MARKER_NAME)
#: bytes in an append_row file name: parquet's staging file adds 8 to it, a file system allows 255
MAX_FILE_NAME_BYTES = 240


def parse_data_size(value: int | str) -> int:
    """Bytes in a tabular mini_batch_size: ``1024``, ``"10KB"``, ``"1mb"``, ``"2GB"`` (powers of 1024).

    >>> parse_data_size("1MB")
    1048576
    """
    text = str(value).strip()
    if isinstance(value, bool) or not _MINI_BATCH_SIZE_RE.match(text):
        raise ConfigurationError(
            "mini_batch_size", value,
            "a tabular dataset needs a data size: bytes (1024) or a number with KB, MB or GB "
            "(e.g. '1MB'; case-insensitive, powers of 1024)")
    digits = text.rstrip("kKmMgGbB")
    unit = text[len(digits):].upper()
    size = int(digits) * _SIZE_UNITS[unit]
    if size < 1:
        raise ConfigurationError("mini_batch_size", value, "a data size of at least 1 byte")
    return size


def parse_file_count(value: int | str) -> int:
    """Files per mini-batch in a file dataset's mini_batch_size: ``5`` or ``"5"``, at least 1."""
    text = str(value).strip()
    # isdecimal, not isdigit: '²' is a digit that int() refuses
    if isinstance(value, bool) or not text.isdecimal() or int(text) < 1:
        raise ConfigurationError(
            "mini_batch_size", value,
            "a file dataset needs a count of files per mini-batch, an integer >= 1 (e.g. 5 or '5')")
    return int(text)


def check_whole_number(name: str, value: Any, minimum: int, meaning: str,
                       maximum: int | None = None) -> int:
    """An integer from ``minimum`` to ``maximum`` (bools are not numbers here); raises
    :class:`ConfigurationError` naming ``name`` and saying what the value ``meaning``."""
    limit = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum \
            or (maximum is not None and value > maximum):
        raise ConfigurationError(name, value, f"{meaning}, an integer {limit}")
    return value


def check_seconds(name: str, value: Any, meaning: str = "a number of seconds") -> float:
    """A duration in seconds: a finite number > 0 (nan and inf would turn the timeout off).

    Raises :class:`ConfigurationError` naming ``name``; ``meaning`` says what the seconds are.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ConfigurationError(name, value, f"{meaning}, > 0 and finite (not nan or inf)")
    return value


def check_mini_batch_size(name: str, value: Any) -> int | str:
    """A mini_batch_size before the dataset's kind is known: a count of files (``5``, ``"5"``)
    or a data size (``"1MB"``), at least 1. The dataset's kind decides the rest
    (:func:`parse_file_count`, :func:`parse_data_size`)."""
    text = str(value).strip()
    if isinstance(value, bool) or not _MINI_BATCH_SIZE_RE.match(text) \
            or int(text.rstrip("kKmMgGbB")) < 1:
        raise ConfigurationError(
            name, value,
            "a count of files for file datasets (an integer >= 1, e.g. 5 or '5') or a data "
            "size for tabular datasets (e.g. 1024, '10KB', '1MB', '1GB')")
    return value


def check_logging_level(name: str, value: Any) -> str:
    """One of LOGGING_LEVELS, in any case; returns it in capitals."""
    level = str(value).upper()
    if level not in LOGGING_LEVELS:
        raise ConfigurationError(name, value, f"one of {', '.join(LOGGING_LEVELS)} (any case)")
    return level


def check_max_retries(name: str, value: Any) -> int:
    """Retries after a mini-batch's first try (Azure ML v2's ``retry_settings.max_retries``):
    ``run_max_try`` less one, so at least ``MIN_RUN_MAX_TRY - 1``."""
    return check_whole_number(name, value, MIN_RUN_MAX_TRY - 1,
                              "retries of a mini-batch after its first try")


def check_script_name(name: str, value: str) -> str:
    """An entry script's name: a Python file, ending in .py (where it is, is the disk's to say)."""
    if Path(value).suffix != ".py":
        raise ConfigurationError(name, value, "a Python file ending in .py")
    return value


def check_file_name(name: str, value: Any) -> str:
    """A plain file name for the output folder: no folders, no '.' or '..', none of the names
    the job itself uses there (RESERVED_OUTPUT_NAMES)."""
    if not isinstance(value, str) or not value.strip() or _BAD_FILE_NAME_CHARS & set(value) \
            or any(ord(c) < 32 or ord(c) == 127 for c in value) \
            or len(value.encode("utf-8", "surrogatepass")) > MAX_FILE_NAME_BYTES:
        raise ConfigurationError(
            name, value, 'a plain file name without any of ~ " # % & * : < > ? / \\ { | } or '
                         f"control characters, at most {MAX_FILE_NAME_BYTES} bytes")
    if value in (".", ".."):
        raise ConfigurationError(name, value, "a plain file name ('.' and '..' are folders)")
    if value.lower() in RESERVED_OUTPUT_NAMES:   # .lower(): case-insensitive file systems
        raise ConfigurationError(
            name, value, f"a plain file name other than {' and '.join(RESERVED_OUTPUT_NAMES)}: "
                         "the job itself uses those in the output folder (its log folder and "
                         "its marker file)")
    return value


def check_percent(name: str, value: Any) -> float:
    """A percentage from 0 to 100 (nan refused)."""
    # written so that nan fails too (every comparison with nan is False)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ConfigurationError(name, value, "a percentage from 0 to 100")
    return value


def check_partition_keys(name: str, value: Any) -> list[str]:
    """A non-empty list of column names; returns it as a list."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value \
            or not all(isinstance(k, str) and k for k in value):
        raise ConfigurationError(name, value,
                                 "a non-empty list of column names, e.g. ['region', 'date']")
    return list(value)


def check_environment_variables(name: str, value: Any) -> dict[str, str]:
    """A mapping of str to str; returns it as a dict."""
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigurationError(name, value,
                                 "a dict of str to str, e.g. {'OMP_NUM_THREADS': '1'}")
    return dict(value)


def _whole_number(minimum: int, meaning: str, maximum: int | None = None):
    return lambda name, value: check_whole_number(name, value, minimum, meaning, maximum)


#: the value rule of each ParallelRunConfig field that has one of its own: field ->
#: ``check(name, value)``, returning the value as the config keeps it (raises
#: ConfigurationError naming ``name``). ParallelRunConfig runs them on every value that is not
#: None; job files run them (:func:`check_field`) on the keys that map onto these fields, so a
#: file and the config accept the same values.
FIELD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "error_threshold": _whole_number(-1, "the number of failed items tolerated (-1 ignores all)"),
    "node_count": _whole_number(1, "the number of nodes", MAX_NODE_COUNT),
    "process_count_per_node": _whole_number(1, "worker processes per node",
                                            MAX_PROCESS_COUNT_PER_NODE),
    "mini_batch_size": check_mini_batch_size,
    "logging_level": check_logging_level,
    "run_invocation_timeout": lambda name, value: check_seconds(
        name, value, "seconds one run() may take"),
    "init_timeout": lambda name, value: check_seconds(name, value, "seconds init() may take"),
    "run_max_try": _whole_number(MIN_RUN_MAX_TRY, "tries of a mini-batch (first + retries)"),
    "allowed_failed_count": _whole_number(-1, "failed mini-batches tolerated (-1 ignores all)"),
    "allowed_failed_percent": check_percent,
    "partition_keys": check_partition_keys,
    "environment_variables": check_environment_variables,
}


def check_field(field: str, value: Any, name: str | None = None) -> Any:
    """Check ``value`` for ParallelRunConfig's ``field`` as the config does, naming it ``name``
    (a job file's key) in the error; returns the value as the config would keep it.

    >>> check_field("logging_level", "debug", name="logging_level")
    'DEBUG'
    """
    return FIELD_CHECKS[field](name or field, value)


def _param(default: Any, help: str, default_text: str | None = None) -> Any:
    """A config field with its documentation beside it: ``help`` says what it does and the values
    allowed; ``default_text`` says in words what ``None`` (the default) means. The class
    docstring and the CLI's flags (``parallelrun run --help``) are both made from these."""
    metadata = {"help": help}
    if default_text is not None:
        metadata["default"] = default_text
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class ParallelRunConfig:
    """How to run an entry script over a dataset in parallel.

    Example::

        config = ParallelRunConfig(
            source_directory="scripts", entry_script="digit_identification.py",
            mini_batch_size="5", error_threshold=10, output_action="append_row",
            process_count_per_node=2)

    ``environment``, ``compute_target`` and ``node_count`` come first, as in Azure ML, so
    positional code written for it still lines up.
    """

    environment: Any = _param(
        None, "The Python environment of the workers (an Environment: pip packages, variables).",
        "the interpreter that runs the job")
    entry_script: str | None = _param(
        None, "The entry script: a .py file defining init() and run(mini_batch), relative to "
              "source_directory when that is given.", "required")
    error_threshold: int | None = _param(
        None, "Failed items (files, or rows of tables) tolerated over the whole input; the job "
              "stops as Failed when more fail. An integer >= -1; -1 ignores every failure.",
        "required")
    output_action: str | None = _param(
        None, f"What becomes of run()'s results: {' or '.join(OUTPUT_ACTIONS)} (append_row "
              "gathers them in one file in the output folder; summary_only keeps only the "
              "counts).", "required")
    compute_target: Any = _param(
        None, "Where the workers run: 'local' (processes on this machine), 'ray', or a compute "
              "target of the workspace.", "local")
    node_count: int = _param(
        1, f"Number of nodes the workers spread over, an integer from 1 to {MAX_NODE_COUNT}.")
    process_count_per_node: int | None = _param(
        None, f"Worker processes per node, an integer from 1 to {MAX_PROCESS_COUNT_PER_NODE}.",
        "the node's GPUs if it has any, else its CPU cores")
    mini_batch_size: int | str | None = _param(
        None, "How much one run() call gets: for file inputs a count of files (an integer >= 1); "
              "for tables an amount of data, bytes or a number with KB, MB or GB (e.g. 1024, "
              "10KB, 1MB).", "1 file for file inputs, 1MB for tables")
    source_directory: str | os.PathLike | None = _param(
        None, "The folder holding the entry script: the workers' working folder and import "
              "root.", "the entry script's folder")
    description: str | None = _param(None, "A description of the step, for people.", "none")
    logging_level: str = _param(
        "INFO", f"How much the logs say: {', '.join(LOGGING_LEVELS)} (any case).")
    run_invocation_timeout: int | float = _param(
        60, "Seconds one run() call may take before its try fails and the worker is replaced, "
            "a number > 0.")
    input_format: str | None = _param(
        None, "Accepted and ignored: azureml-contrib-pipeline-steps' ParallelRunConfig had it, "
              "and code written for it still passes it; the dataset's kind (file or tabular) "
              "decides how inputs are read.", "from the dataset")
    append_row_file_name: str | None = _param(
        None, "Name of the append_row file in the output folder: a plain file name, without "
              "~ \" # % & * : < > ? / \\ { | }.",
        f"{DEFAULT_APPEND_ROW_FILE_NAME} (.csv or .parquet with that append_row_format)")
    allowed_failed_count: int | None = _param(
        None, "Failed mini-batches tolerated (a mini-batch fails when its last try fails); the "
              "job stops as Failed when more fail. An integer >= -1; -1 ignores every failure.",
        "no limit")
    allowed_failed_percent: float | None = _param(
        None, "Failed mini-batches tolerated, as a percentage of all of them (0 to 100), checked "
              "once every mini-batch is planned.", "no limit")
    partition_keys: list[str] | None = _param(
        None, "Columns of a tabular input whose values group rows: one mini-batch per "
              "combination of values (mini_batch_size then splits only the largest).",
        "none (mini-batches by size)")
    environment_variables: Mapping[str, str] | None = _param(
        None, "Environment variables set in every worker (a dict of str to str).", "none")
    run_max_try: int = _param(
        3, "Tries of a mini-batch (the first and its retries), an integer >= 1.")
    # [beyond] a worker whose init() runs longer than this is replaced, so a job never hangs in init.
    init_timeout: int | float = _param(
        600, "Seconds a worker's init() may take before the worker is replaced, a number > 0.")
    # [beyond] how append_row writes DataFrames: "text" (the original's), "csv" or "parquet"
    append_row_format: str = _param(
        "text", f"How append_row writes results: {', '.join(APPEND_ROW_FORMATS)} (text joins a "
                "row's values with spaces, as Azure ML does; csv has one header line).")

    def __post_init__(self) -> None:
        self._check_entry_script()
        if self.error_threshold is None:
            raise ConfigurationError(
                "error_threshold", None,
                "it is required: the number of failed items to tolerate, an integer >= -1 "
                "(-1 ignores all failures)")
        if self.output_action not in OUTPUT_ACTIONS:
            raise ConfigurationError("output_action", self.output_action,
                                     f"one of {', '.join(OUTPUT_ACTIONS)}")
        for field, check in FIELD_CHECKS.items():
            value = getattr(self, field)
            if value is not None:   # None: the default each field's help describes
                setattr(self, field, check(field, value))
        if self.append_row_format not in APPEND_ROW_FORMATS:
            raise ConfigurationError(
                "append_row_format", self.append_row_format,
                "one of text (the original's: values joined by spaces), csv (with one header "
                "line) or parquet")
        if self.append_row_file_name is None:
            self.append_row_file_name = (DEFAULT_APPEND_ROW_FILE_NAME if self.append_row_format == "text"
                                         else f"parallel_run_step.{self.append_row_format}")
        check_file_name("append_row_file_name", self.append_row_file_name)

    def _check_entry_script(self) -> None:
        if not self.entry_script:
            raise ConfigurationError(
                "entry_script", self.entry_script,
                "it is required: the path of a .py file defining init() and run(mini_batch)")
        if self.source_directory is not None:
            source = Path(self.source_directory)
            if not source.is_dir():
                raise ConfigurationError(
                    "source_directory", str(self.source_directory),
                    f"an existing folder (nothing at {source.resolve()}); it holds the entry script")
            script = source / self.entry_script
        else:
            script = Path(self.entry_script)
        check_script_name("entry_script", str(self.entry_script))
        if not script.is_file():
            where = f" inside source_directory {str(self.source_directory)!r}" if self.source_directory else ""
            raise ConfigurationError(
                "entry_script", str(self.entry_script),
                f"an existing .py file{where} (nothing at {script.resolve()})")

    @property
    def script_path(self) -> Path:
        """Absolute path of the entry script."""
        base = Path(self.source_directory) if self.source_directory is not None else Path()
        return (base / self.entry_script).resolve()

    @property
    def source_path(self) -> Path:
        """Absolute path of the source directory (the script's folder when none was given)."""
        if self.source_directory is not None:
            return Path(self.source_directory).resolve()
        return self.script_path.parent


def default_text(field: dataclasses.Field) -> str:
    """A config field's default in words: its ``default`` metadata, else its value."""
    return field.metadata.get("default", repr(field.default))


def _parameters_section() -> str:
    """The "Parameters" part of ParallelRunConfig's docstring, from its fields' metadata."""
    lines = ["", "    Parameters:", ""]
    for field in dataclasses.fields(ParallelRunConfig):
        lines.append(f"    ``{field.name}``: {field.metadata['help']} Default: {default_text(field)}.")
    return "\n".join(lines) + "\n"


ParallelRunConfig.__doc__ = (ParallelRunConfig.__doc__ or "").rstrip() + "\n" + _parameters_section()


def check_arguments(arguments: list[str] | None) -> list[str]:
    """Check a step's script arguments the way the original does; returns them as strings.

    The first one must be a flag (start with ``-``) and none may use a name the engine owns.
    """
    args = [str(a) for a in (arguments or [])]
    if args and not args[0].startswith("-"):
        raise ConfigurationError("arguments", arguments,
                                 "a list starting with a flag such as '--threshold', then its values")
    for arg in args:
        if arg.startswith("-"):
            name = arg.lstrip("-").split("=", 1)[0].replace("-", "_")
            if name in RESERVED_ARGUMENT_NAMES:
                raise ConfigurationError(
                    "arguments", arguments,
                    f"{arg!r} is a name parallelrun owns ({', '.join(RESERVED_ARGUMENT_NAMES)}); "
                    "rename that script argument")
    return args
