"""Every ParallelRunConfig value is checked when the config is built, with a message that helps."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parallelrun import ConfigurationError, ParallelRunConfig, ParallelRunError
from parallelrun.config import check_arguments, parse_data_size, parse_file_count


@pytest.fixture
def script(tmp_path):
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(mb): return mb\n")
    return tmp_path


def make(script, **overrides):
    values = dict(source_directory=str(script), entry_script="score.py", error_threshold=10,
                  output_action="append_row")
    values.update(overrides)
    return ParallelRunConfig(**values)


def test_defaults_follow_the_original(script):
    config = make(script)
    assert config.node_count == 1 and config.run_invocation_timeout == 60 and config.run_max_try == 3
    assert config.logging_level == "INFO" and config.append_row_file_name == "parallel_run_step.txt"
    assert config.script_path == script / "score.py" and config.source_path == script


def test_entry_script_without_source_directory_is_relative_to_cwd(script, monkeypatch):
    monkeypatch.chdir(script)
    config = ParallelRunConfig(entry_script="score.py", error_threshold=1, output_action="summary_only")
    assert config.source_path == script


@pytest.mark.parametrize("parameter, value, fragment", [
    ("entry_script", None, "it is required"),
    ("entry_script", "missing.py", "an existing .py file inside source_directory"),
    ("entry_script", "score.txt", "a Python file ending in .py"),
    ("source_directory", "/no/such/folder", "an existing folder"),
    ("error_threshold", None, "it is required"),
    ("error_threshold", -2, "integer >= -1"),
    ("error_threshold", "10", "integer >= -1"),
    ("error_threshold", True, "integer >= -1"),
    ("output_action", "append_rows", "one of append_row, summary_only"),
    ("output_action", None, "one of append_row, summary_only"),
    ("node_count", 0, "integer >= 1"),
    ("process_count_per_node", 0, "integer >= 1"),
    ("process_count_per_node", 1.5, "integer >= 1"),
    ("mini_batch_size", 0, "integer >= 1"),
    ("mini_batch_size", "five", "a count of files"),
    ("mini_batch_size", "1TB", "a data size"),
    ("mini_batch_size", -3, "a count of files"),
    ("logging_level", "VERBOSE", "one of WARNING, INFO, DEBUG"),
    ("run_invocation_timeout", 0, "seconds one run() may take, > 0"),
    ("run_invocation_timeout", "60", "seconds one run() may take, > 0"),
    ("init_timeout", -1, "seconds init() may take, > 0"),
    ("run_max_try", 0, "integer >= 1"),
    ("allowed_failed_count", -5, "integer >= -1"),
    ("allowed_failed_percent", 101, "percentage from 0 to 100"),
    ("allowed_failed_percent", -1, "percentage from 0 to 100"),
    ("append_row_file_name", "out/rows.txt", "a plain file name"),
    ("append_row_file_name", "rows?.txt", "a plain file name"),
    ("append_row_file_name", "", "a plain file name"),
    ("partition_keys", "region", "a non-empty list of column names"),
    ("partition_keys", [], "a non-empty list of column names"),
    ("environment_variables", {"A": 1}, "a dict of str to str"),
])
def test_bad_values_name_the_parameter_value_and_what_is_allowed(script, parameter, value, fragment):
    with pytest.raises(ConfigurationError) as info:
        make(script, **{parameter: value})
    message = str(info.value)
    assert message.startswith(f"{parameter}={value!r}") and fragment in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, ParallelRunError)


def test_logging_level_is_case_insensitive(script):
    assert make(script, logging_level="debug").logging_level == "DEBUG"


@pytest.mark.parametrize("value, expected", [(1024, 1024), ("1024", 1024), ("10KB", 10240),
                                             ("1mb", 1048576), ("2Gb", 2 * 1024**3), ("1MB", 1048576)])
def test_data_sizes(value, expected):
    assert parse_data_size(value) == expected


@pytest.mark.parametrize("value", ["1 MB", "1.5MB", "MB", "1TB", "", "-1", True])
def test_bad_data_sizes(value):
    with pytest.raises(ConfigurationError, match="mini_batch_size"):
        parse_data_size(value)


@pytest.mark.parametrize("value, expected", [(1, 1), ("5", 5), (" 7 ", 7)])
def test_file_counts(value, expected):
    assert parse_file_count(value) == expected


@pytest.mark.parametrize("value", [0, "0", "1MB", "x", 2.5, False])
def test_bad_file_counts(value):
    with pytest.raises(ConfigurationError, match="count of files"):
        parse_file_count(value)


def test_arguments_must_start_with_a_flag_and_not_use_engine_names():
    assert check_arguments(["--threshold", 0.5]) == ["--threshold", "0.5"]
    assert check_arguments(None) == []
    with pytest.raises(ConfigurationError, match="starting with a flag"):
        check_arguments(["0.5", "--threshold"])
    with pytest.raises(ConfigurationError, match="'--mini-batch-size' is a name parallelrun owns"):
        check_arguments(["--mini-batch-size", "3"])
    with pytest.raises(ConfigurationError, match="name parallelrun owns"):
        check_arguments(["--output=x"])


# Numbers that would silently turn a check off (nan compares False with everything, inf never
# comes), and counts no machine can honour, are refused when the config is built.
@pytest.mark.parametrize("parameter, value", [
    ("run_invocation_timeout", float("nan")),
    ("run_invocation_timeout", float("inf")),
    ("run_invocation_timeout", -5.0),
    ("init_timeout", float("nan")),
    ("init_timeout", float("inf")),
    ("init_timeout", float("-inf")),
    ("allowed_failed_percent", float("nan")),
    ("allowed_failed_percent", float("inf")),
    ("process_count_per_node", 10**9),
    ("process_count_per_node", -1),
    ("node_count", 10**9),
    ("run_max_try", -3),
])
def test_nan_inf_negative_and_absurd_numbers_are_configuration_errors(script, parameter, value):
    with pytest.raises(ConfigurationError) as info:
        make(script, **{parameter: value})
    assert info.value.parameter == parameter and str(info.value).startswith(f"{parameter}=")


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12))
# the script fixture is only read, so one per test (not per example) is right
fixture_once = [HealthCheck.function_scoped_fixture]


@settings(max_examples=200, deadline=None, suppress_health_check=fixture_once)
@given(value=numbers)
def test_a_timeout_is_accepted_exactly_when_it_is_a_finite_number_of_seconds_above_0(script, value):
    for parameter in ("run_invocation_timeout", "init_timeout"):
        if math.isfinite(value) and value > 0:
            assert getattr(make(script, **{parameter: value}), parameter) == value
        else:
            with pytest.raises(ConfigurationError, match=f"^{parameter}="):
                make(script, **{parameter: value})


@settings(max_examples=200, deadline=None, suppress_health_check=fixture_once)
@given(value=numbers)
def test_allowed_failed_percent_is_accepted_exactly_from_0_to_100(script, value):
    if 0 <= value <= 100:
        assert make(script, allowed_failed_percent=value).allowed_failed_percent == value
    else:
        with pytest.raises(ConfigurationError, match="percentage from 0 to 100"):
            make(script, allowed_failed_percent=value)


@settings(max_examples=100, deadline=None, suppress_health_check=fixture_once)
@given(value=st.integers(-10**12, 10**12))
def test_worker_and_node_counts_are_accepted_from_1_to_the_limit(script, value):
    from parallelrun.config import MAX_NODE_COUNT, MAX_PROCESS_COUNT_PER_NODE

    for parameter, limit in (("process_count_per_node", MAX_PROCESS_COUNT_PER_NODE),
                             ("node_count", MAX_NODE_COUNT)):
        if 1 <= value <= limit:
            assert getattr(make(script, **{parameter: value}), parameter) == value
        else:
            with pytest.raises(ConfigurationError, match=f"integer >= 1 and <= {limit}"):
                make(script, **{parameter: value})


@pytest.mark.parametrize("name, fragment", [
    ("..", "'.' and '..' are folders"),
    (".", "'.' and '..' are folders"),
    ("logs", "the job itself uses those in the output folder"),
    ("Logs", "the job itself uses those in the output folder"),
    (".parallelrun", "the job itself uses those in the output folder"),
    ("rows\x00.txt", "control characters"),
    ("rows\n.txt", "control characters"),
    ("r" * 241, "at most 240 bytes"),
    ("ü" * 121, "at most 240 bytes"),
])
def test_append_row_file_names_that_would_clash_with_the_job_are_refused(script, name, fragment):
    with pytest.raises(ConfigurationError) as info:
        make(script, append_row_file_name=name)
    assert info.value.parameter == "append_row_file_name" and fragment in str(info.value)


@pytest.mark.parametrize("name", ["rows.txt", ".hidden.csv", "logs.txt", "..rows", "r" * 240,
                                  "résultats.txt"])
def test_plain_append_row_file_names_are_accepted(script, name):
    assert make(script, append_row_file_name=name).append_row_file_name == name


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "0", "-1"])
def test_a_job_file_timeout_of_nan_or_inf_is_a_problem_with_its_line(tmp_path, value):
    from parallelrun import load_job
    from parallelrun.pipeline.yaml_job import JobSpecError

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init(): pass\ndef run(mb): return mb\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "job.yml").write_text(
        "type: parallel\n"
        "inputs:\n  items: {type: uri_folder, path: ./data}\n"
        "outputs:\n  scores: {type: uri_folder}\n"
        "input_data: ${{inputs.items}}\n"
        f"retry_settings:\n  timeout: {value}\n"
        "task:\n  type: run_function\n  code: ./src\n  entry_script: score.py\n"
        "  append_row_to: ${{outputs.scores}}\n")
    with pytest.raises(JobSpecError) as info:
        load_job(tmp_path / "job.yml")
    assert ":8: retry_settings.timeout:" in str(info.value)   # the line of "timeout:"
    assert "seconds one run() may take, > 0 and finite" in str(info.value)


@pytest.mark.parametrize("flag, value", [("--run-invocation-timeout", "nan"),
                                         ("--init-timeout", "inf"),
                                         ("--append-row-file-name", "..")])
def test_the_cli_refuses_them_with_exit_2_and_no_traceback(script, tmp_path, flag, value):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("1")
    done = subprocess.run(
        [sys.executable, "-m", "parallelrun.cli", "run", "--source-directory", str(script),
         "--entry-script", "score.py", "--input", str(tmp_path / "data"), "--output",
         str(tmp_path / "out"), flag, value],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert flag in done.stderr            # the CLI names its flag (cli/common.py's in_cli_words)
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "logs").exists()          # refused before any work


@given(st.one_of(st.integers(-5, 10**6), st.text(max_size=8),
                 st.from_regex(r"\A\s?[0-9]{1,4}(kb|KB|mb|Mb|gb|GB|B|tb)?\s?\Z")))
def test_a_job_files_mini_batch_size_is_what_one_dataset_kind_or_the_other_takes(value):
    # job files check mini_batch_size before the dataset's kind is known, with config.py's rule
    from parallelrun.config import check_mini_batch_size, parse_data_size, parse_file_count

    def takes(parse) -> bool:
        try:
            parse(value)
        except ConfigurationError:
            return False
        return True

    # refuses nothing a dataset kind takes, and takes nothing both kinds refuse
    assert takes(lambda v: check_mini_batch_size("mini_batch_size", v)) == \
        (takes(parse_data_size) or takes(parse_file_count))
