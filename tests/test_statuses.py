"""The status vocabularies keep their text, and src spells a status only through them."""

from __future__ import annotations

import ast
import json
import pickle
import re
import sqlite3
from pathlib import Path

import pytest

import parallelrun
from parallelrun.statuses import (IN_PROGRESS_STATUSES, TERMINAL_STATUSES, OutcomeStatus,
                                  RunStatus, ScriptRunStatus, TryOutcome)

SRC = Path(parallelrun.__file__).parent
OWNER = SRC / "statuses.py"

# Azure ML's documented words: PipelineRun / StepRun.get_status() ("Finished") and
# Run.get_status() of a script run ("Completed"), both from azureml-core's RunStatus; and the
# outcome words the log folder's records and processed_mini-batches.csv carry
AZUREML_RUN_WORDS = ("NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running",
                     "Finalizing", "CancelRequested", "Completed", "Finished", "Failed",
                     "Canceled", "NotResponding")
OUTCOME_WORDS = ("RUN_DONE", "RUN_EXCEPTION", "RUN_BAD_RESULT", "RUN_TIMEOUT", "PROCESS_DIED",
                 "DATA_ERROR")
TRY_OUTCOME_PHRASES = ("done, with failed records", "will be retried")
STATUS_WORDS = AZUREML_RUN_WORDS + OUTCOME_WORDS + TRY_OUTCOME_PHRASES


def test_the_words_in_files_and_the_api_are_azure_mls():
    assert [s.value for s in RunStatus] == [
        "NotStarted", "Queued", "Running", "Finished", "Failed", "Canceled"]
    assert [s.value for s in ScriptRunStatus] == ["Running", "Completed"]
    assert [s.value for s in OutcomeStatus] == list(OUTCOME_WORDS)
    assert [s.value for s in TryOutcome] == [
        "done", "done, with failed records", "will be retried", "failed"]
    assert TERMINAL_STATUSES == {"Finished", "Failed", "Canceled"}
    assert IN_PROGRESS_STATUSES == {"Queued", "Running"}
    assert parallelrun.RunStatus is RunStatus and parallelrun.OutcomeStatus is OutcomeStatus


@pytest.mark.parametrize("status", [RunStatus.FINISHED, OutcomeStatus.DATA_ERROR,
                                    ScriptRunStatus.COMPLETED, TryOutcome.WILL_BE_RETRIED])
def test_a_member_is_written_as_its_text_everywhere(status):
    text = status.value
    assert status == text and hash(status) == hash(text) and text in {status}
    assert str(status) == f"{status}" == "%s" % status == f"{status:>1}" == text
    assert json.dumps({"status": status}) == json.dumps({"status": text})
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (status TEXT)")
    db.execute("INSERT INTO t VALUES (?)", (status,))
    assert db.execute("SELECT status, typeof(status) FROM t WHERE status = ?",
                      (status,)).fetchall() == [(text, "text")]
    assert pickle.loads(pickle.dumps(status)) is status


def _status_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant in ``path`` that is a status word, or holds one in
    single quotes (SQL); docstrings (bare string statements) are prose and are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    prose = {id(node.value) for node in ast.walk(tree)
             if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    quoted = re.compile(r"'(%s)'" % "|".join(map(re.escape, STATUS_WORDS)))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            if node.value in STATUS_WORDS or quoted.search(node.value):
                found.append((node.lineno, node.value))
    return sorted(found)


def test_src_spells_statuses_only_through_the_enums():
    found = {f"{path.relative_to(SRC)}:{line}": text
             for path in sorted(SRC.rglob("*.py")) if path != OWNER
             for line, text in _status_literals(path)}
    assert found == {}, "use parallelrun.statuses instead of these literals"
    # the owner itself holds every word the enums define
    assert {text for _, text in _status_literals(OWNER)} >= set(
        OUTCOME_WORDS + TRY_OUTCOME_PHRASES) | {s.value for s in RunStatus}


def test_the_scan_finds_a_literal_and_one_inside_sql(tmp_path):
    module = tmp_path / "stray.py"
    module.write_text('"""Finished"""\n'
                      'DONE = "Finished"\n'
                      'SQL = "SELECT 1 FROM runs WHERE status = \'Queued\'"\n'
                      'def f(outcome):\n'
                      '    """RUN_DONE, in prose"""\n'
                      '    return outcome.status == "RUN_TIMEOUT" or f"{outcome}" == "Completed"\n',
                      encoding="utf-8")
    assert _status_literals(module) == [
        (2, "Finished"), (3, "SELECT 1 FROM runs WHERE status = 'Queued'"), (6, "Completed"),
        (6, "RUN_TIMEOUT")]


def test_the_dashboards_script_uses_the_same_words():
    # app.js cannot import the enums: its copies must match them
    script = (SRC / "ui/static/app.js").read_text(encoding="utf-8")
    terminal = re.search(r"const TERMINAL = new Set\(\[(.*?)\]\)", script)
    assert terminal and set(re.findall(r'"(\w+)"', terminal.group(1))) == TERMINAL_STATUSES
    words = {w for w in re.findall(r'"(\w+)"', script) if w in AZUREML_RUN_WORDS}
    assert words and words <= {s.value for s in RunStatus}
    choices = re.search(r'\[("", "NotStarted"[^\]]*)\]', script)
    assert choices and re.findall(r'"(\w+)"', choices.group(1)) == [s.value for s in RunStatus]
