"""Every registered dataset kind keeps the same contract: the dataset-kind conformance suite.

One suite, parametrized over ``parallelrun.data.base.DATASET_KINDS`` (file, tabular, and any
kind registered later), each kind given a small sample by a factory in :data:`SAMPLES`. A kind
registered without a factory fails the suite, naming the kind and where to add one. What must
hold for every kind, through the API a user has: the plan is deterministic; every item lands in
exactly one mini-batch; ``mini_batch_size`` is honoured (files by count, tables by bytes within
one row); a job gives every row once; registration gives back an equal dataset, and a new version
when the data changes; the dataset pickles; an empty or missing input is refused naming the
path; a resume with the same listing finishes, one whose listing changed is refused.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pickle
import pkgutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import parallelrun.data
from parallelrun import (
    DataError,
    Dataset,
    ParallelRunConfig,
    ParallelRunError,
    ResumeMismatchError,
    Workspace,
    WorkspaceError,
    run_job,
)
from parallelrun.data.base import DATASET_KINDS
from parallelrun.data.mltable import load_mltable


def _import_data_modules() -> None:
    # kinds register themselves when their module is imported: import all of data/ so that a
    # kind added in a new module is in DATASET_KINDS when the parameters are built
    for module in pkgutil.iter_modules(parallelrun.data.__path__):
        importlib.import_module(f"parallelrun.data.{module.name}")


_import_data_modules()


@dataclasses.dataclass
class Sample:
    """A kind's small sample in ``folder``: how to build the dataset and what it must give."""

    folder: Path
    build: Callable[..., object]           # build(validate=True, path=None) -> the dataset
    mini_batch_size: int | str
    expected: list[str]                     # every item's key, once each
    script: str                             # run() returns one row per item: the item's key
    keys: Callable[[object], list[str]]     # a loaded payload -> its items' keys
    check_sizes: Callable[[list[list[str]]], None]  # keys per mini-batch, in plan order
    add_first: Callable[[], None]           # a new item that sorts before every other
    change: Callable[[], list[str]]         # change the data; returns the new expected keys


# --- file -------------------------------------------------------------------------------------
FILE_COUNT, FILES_PER_BATCH = 23, 5


def file_sample(folder: Path) -> Sample:
    folder.mkdir(parents=True)
    for i in range(FILE_COUNT):
        (folder / f"item_{i:04d}.txt").write_text(f"f{i}", encoding="utf-8")

    def build(validate=True, path=None):
        return Dataset.File.from_files(str(path or folder), validate=validate)

    def check_sizes(batches):
        assert [len(b) for b in batches[:-1]] == [FILES_PER_BATCH] * (len(batches) - 1)
        assert 1 <= len(batches[-1]) <= FILES_PER_BATCH

    def add_first():
        (folder / "item_.txt").write_text("f-new", encoding="utf-8")

    def change():
        (folder / "item_0003.txt").write_text("f3-changed", encoding="utf-8")
        return sorted({f"f{i}" for i in range(FILE_COUNT)} - {"f3"} | {"f3-changed"})

    return Sample(
        folder, build, FILES_PER_BATCH, sorted(f"f{i}" for i in range(FILE_COUNT)),
        script="""
            def init(): pass
            def run(mini_batch):
                return [open(path, encoding="utf-8").read() for path in mini_batch]
        """,
        keys=lambda loaded: [Path(p).read_text(encoding="utf-8") for p in loaded],
        check_sizes=check_sizes, add_first=add_first, change=change)


# --- tabular ----------------------------------------------------------------------------------
TABLE_FILES, TABLE_ROWS, TABLE_BYTES = 3, 40, 1024


def _row(key: int) -> str:
    return f"{key},row number {key} with some padding\n"


def _write_table(path: Path, keys) -> None:
    path.write_text("id,text\n" + "".join(_row(k) for k in keys), encoding="utf-8", newline="")


