"""Every ParallelRunConfig value is checked when the config is built, with a message that helps."""

from __future__ import annotations

import pytest

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
    ("run_invocation_timeout", 0, "seconds > 0"),
    ("run_invocation_timeout", "60", "seconds > 0"),
    ("init_timeout", -1, "seconds > 0"),
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
