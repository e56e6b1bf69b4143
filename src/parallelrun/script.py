"""The entry script contract: loading a user's script, calling init/run/shutdown, checking results.

Two halves live here because both must agree on the contract:

* :func:`inspect_entry_script`, run by the coordinator before any work starts: the script parses
  and defines ``init`` and ``run`` at module level. It never executes the script.
* :class:`EntryScriptRunner`, run inside each worker process: imports the script from its source
  directory with the step's arguments in ``sys.argv``, calls ``init()`` once, ``run(mini_batch)``
  per mini-batch and ``shutdown()`` at the end, and turns what ``run()`` returned into a
  :class:`RunOutcome` (successes, failures, the rows to append).

:class:`EntryScript` is the helper scripts import (the original's
``azureml_user.parallel_run.EntryScript``): it gives them their logger and folders.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import io
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from parallelrun.errors import BadResultError, EntryScriptError  # noqa: F401 (re-exported)
from parallelrun.statuses import OutcomeStatus

LOG_FORMAT = "%(asctime)s|%(name)s|%(levelname)s|%(process)d|%(thread)d|%(funcName)s()|%(message)s"


def utc_formatter(fmt: str = LOG_FORMAT, datefmt: str | None = None) -> logging.Formatter:
    """The formatter of every log file parallelrun writes: times in UTC, as Azure ML's logs."""
    formatter = logging.Formatter(fmt, datefmt)
    formatter.converter = time.gmtime
    return formatter


def inspect_entry_script(path: str | os.PathLike) -> None:
    """Check, without running it, that ``path`` parses and defines ``init`` and ``run``.

    Raises :class:`EntryScriptError` naming the script and what is missing.
    """
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EntryScriptError(f"entry script {str(path)!r} cannot be read: {exc}") from exc
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise EntryScriptError(
            f"entry script {str(path)!r} has a syntax error at line {exc.lineno}: {exc.msg}. "
            "Fix the script; no mini-batch was run.") from exc
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.ImportFrom, ast.Import)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    missing = [name for name in ("init", "run") if name not in defined]
    if missing:
        raise EntryScriptError(
            f"entry script {str(path)!r} does not define {' and '.join(f'{m}()' for m in missing)} "
            "at module level. An entry script needs init() (called once per worker) and "
            "run(mini_batch) (called per mini-batch, returning a list, a pandas DataFrame or a "
            "pyarrow Table).")


@dataclasses.dataclass
class WorkerContext:
    """What a worker process knows about itself; read by :class:`EntryScript`."""

    node_name: str
    process_name: str
    output_dir: str
    log_dir: str
    working_dir: str
    logging_level: str = "INFO"
    models: dict[str, str] = dataclasses.field(default_factory=dict)
    input_datasets: dict[str, Any] = dataclasses.field(default_factory=dict)
    run_id: str | None = None
    workspace_path: str | None = None

    @property
    def agent_name(self) -> str:
        return f"{self.node_name}.{self.process_name}"

    @property
    def user_log_path(self) -> Path:
        return Path(self.log_dir, "user", "entry_script_log", self.node_name,
                    f"{self.process_name}.log.txt")


_context: WorkerContext | None = None


def current_context() -> WorkerContext | None:
    """The context of this worker process, or None outside workers."""
    return _context


def set_context(context: WorkerContext | None) -> None:
    global _context
    _context = context


class EntryScript:
    """Helper for entry scripts: their logger and folders, as in Azure ML.

    Example, inside an entry script::

        from parallelrun import EntryScript   # or: from azureml_user.parallel_run import EntryScript

        def init():
            EntryScript().logger.info("loading the model")

        def run(mini_batch):
            out = EntryScript().output_dir  # summary_only scripts write their files here
    """

    _logger: logging.Logger | None = None

    @property
    def context(self) -> WorkerContext:
        if _context is None:
            raise EntryScriptError(
                "EntryScript() is only available inside an entry script run by parallelrun "
                "(init(), run() or shutdown() in a worker process)")
        return _context

    @property
    def logger(self) -> logging.Logger:
        """A logger writing to ``logs/user/entry_script_log/<node>/<process>.log.txt`` (UTC)."""
        if EntryScript._logger is None:
            ctx = self.context
            logger = logging.getLogger("ParallelRunStep.EntryScript")
            logger.setLevel(ctx.logging_level)
            logger.propagate = False
            ctx.user_log_path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(ctx.user_log_path, encoding="utf-8")
            handler.setFormatter(utc_formatter())
            logger.addHandler(handler)
            EntryScript._logger = logger
        return EntryScript._logger

    @property
    def output_dir(self) -> str:
        """The step's output folder: where ``summary_only`` scripts write their results."""
        return self.context.output_dir

    @property
    def working_dir(self) -> str:
        """The script's working directory (its source directory)."""
        return self.context.working_dir

    @property
    def log_dir(self) -> str:
        """The job's log folder (``logs/``)."""
        return self.context.log_dir

    @property
    def agent_name(self) -> str:
        """This worker's name, ``<node>.<process>``."""
        return self.context.agent_name

    @property
    def config(self) -> dict:
        return {"output_dir": self.output_dir, "log_dir": self.log_dir,
                "working_dir": self.working_dir, "agent_name": self.agent_name}