def tabular_sample(folder: Path) -> Sample:
    folder.mkdir(parents=True)
    for f in range(TABLE_FILES):
        _write_table(folder / f"part_{f}.csv", range(f * 100, f * 100 + TABLE_ROWS))
    keys = [f * 100 + r for f in range(TABLE_FILES) for r in range(TABLE_ROWS)]

    def build(validate=True, path=None):
        return Dataset.Tabular.from_delimited_files(str(path or folder), validate=validate)

    def check_sizes(batches):
        # documented: a file bigger than the size is cut into pieces of about that size, each
        # ending on a row boundary, and a mini-batch never crosses files
        longest = max(len(_row(k)) for k in range(1000))
        by_file: dict[int, list[int]] = {}
        for batch in batches:
            files = {int(k) // 100 for k in batch}
            assert len(files) == 1, f"a mini-batch crosses files: {batch}"
            size = sum(len(_row(int(k)).encode()) for k in batch)
            by_file.setdefault(files.pop(), []).append(size)
        for sizes in by_file.values():
            assert all(size <= TABLE_BYTES + longest for size in sizes), sizes
            assert all(size >= TABLE_BYTES - longest for size in sizes[:-1]), sizes
            assert len(sizes) >= 2   # each sample file is over the size: it is cut

    def add_first():
        _write_table(folder / "part_-.csv", [999])

    def change():
        _write_table(folder / "part_1.csv", range(100, 100 + TABLE_ROWS + 1))
        return sorted(str(k) for k in keys + [100 + TABLE_ROWS])

    return Sample(
        folder, build, f"{TABLE_BYTES}", sorted(str(k) for k in keys),
        script="""
            def init(): pass
            def run(mini_batch):
                return [str(key) for key in mini_batch["id"]]
        """,
        keys=lambda loaded: [str(k) for k in loaded["id"]],
        check_sizes=check_sizes, add_first=add_first, change=change)


# --- mltable ----------------------------------------------------------------------------------
def _write_mltable(folder: Path, paths: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLTable").write_text(yaml.safe_dump({
        "type": "mltable", "paths": paths,
        "transformations": [{"read_delimited": {"delimiter": ",",
                                                "header": "all_files_same_headers"}},
                            {"keep_columns": ["id"]}]}), encoding="utf-8")


def mltable_sample(folder: Path) -> Sample:
    # the rows of the tabular sample, read through an MLTable file (and a transformation)
    table = tabular_sample(folder)
    _write_mltable(folder, [{"pattern": "./*.csv"}])

    def build(validate=True, path=None):
        if path is None or validate:
            return load_mltable(path or folder)   # an MLTable's input is its folder
        # an MLTable file whose data has gone since (what validate=False stands for)
        elsewhere = folder.parent / f"mltable-over-{Path(path).name}"
        _write_mltable(elsewhere, [{"folder": str(path)}])
        return load_mltable(elsewhere)

    return dataclasses.replace(table, build=build)


#: dataset kind -> a factory of its sample (a folder to write it in -> Sample)
SAMPLES: dict[str, Callable[[Path], Sample]] = {
    "file": file_sample, "tabular": tabular_sample, "mltable": mltable_sample}


@pytest.fixture(params=sorted(DATASET_KINDS))
def sample(request, tmp_path) -> Sample:
    """Each registered dataset kind's sample, in a fresh folder."""
    factory = SAMPLES.get(request.param)
    if factory is None:
        pytest.fail(f"dataset kind {request.param!r} ({DATASET_KINDS[request.param].__name__}) is "
                    "registered but has no sample: add a factory for it to SAMPLES in "
                    f"{Path(__file__).name}, so it is held to the dataset-kind contract")
    return factory(tmp_path / "data")


def plan_of(dataset, sample: Sample) -> list[tuple]:
    """What a plan is, as a job sees it: each mini-batch's place, label, digest and items."""
    return [(mb.index, mb.items, mb.label, mb.digest(), sample.keys(mb.payload.load()))
            for mb in dataset.plan(sample.mini_batch_size)]


def config(sample: Sample, make_script, **overrides) -> ParallelRunConfig:
    values = {"source_directory": str(make_script(sample.script)), "entry_script": "score.py",
              "mini_batch_size": sample.mini_batch_size, "error_threshold": 0,
              "output_action": "append_row", "process_count_per_node": 2,
              "compute_target": "local", **overrides}
    return ParallelRunConfig(**values)


def rows(result) -> list[str]:
    return sorted(Path(result.output_file).read_text(encoding="utf-8").splitlines())


