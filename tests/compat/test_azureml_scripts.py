"""Entry scripts written for Azure ML (v1 and v2 styles) run unchanged: tests/compat/corpus/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from parallelrun import Dataset, ParallelRunConfig, run_job
from parallelrun.metrics import collect_metrics

CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture
def models(tmp_path) -> dict[str, str]:
    """Two versions of a model "mnist", as a step that was given version 2 sees them."""
    paths = {}
    for version, weight in ((1, 10), (2, 100)):
        folder = tmp_path / "models" / f"mnist-v{version}"
        folder.mkdir(parents=True)
        (folder / "weights.txt").write_text(str(weight))
        paths[f"mnist:{version}"] = str(folder)
    paths["mnist"] = paths["mnist:2"]
    return paths


def run_corpus(script: str, tmp_path, inputs, models=None, arguments=None, **overrides):
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    shutil.copy(CORPUS / script, source / script)
    values = dict(source_directory=str(source), entry_script=script, mini_batch_size=2,
                  error_threshold=0, output_action="append_row", process_count_per_node=2,
                  run_max_try=1)
    values.update(overrides)
    return run_job(ParallelRunConfig(**values), inputs, tmp_path / "out", arguments, models=models)


def lines(result) -> list[str]:
    return sorted(Path(result.output_file).read_text().splitlines())


def test_v1_model_get_model_path_and_arguments(tmp_path, make_files, models):
    data = Dataset.File.from_files(str(make_files(4)))
    result = run_corpus("v1_file_model.py", tmp_path, [data], models, ["--offset", "7"])
    assert result.status == "Finished", result.error
    assert lines(result) == [f"item_{i:04d}.txt: {i * 100 + 7}" for i in range(4)]


def test_v1_model_module_with_version(tmp_path, make_files, models):
    data = Dataset.File.from_files(str(make_files(2)))
    result = run_corpus("v1_model_module_version.py", tmp_path, [data], models)
    assert lines(result) == ["item_0000.txt mnist-v2", "item_0001.txt mnist-v2"]


def test_v1_run_context_metrics_and_named_inputs(tmp_path, make_files, models):
    data = Dataset.File.from_files(str(make_files(5))).as_named_input("digits")
    result = run_corpus("v1_run_context_metrics.py", tmp_path, [data], models)
    assert lines(result) == [f"item_{i:04d}.txt digits" for i in range(5)]
    collected = collect_metrics(result.log_dir)
    assert sorted(collected["metrics"]["batch_size"]) == [1, 2, 2]
    assert sorted(collected["metrics"]["values"]) == [0, 1, 2, 3, 4]
    assert collected["tags"] == {"stage": "scoring"}


def test_entryscript_logger_and_summary_only_output_dir(tmp_path, make_files):
    data = Dataset.File.from_files(str(make_files(3)))
    result = run_corpus("v1_entryscript_summary_only.py", tmp_path, [data], output_action="summary_only")
    assert result.status == "Finished" and result.items_succeeded == 3
    outputs = {p.name: p.read_text() for p in Path(result.output_dir).glob("*.result")}
    assert outputs == {f"item_{i:04d}.txt.result": str(i * i) for i in range(3)}
    log_text = "".join(p.read_text() for p in Path(result.log_dir, "user/entry_script_log").rglob("*.txt"))
    assert "init from node0.process" in log_text and "scored item_0002.txt" in log_text


def test_v2_model_dir_and_dataframe(tmp_path, make_files, models):
    data = Dataset.File.from_files(str(make_files(3)))
    result = run_corpus("v2_model_dir_dataframe.py", tmp_path, [data], {"mnist": models["mnist"]},
                        ["--scale", "5"])
    assert lines(result) == [f"item_{i:04d}.txt {i * 5}" for i in range(3)]
    stdout = "".join(p.read_text() for p in Path(result.log_dir, "user/stdout").rglob("*.txt"))
    assert "shutdown called" in stdout


def test_v2_tabular(tmp_path, models):
    csv = tmp_path / "table.csv"
    csv.write_text("id,x\n" + "".join(f"{i},{i}\n" for i in range(6)))
    data = Dataset.Tabular.from_delimited_files(str(csv))
    result = run_corpus("v2_tabular.py", tmp_path, [data], {"mnist": models["mnist"]},
                        mini_batch_size="1KB")
    assert lines(result) == sorted(f"{i} {i * 100}" for i in range(6))


@pytest.mark.parametrize("script, symbol", [("v1_not_provided.py", "azureml.core.Workspace"),
                                            ("v1_not_provided_module.py", "azureml.pipeline")])
def test_what_is_not_provided_fails_clearly(tmp_path, make_files, script, symbol):
    data = Dataset.File.from_files(str(make_files(1)))
    result = run_corpus(script, tmp_path, [data])
    assert result.status == "Failed"
    assert f"{symbol} is not provided by parallelrun inside entry scripts" in result.error


def test_compat_can_be_turned_off(tmp_path, make_files, models):
    data = Dataset.File.from_files(str(make_files(1)))
    result = run_corpus("v1_file_model.py", tmp_path, [data], models,
                        environment_variables={"PARALLELRUN_AZUREML_COMPAT": "0"})
    assert result.status == "Failed" and "No module named 'azureml'" in result.error


def test_azureml_is_not_importable_outside_workers():
    code = "import parallelrun, parallelrun.compat\ntry:\n import azureml\nexcept ImportError:\n print('absent')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "absent"