@dataclasses.dataclass
class RunOutcome:
    """What one try of one mini-batch came to, as a worker reports it to the coordinator."""

    index: int
    # an OutcomeStatus; workers put its text (``.value``) here: pickling an enum member costs a
    # Python call on each side of the socket for every mini-batch
    status: str
    items: int                       # items (files or rows) in the mini-batch
    succeeded: int
    payload: bytes = b""             # encoded rows for append_row, committed by the coordinator
    rows: int = 0                    # rows encoded in payload
    run_seconds: float = 0.0         # in run() (the logs' run_seconds)
    # the worker's whole time on it: reading its data (a table's piece), run(), encoding; what
    # the scheduler sizes queues by, as reading can take longer than run() itself
    work_seconds: float = 0.0
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None

    @property
    def failed(self) -> int:
        return max(0, self.items - self.succeeded)

    def to_message(self) -> tuple:
        """Its fields as a plain tuple, for the local workers' socket: pickling a dataclass
        costs each side a few microseconds a mini-batch, a tenth of the coordinator's share."""
        return tuple([getattr(self, name) for name in _OUTCOME_FIELDS])

    @classmethod
    def from_message(cls, message: tuple) -> "RunOutcome":
        """The outcome :meth:`to_message` sent."""
        return cls(*message)


_OUTCOME_FIELDS = tuple(field.name for field in dataclasses.fields(RunOutcome))


class ResultEncoder:
    """Turns what ``run()`` returned into the bytes an output action commits.

    The default writes the original's text format: ``str(element)`` per line for lists and a
    DataFrame's values joined by single spaces per row, a value holding a space or a double quote
    quoted as CSV quotes it (``"a b"``; a quote inside is doubled), so that
    ``pd.read_csv(path, sep=" ", header=None)`` reads every row back with its columns, as Azure
    ML's notebooks read this file. Other formats subclass this.
    """

    def encode(self, result: Any) -> tuple[bytes, int]:
        """``(bytes to append, rows)``; raises :class:`BadResultError` for a result that cannot
        be written as rows (here: a value holding a line break, which would split its row)."""
        if is_dataframe(result):
            if result.empty:
                return b"", 0
            lines = list(map(" ".join, zip(*(_text_column(result.iloc[:, i])
                                             for i in range(result.shape[1])))))
        else:
            if not result:
                return b"", 0
            lines = list(map(str, result))
        text = "\n".join(lines)
        if text.count("\n") != len(lines) - 1 or "\r" in text:
            raise BadResultError(_line_break_message(lines, result))
        return (text + "\n").encode("utf-8"), len(lines)


def _text_column(column) -> list[str]:
    """A column's values as ``astype(str)`` writes them, missing ones as ``str()`` does (nan, None),
    those holding a space or a double quote quoted (the CSV rule, with a space as separator).

    Joining per column instead of ``agg(" ".join, axis=1)`` per row is ~75x faster, and newer
    pandas keeps missing values as NaN in ``astype(str)``, which ``" ".join`` cannot take.
    """
    text = column.astype(str)
    if text.isna().any():
        text = text.where(text.notna(), column.astype(object).map(str))
    if column.dtype.kind not in "biuf":  # numbers never hold a space; text and dates may
        quote = text.str.contains('[ "]', regex=True)
        if quote.any():
            text = text.where(~quote, '"' + text.str.replace('"', '""', regex=False) + '"')
    return text.tolist()


def _line_break_message(lines: list[str], result: Any) -> str:
    index, line = next((i, line) for i, line in enumerate(lines) if "\n" in line or "\r" in line)
    what = f"row {index} of the DataFrame" if is_dataframe(result) else f"element {index}"
    return (f"run() returned a value holding a line break ({what}: {_short_repr(line)}). "
            "append_row_format='text' writes one line per element, so it would split into two "
            "rows. Return values without line breaks (e.g. value.replace('\\n', ' ')), or use "
            "append_row_format='csv' or 'parquet', which keep line breaks inside a value.")


class NullEncoder(ResultEncoder):
    """summary_only: results count toward thresholds but nothing is written."""

    def encode(self, result: Any) -> tuple[bytes, int]:
        return b"", 0