# --- the contract -----------------------------------------------------------------------------
def test_every_registered_kind_has_a_sample():
    missing = sorted(set(DATASET_KINDS) - set(SAMPLES))
    assert not missing, (f"dataset kinds without a sample: {missing}; add a factory for each to "
                         f"SAMPLES in {Path(__file__).name}")


def test_planning_is_deterministic(sample):
    dataset = sample.build()
    first = plan_of(dataset, sample)
    assert first == plan_of(dataset, sample)
    assert first == plan_of(sample.build(), sample)
    assert [index for index, *_ in first] == list(range(len(first)))


def test_every_item_lands_in_exactly_one_mini_batch_of_the_size_asked(sample):
    batches = [keys for *_, keys in plan_of(sample.build(), sample)]
    assert sorted(key for batch in batches for key in batch) == sample.expected
    sample.check_sizes(batches)


def test_a_job_over_it_gives_every_row_once(sample, make_script, tmp_path):
    result = run_job(config(sample, make_script), [sample.build()], tmp_path / "out")
    assert result.status == "Finished", result.error
    assert rows(result) == sample.expected
    assert result.items_failed == 0 and result.minibatches_failed == 0


def test_registered_it_comes_back_equal_and_changed_data_is_a_new_version(sample, tmp_path):
    ws = Workspace.create("ws", path=tmp_path / "ws")
    dataset = sample.build()
    first = dataset.register(ws, "sample")
    got = Dataset.get_by_name(ws, "sample")
    assert type(got) is type(dataset) and got.version == first.version == 1
    assert plan_of(got, sample) == plan_of(dataset, sample)

    expected = sample.change()
    with pytest.raises(WorkspaceError, match="create_new_version=True"):
        sample.build().register(ws, "sample")
    second = sample.build().register(ws, "sample", create_new_version=True)
    assert second.version == 2 and second.id != first.id
    latest = Dataset.get_by_name(ws, "sample")
    assert latest.version == 2
    assert sorted(k for *_, keys in plan_of(latest, sample) for k in keys) == expected


def test_registered_it_comes_back_in_another_process(sample, tmp_path):
    # pipeline runners and `parallelrun run` re-create registered datasets in their own process
    ws = Workspace.create("ws", path=tmp_path / "ws")
    dataset = sample.build()
    dataset.register(ws, "sample")
    code = textwrap.dedent(f"""
        import json
        from parallelrun import Dataset, Workspace
        dataset = Dataset.get_by_name(Workspace({ws.path!r}), "sample")
        print(json.dumps([mb.label for mb in dataset.plan({sample.mini_batch_size!r})]))
    """)
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [mb.label for mb in dataset.plan(sample.mini_batch_size)]


def test_it_pickles_as_it_travels_to_workers_and_job_pkl(sample):
    dataset = sample.build()
    copy = pickle.loads(pickle.dumps(dataset))
    assert type(copy) is type(dataset)
    assert plan_of(copy, sample) == plan_of(dataset, sample)


@pytest.mark.parametrize("where", ["empty", "missing"])
def test_an_empty_or_missing_input_is_refused_naming_the_path(sample, tmp_path, where):
    path = tmp_path / where
    if where == "empty":
        path.mkdir()
    with pytest.raises(DataError, match=str(path)):
        sample.build(path=path)


@pytest.mark.parametrize("where", ["empty", "missing"])
def test_a_job_over_an_empty_or_missing_input_is_refused_before_any_work(sample, make_script,
                                                                         tmp_path, where):
    # validate=False is how a registered dataset is re-created: its files may have gone since
    path = tmp_path / where
    if where == "empty":
        path.mkdir()
    out = tmp_path / "out"
    with pytest.raises(ParallelRunError, match=str(path)):
        run_job(config(sample, make_script), [sample.build(validate=False, path=path)], out)
    assert not out.exists()


def test_a_resume_with_the_same_listing_finishes_and_a_changed_listing_is_refused(
        sample, make_script, tmp_path):
    job = config(sample, make_script)
    out = tmp_path / "out"
    assert run_job(job, [sample.build()], out).status == "Finished"
    again = run_job(job, [sample.build()], out, resume=True)
    assert again.status == "Finished", again.error
    assert rows(again) == sample.expected

    sample.add_first()
    with pytest.raises(ResumeMismatchError, match="added, removed or renamed"):
        run_job(job, [sample.build()], out, resume=True)
    assert rows(again) == sample.expected
