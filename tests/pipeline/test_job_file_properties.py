"""Job files' shape (pipeline/job_schema.py) against the engine: a file the checks accept builds
a step whose ParallelRunConfig the engine takes, and a file they refuse is refused with the line
of every problem, whatever one random change made it."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from parallelrun import JobSpecError, load_job

VALID = {
    "$schema": "https://azuremlschemas.azureedge.net/latest/parallelJob.schema.json",
    "type": "parallel",
    "display_name": "Score items",
    "inputs": {"items": {"type": "uri_folder", "path": "./data", "mode": "ro_mount"},
               "scale": 3},
    "outputs": {"scores": {"type": "uri_folder", "mode": "rw_mount"}},
    "input_data": "${{inputs.items}}",
    "mini_batch_size": "2",
    "mini_batch_error_threshold": 0,
    "error_threshold": 5,
    "logging_level": "DEBUG",
    "partition_keys": None,
    "resources": {"instance_count": 1},
    "max_concurrency_per_instance": 2,
    "retry_settings": {"max_retries": 1, "timeout": 30},
    "environment_variables": {"MODE": "test"},
    "task": {"type": "run_function", "code": "./src", "entry_script": "score.py",
             "program_arguments": "--scale ${{inputs.scale}} --allowed_failed_percent 50",
             "append_row_to": "${{outputs.scores}}"},
}
VALID.pop("partition_keys")   # a file dataset has no columns


def _paths(document, prefix=()):
    """Every key path in the document (mappings only: lists are values here)."""
    for key, value in document.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


PATHS = list(_paths(VALID))
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3000),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["0", "1", "1KB", "10mb", "-1", "INFO", "warning", "uri_file", "mltable",
                     "string", "upload", "direct", "${{inputs.items}}", "${{outputs.scores}}",
                     "${{inputs.scale}}", "--error_threshold 3", "--error_threshold=x",
                     "'unclosed", "./data", "./src"]),
    st.lists(st.one_of(st.integers(-2, 5), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.from_regex(r"\A[a-z_]{1,8}\Z"), st.integers(-2, 5), max_size=2))
# keys named here are names of the workspace (a compute target, an environment): an unknown one
# is refused when the job is built, with its line, not when the file is read
WORKSPACE_KEYS = {"compute", "environment", "model"}


@st.composite
def mutations(draw):
    """The valid document with one random change: a value replaced, a key removed or an
    unknown key added."""
    document = copy.deepcopy(VALID)
    path = draw(st.sampled_from(PATHS))
    *parents, last = path
    holder = document
    for part in parents:
        holder = holder[part]
    change = draw(st.sampled_from(["replace", "remove", "add"]))
    if change == "replace":
        holder[last] = draw(VALUES)
    elif change == "remove":
        del holder[last]
    else:
        name = draw(st.from_regex(r"\A[a-z][a-z_]{0,10}\Z"))
        assume(name not in holder and name not in WORKSPACE_KEYS)
        holder[name] = draw(VALUES)
    return document


@pytest.fixture
def job_folder(ws, make_script, make_files, tmp_path):
    make_script("def init(): pass\ndef run(mb): return mb\n", folder="src")
    make_files(3)
    return tmp_path


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=mutations())
def test_a_changed_job_file_is_built_as_checked_or_refused_with_each_problems_line(
        job_folder, ws, document):
    path = job_folder / "job.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        job = load_job(path)
    except JobSpecError as exc:
        event("refused when read")
        # every problem names its line and its key, in the message the user reads
        for line, key, _ in exc.problems:
            assert line is not None, exc
            assert f"job.yml:{line}: {key}:" in str(exc)
        return
    # accepted: the engine takes what the checks took (ParallelRunConfig and step built); the
    # only refusal left is the workspace's own (more nodes than its compute target has)
    event("accepted")
    try:
        [step] = job.to_pipeline(ws).steps
    except JobSpecError as exc:
        assert [(key, "compute 'local'" in message) for _, key, message in exc.problems] == \
            [("resources.instance_count", True)], exc
        return
    assert step.parallel_run_config.entry_script == "score.py"


def test_the_unchanged_document_is_accepted_and_maps_onto_the_config(job_folder, ws):
    path = job_folder / "job.yml"
    path.write_text(yaml.safe_dump(VALID, sort_keys=False))
    [step] = load_job(path).to_pipeline(ws).steps
    config = step.parallel_run_config
    assert (config.error_threshold, config.allowed_failed_count, config.allowed_failed_percent,
            config.run_max_try, config.run_invocation_timeout, config.logging_level) == \
        (5, 0, 50, 2, 30, "DEBUG")


NESTED_MISTAKES = """\
type: parallel
inputs:
  items: {type: uri_folder, path: ./data}
