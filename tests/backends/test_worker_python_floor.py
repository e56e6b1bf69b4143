"""Workers may run an older Python than the coordinator (an Environment pinned to
``interpreters.OLDEST_WORKER_PYTHON``): every parallelrun module a real worker imports must
parse as that Python's grammar (no ``match``, no ``except*``, no PEP 695 generics)."""

from __future__ import annotations

import ast
import importlib.util
import json

import pytest

from parallelrun import Dataset, ParallelRunConfig, run_job
from parallelrun.pipeline.interpreters import OLDEST_WORKER_PYTHON

# run() reports the parallelrun modules its worker process has imported by then
MODULES_SEEN = """
    import json, sys
    def init(): pass
    def run(mini_batch):
        names = sorted(m for m in sys.modules if m == "parallelrun" or m.startswith("parallelrun."))
        return [json.dumps(names)] * len(mini_batch)
"""


@pytest.mark.parametrize("kind, output_format", [("file", "text"), ("tabular", "csv"),
                                                 ("tabular", "parquet")])
def test_what_a_worker_imports_parses_as_the_oldest_worker_python(make_script, tmp_path, kind,
                                                                  output_format):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("id,x\n1,2\n")
    dataset = (Dataset.File.from_files(str(data)) if kind == "file"
               else Dataset.Tabular.from_delimited_files(str(data / "*.csv")))
    config = ParallelRunConfig(source_directory=str(make_script(MODULES_SEEN)),
                               entry_script="score.py", mini_batch_size="1" if kind == "file" else "1MB",
                               error_threshold=0, output_action="append_row",
                               append_row_format=output_format, process_count_per_node=1)
    result = run_job(config, [dataset], tmp_path / "out")
    assert result.succeeded, result.error
    if output_format == "parquet":
        import pyarrow.parquet as pq

        line = pq.read_table(result.output_file).column(0)[0].as_py()
    else:
        line = open(result.output_file).read().splitlines()[-1]
    modules = json.loads(line.strip('"').replace('""', '"') if output_format == "csv" else line)
    assert "parallelrun.backends.worker_loop" in modules
    # csv and parquet encoders come from engine/outputs, in the worker
    assert output_format == "text" or "parallelrun.engine.outputs" in modules
    too_new = []
    for name in modules:
        source = importlib.util.find_spec(name).origin
        try:
            ast.parse(open(source, encoding="utf-8").read(), filename=source,
                      feature_version=OLDEST_WORKER_PYTHON)
        except SyntaxError as exc:
            too_new.append(f"{source}:{exc.lineno}: {exc.msg}")
    assert not too_new, "worker-side modules that need a newer Python:\n" + "\n".join(too_new)


def test_a_file_worker_does_not_import_the_planners(make_script, tmp_path):
    # a worker's start-up is paid once per process and per restart: what plans mini-batches
    # (listing, globbing, config, the dataset classes) stays in the coordinator
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.png").write_bytes(b"")
    config = ParallelRunConfig(source_directory=str(make_script(MODULES_SEEN)),
                               entry_script="score.py", mini_batch_size="1", error_threshold=0,
                               output_action="append_row", process_count_per_node=1)
    result = run_job(config, [Dataset.File.from_files(str(data))], tmp_path / "out")
    assert result.succeeded, result.error
    modules = set(json.loads(open(result.output_file).read().splitlines()[-1]))
    planners = {"parallelrun.config", "parallelrun.data.files", "parallelrun.data.dataset",
                "parallelrun.data.listing", "parallelrun.data.globbing", "parallelrun.data.base"}
    assert not modules & planners, sorted(modules & planners)
