"""A PythonScriptStep (and so a v2 command node, whose script is
:mod:`~parallelrun.pipeline.command_shim`) runs once as a child process of the runner:
``python <script> <arguments>`` in its source folder, with its environment's interpreter, its
inputs and outputs as local folders (also as ``AZUREML_DATAREFERENCE_<name>`` variables). Its
stdout and stderr go to ``<log folder>/user/stdout.txt`` and ``stderr.txt`` and to ``run.log``;
a failure's error ends with the script's last traceback. The process dies with the runner and
a cancel stops it (:mod:`~parallelrun.pipeline.processes`)."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from typing import Any

from parallelrun.backends.local import PACKAGE_ROOT, ROOT_FOR_OTHER_PYTHONS
from parallelrun.pipeline.environment import materialise
from parallelrun.pipeline.processes import pump_lines, start_tied_process, stop_process_group
from parallelrun.pipeline.run_folder import RUN_LOG
from parallelrun.pipeline.step_execution import StepContext, StepExecution, StepOutcome
from parallelrun.statuses import RunStatus

#: how many of the script's last stderr lines are kept to find its traceback in
_TAIL_LINES = 200


class ScriptStepExecution(StepExecution):
    """Runs PythonScriptSteps."""

    kind = "python"

    def environment(self, step) -> Any:
        return step.environment

    def folder_inputs(self, step) -> list[Any]:
        return list(step.inputs)

    def execute(self, step, context: StepContext) -> StepOutcome:
        env = step.environment
        python = materialise(env, context.workspace,
                             log_file=os.path.join(context.run_dir, RUN_LOG)) \
            if env is not None else None
        for output in context.outputs.values():
            # A script step starts from empty output folders (also on resume), where the folder
            # is this step run's own; a folder the user named (a destination) is never cleared:
            # parallelrun deletes only what it wrote, and the script writes over its own files.
            if output.get("owned"):
                shutil.rmtree(output["local_path"], ignore_errors=True)
            os.makedirs(output["local_path"], exist_ok=True)
        variables = dict(os.environ)
        variables.update({str(k): str(v) for k, v in (getattr(env, "environment_variables", None)
                                                      or {}).items()})
        variables.update(context.references(step, self.folder_inputs(step)))
        variables["AZUREML_RUN_ID"] = context.step_run_id
        root = PACKAGE_ROOT if python is None else ROOT_FOR_OTHER_PYTHONS
        variables["PYTHONPATH"] = os.pathsep.join(
            p for p in (root, variables.get("PYTHONPATH")) if p)
        variables.setdefault("PYTHONUNBUFFERED", "1")
        command = [python or sys.executable, str(step.script_path), *context.arguments(step)]
        context.log.info("[%s] $ %s", step.name, " ".join(command))
        returncode, canceled, tail = self._run(command, step, context, variables)
        if canceled:
            return StepOutcome(RunStatus.CANCELED, "the run was canceled")
        if returncode != 0:
            return StepOutcome(RunStatus.FAILED,
                               f"{step.script_name} exited with code {returncode}" + (
                f"\n{_last_traceback(tail)}" if tail else ""))
        return StepOutcome(RunStatus.FINISHED)

    def _run(self, command: list[str], step, context: StepContext,
             variables: dict[str, str]) -> tuple[int, bool, list[str]]:
        """Run the script's process to its end (or the run's cancel): its exit code, whether
        it was canceled, and its last stderr lines."""
        user = os.path.join(context.log_dir, "user")
        os.makedirs(user, exist_ok=True)
        tail: list[str] = []

        def to_run_log(line: str) -> None:
            context.log.info("[%s] %s", step.name, line)

        def to_run_log_and_tail(line: str) -> None:
            to_run_log(line)
            tail.append(line)
            del tail[:-_TAIL_LINES]

        with open(os.path.join(user, "stdout.txt"), "a", encoding="utf-8") as out, \
                open(os.path.join(user, "stderr.txt"), "a", encoding="utf-8") as err:
            proc = start_tied_process(command, cwd=str(step.source_path), env=variables)
            readers = [threading.Thread(target=pump_lines, args=(proc.stdout, out, to_run_log),
                                        daemon=True),
                       threading.Thread(target=pump_lines,
                                        args=(proc.stderr, err, to_run_log_and_tail),
                                        daemon=True)]
            for reader in readers:
                reader.start()
            canceled = False
            while proc.poll() is None:
                if context.cancel.wait(0.2) and not canceled:
                    canceled = True
                    stop_process_group(proc)
            for reader in readers:
                reader.join(timeout=5)
        return proc.returncode, canceled, tail


def _last_traceback(lines: list[str]) -> str:
    starts = [i for i, line in enumerate(lines)
              if line.startswith("Traceback (most recent call last)")]
    chosen = lines[starts[-1]:] if starts else lines[-20:]
    return "\n".join(chosen[-60:])