def is_dataframe(value: Any) -> bool:
    """True for a pandas DataFrame, without importing pandas for scripts that return lists."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


def is_arrow_table(value: Any) -> bool:
    """True for a pyarrow Table, without importing pyarrow for scripts that never return one."""
    return type(value).__name__ == "Table" and type(value).__module__.startswith("pyarrow")


def result_length(result: Any, script_name: str) -> int:
    """Number of successful items ``result`` stands for; an error for types run() may not return."""
    if isinstance(result, (list, tuple)):
        return len(result)
    if is_dataframe(result):
        return int(result.shape[0])
    if is_arrow_table(result):
        return int(result.num_rows)
    raise EntryScriptError(
        f"run() in {script_name} returned {type(result).__name__} ({_short_repr(result)}); "
        "it must return a list (one element per successful item), a pandas DataFrame or a "
        "pyarrow Table (one row per successful item)")


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class EntryScriptRunner:
    """Runs one entry script inside one worker process."""

    def __init__(self, script_path: str, source_dir: str, arguments: list[str],
                 encoder: ResultEncoder | None = None):
        self.script_path = script_path
        self.source_dir = source_dir
        self.arguments = list(arguments)
        self.encoder = encoder or ResultEncoder()
        self.module: Any = None
        self._run: Callable[[Any], Any] | None = None

    @property
    def script_name(self) -> str:
        return os.path.basename(self.script_path)

    def load(self) -> None:
        """Import the script as a module from its source directory, with the step's argv."""
        os.chdir(self.source_dir)
        if self.source_dir not in sys.path:
            sys.path.insert(0, self.source_dir)
        _add_azureml_compat()
        sys.argv = [self.script_path, *self.arguments]
        name = Path(self.script_path).stem
        spec = importlib.util.spec_from_file_location(name, self.script_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        for required in ("init", "run"):
            if not callable(getattr(module, required, None)):
                raise EntryScriptError(f"entry script {self.script_path!r} has no callable {required}()")
        self.module = module
        self._run = module.run
        self._wants_context = _takes_context(module.run)

    def init(self) -> None:
        self.module.init()

    def run(self, index: int, mini_batch: Any, items: int,
            context: "MiniBatchContext | None" = None) -> RunOutcome:
        """Call ``run(mini_batch)``; never raises for the script's own errors."""
        started = time.perf_counter()
        try:
            if self._wants_context:
                result = self._run(mini_batch, context or MiniBatchContext(index))
            else:
                result = self._run(mini_batch)
        except (Exception, SystemExit) as exc:  # the script's failures are data, not crashes
            return RunOutcome(index, OutcomeStatus.RUN_EXCEPTION.value, items, 0,
                              run_seconds=time.perf_counter() - started,
                              error_type=type(exc).__name__, error_message=str(exc)[:2000],
                              traceback=_script_traceback(exc))
        elapsed = time.perf_counter() - started
        try:
            succeeded = result_length(result, self.script_name)
            if succeeded > items:
                raise BadResultError(
                    f"run() in {self.script_name} returned {succeeded} results for a mini-batch "
                    f"of {items} items. Each element of the list (or row of the DataFrame) stands "
                    f"for one item that succeeded, so there can be at most {items}. Return one "
                    "element per input item (several values for one item go in one element: a "
                    "tuple, a dict, or a string).")
            payload, rows = self.encoder.encode(result)
        except EntryScriptError as exc:
            return self._bad_result(index, items, elapsed, exc)
        except Exception as exc:  # noqa: BLE001 - a result the format cannot encode
            return self._bad_result(index, items, elapsed, BadResultError(
                f"what run() in {self.script_name} returned cannot be written as rows: "
                f"{type(exc).__name__}: {exc}"))
        return RunOutcome(index, OutcomeStatus.RUN_DONE.value, items, succeeded, payload=payload,
                          rows=rows, run_seconds=elapsed)

    @staticmethod
    def _bad_result(index: int, items: int, elapsed: float, exc: EntryScriptError) -> RunOutcome:
        """A result that cannot be accepted: this try fails like an exception in run()."""
        return RunOutcome(index, OutcomeStatus.RUN_BAD_RESULT.value, items, 0,
                          run_seconds=elapsed,
                          error_type=type(exc).__name__, error_message=str(exc)[:2000],
                          traceback=str(exc))

    def shutdown(self) -> None:
        shutdown = getattr(self.module, "shutdown", None)
        if callable(shutdown):
            shutdown()


def _add_azureml_compat() -> None:
    """Let Azure ML entry scripts import ``azureml.core`` & co. (see ``parallelrun.compat``).

    Only worker processes call this, so a real Azure ML SDK stays visible to everything else.
    """
    from parallelrun import compat

    if compat.enabled() and compat.MODULES_DIR not in sys.path:
        sys.path.insert(1, compat.MODULES_DIR)


class MiniBatchContext:
    """The second argument of ``run(mini_batch, mini_batch_context)``, as in Azure ML.

    Example, in an entry script over a dataset partitioned by ``partition_keys``::

        def run(mini_batch, mini_batch_context):
            region = mini_batch_context.partition_key_value["region"]
    """

    __slots__ = ("minibatch_index", "partition_key_value", "dataset")

    def __init__(self, minibatch_index: int, partition_key_value: dict | None = None,
                 dataset: Any = None):
        self.minibatch_index = minibatch_index
        self.partition_key_value = dict(partition_key_value or {})
        self.dataset = dataset


def _takes_context(func: Callable) -> bool:
    """Whether ``run`` wants ``(mini_batch, mini_batch_context)``: a second required parameter."""
    import inspect

    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 and positional[1].default is inspect.Parameter.empty


def _script_traceback(exc: BaseException) -> str:
    """The traceback text, without the engine's own frames on top."""
    out = io.StringIO()
    tb = exc.__traceback__
    # Drop the frame of EntryScriptRunner.run so the first frame shown is the user's run().
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb, file=out)
    return out.getvalue()