outputs:
  scores: {type: uri_folder, path: "s3://bucket/out"}
input_data: ${{inputs.items}}
partition_keys: []
environment_variables: [A, B]
task:
  code: ./src
  entry_scrpt: score.py
  program_arguments: --allowed_failed_percent 250
"""


def test_nested_mistakes_and_missing_keys_are_reported_at_their_lines(job_folder):
    (job_folder / "job.yml").write_text(NESTED_MISTAKES)
    with pytest.raises(JobSpecError) as info:
        load_job(job_folder / "job.yml")
    message = " ".join(str(info.value).split())
    for expected in [
        "job.yml:5: outputs.scores.path: 's3://bucket/out': a local folder or "
        "azureml://datastores/<name>/paths/<path>",
        "job.yml:7: partition_keys: []: a non-empty list of column names",
        "job.yml:8: environment_variables: ['A', 'B']: a mapping of names to values",
        # a required key the task lacks: the task's line
        "job.yml:9: task.entry_script: required: the .py file with init() and run()",
        "job.yml:11: task.entry_scrpt: unknown key; did you mean 'entry_script'?",
        # a parallel option's value, by config.py's rule for the field it sets
        "job.yml:12: task.program_arguments: --allowed_failed_percent '250': a percentage "
        "from 0 to 100",
    ]:
        assert expected in message, (expected, message)
    # in the file's order
    lines = [line for line, _, _ in info.value.problems]
    assert lines == sorted(lines)


PIPELINE_MISTAKES = """\
type: pipeline
settings:
  default_compute: local
  default_datastor: workspaceblobstore
jobs:
  prep:
    type: command
    command: python prep.py
    code: ./src
    enviroment: {conda_file: env.yml}
"""


def test_a_pipeline_files_unknown_keys_are_named_with_their_lines(job_folder):
    (job_folder / "pipeline.yml").write_text(PIPELINE_MISTAKES)
    with pytest.raises(JobSpecError) as info:
        load_job(job_folder / "pipeline.yml")
    message = " ".join(str(info.value).split())
    assert "pipeline.yml:4: settings.default_datastor: unknown key; did you mean " \
           "'default_datastore'?" in message
    assert "pipeline.yml:10: jobs.prep.enviroment: unknown key; did you mean 'environment'?" \
        in message


def test_a_data_size_for_files_is_refused_when_the_file_is_read(job_folder):
    # a folder of files is cut by count: '1MB' is a table's size (config.parse_file_count)
    text = yaml.safe_dump({**VALID, "mini_batch_size": "1MB"}, sort_keys=False)
    (job_folder / "job.yml").write_text(text)
    with pytest.raises(JobSpecError) as info:
        load_job(job_folder / "job.yml")
    [(line, key, message)] = info.value.problems
    assert (line, key) == (text.splitlines().index("mini_batch_size: 1MB") + 1, "mini_batch_size")
    assert message.startswith("'1MB': inputs.items is uri_folder: a file dataset needs a count")


def test_a_quoted_false_is_not_taken_for_true(job_folder):
    # bool("false") is True: a pipeline setting must be YAML's own true or false
    (job_folder / "pipeline.yml").write_text(
        PIPELINE_MISTAKES.replace("  default_datastor: workspaceblobstore\n",
                                  "  continue_on_step_failure: 'false'\n"))
    with pytest.raises(JobSpecError) as info:
        load_job(job_folder / "pipeline.yml")
    assert "pipeline.yml:4: settings.continue_on_step_failure: 'false': true or false, " \
           "unquoted" in " ".join(str(info.value).split())
