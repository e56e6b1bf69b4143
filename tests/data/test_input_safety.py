"""Inputs are what the user meant: a symlink loop lists each file once, links to folders are
followed once per real folder, broken links and folders never reach run() as files, the job's
own output and log folders are never read as input (file and tabular datasets), and remote side
inputs keep their folders when staged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parallelrun import DataError, Dataset, ParallelRunConfig, run_job

# run() fails loudly on anything that is not a readable file, and names each item it got
CHECKING_SCRIPT = """
    import os
    def init(): pass
    def run(mini_batch):
        for path in mini_batch:
            assert os.path.isfile(path), f"not a file: {path}"
        return [os.path.basename(p) + " " + open(p).read() for p in mini_batch]
"""


def _config(scripts: Path, **overrides) -> ParallelRunConfig:
    values = dict(source_directory=str(scripts), entry_script="score.py", mini_batch_size=2,
                  error_threshold=0, output_action="append_row", process_count_per_node=2)
    values.update(overrides)
    return ParallelRunConfig(**values)


def _rows(result) -> list[str]:
    return Path(result.output_file).read_text().splitlines()


def _tree(root: Path, count: int) -> list[str]:
    """``count`` files ``f00.txt``... (holding their name) in ``root``: half at the top, half in
    ``deep/inner/``; returns their names."""
    (root / "deep" / "inner").mkdir(parents=True)
    names = []
    for i in range(count):
        folder = root if i % 2 == 0 else root / "deep" / "inner"
        (folder / f"f{i:02d}.txt").write_text(f"{i}")
        names.append(f"f{i:02d}.txt")
    return names


def test_a_symlink_loop_in_the_input_lists_every_file_once(make_script, tmp_path):
    data = tmp_path / "data"
    names = _tree(data, 11)
    # a loop in a folder with subfolders, and one in a folder without (listed differently)
    (data / "deep" / "up").symlink_to("..")
    (data / "deep" / "inner" / "top").symlink_to("../..")
    scripts = make_script(CHECKING_SCRIPT)
    for spec in [str(data), f"{data}/**/*.txt", f"{data}/**"]:
        out = tmp_path / f"out{abs(hash(spec))}"
        result = run_job(_config(scripts), [Dataset.File.from_files(spec)], out)
        assert result.succeeded, result.error
        assert result.items_succeeded == 11 and result.items_failed == 0, spec
        assert sorted(row.split()[0] for row in _rows(result)) == sorted(names)


def test_links_to_folders_are_followed_once_and_broken_links_are_left_out(make_script,
                                                                          tmp_path):
    data = tmp_path / "data"
    (data / "shared").mkdir(parents=True)
    (data / "shared" / "a.txt").write_text("a")
    (data / "shared" / "b.txt").write_text("b")
    (data / "c.txt").write_text("c")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "d.txt").write_text("d")
    (data / "alias").symlink_to("shared")        # a second name for a folder already listed
    (data / "linked").symlink_to(outside)        # a folder only reachable through a link
    (data / "gone").symlink_to(tmp_path / "missing")
    (data / "file_link.txt").symlink_to("c.txt")
    os.mkfifo(data / "pipe")                     # run() would block reading it
    scripts = make_script(CHECKING_SCRIPT)
    result = run_job(_config(scripts), [Dataset.File.from_files(str(data))], tmp_path / "out")
    assert result.succeeded, result.error
    # shared/ once (first reached as alias/), the linked folder, the file link; no broken link,
    # no FIFO, no folder handed over as a file
    assert sorted(_rows(result)) == ["a.txt a", "b.txt b", "c.txt c", "d.txt d",
                                     "file_link.txt c"]
    assert result.items_succeeded == 5 and result.items_failed == 0


def test_the_jobs_own_output_and_log_folders_are_never_input(make_script, tmp_path):
    data = tmp_path / "data"
    names = _tree(data, 10)
    scripts = make_script(CHECKING_SCRIPT)
    config = _config(scripts)
    first = run_job(config, [Dataset.File.from_files(str(data))], data / "out",
                    log_dir=data / "joblogs")
    assert first.succeeded, first.error
    assert first.items_succeeded == 10
    assert sorted(row.split()[0] for row in _rows(first)) == sorted(names)
    # a link to the output folder is the output folder too; a glob through the tree as well
    (data / "deep" / "results").symlink_to(data / "out")
    second = run_job(config, [Dataset.File.from_files(f"{data}/**/*")], data / "out",
                     log_dir=data / "joblogs", overwrite=True)
    assert second.succeeded, second.error
    assert second.items_succeeded == 10
    assert sorted(row.split()[0] for row in _rows(second)) == sorted(names)


@pytest.mark.parametrize("spec, output, log_dir", [
    ("{data}", "{data}", None),                      # the output folder itself
    ("{data}/*.txt", "{data}", None),                # a glob in it (its results are .txt too)
    ("{data}/{{name}}.txt", "{data}", None),         # a partition pattern in it
    ("{data}/", "{tmp}/out", "{data}"),              # the log folder
])
def test_an_input_that_lists_the_output_or_log_folder_is_refused_before_any_work(
        make_script, tmp_path, spec, output, log_dir):
    data = tmp_path / "data"
    _tree(data, 4)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    where = dict(data=data, tmp=tmp_path)
    with pytest.raises(DataError, match="the job's own output or log folder") as refused:
        run_job(_config(make_script(CHECKING_SCRIPT)),
                [Dataset.File.from_files(spec.format(**where))], output.format(**where),
                log_dir=log_dir and log_dir.format(**where))
    assert str(data) in str(refused.value)
    # nothing written: no marker, no logs, no output file, in the data or elsewhere
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")
                  if "scripts" not in p.parts) == [p for p in before if "scripts" not in p.parts]


def test_tabular_inputs_skip_the_jobs_output_folder(make_script, tmp_path):
    data = tmp_path / "tables"
    data.mkdir()
    for i in range(3):
        (data / f"part{i}.csv").write_text("id,value\n" + "".join(f"{i}{j},{j}\n" for j in range(4)))
    scripts = make_script("""
        def init(): pass
        def run(frame):
            return [f"{row.id} {row.value}" for row in frame.itertuples()]
    """)
    config = _config(scripts, mini_batch_size="1KB")
    ds = Dataset.Tabular.from_delimited_files(str(data))
    first = run_job(config, [ds], data / "out")
    assert first.succeeded, first.error
    assert len(_rows(first)) == 12
    # again, by a glob that matches the first job's logs/processed_mini-batches.csv: the job's
    # own folders are not tables to read
    second = run_job(config, [Dataset.Tabular.from_delimited_files(f"{data}/**/*.csv")],
                     data / "out", overwrite=True)
    assert second.succeeded, second.error
    assert len(_rows(second)) == 12


@pytest.mark.parametrize("spec", ["labels/", "labels/**/*.txt"])
def test_remote_side_inputs_keep_their_folders(spec, make_script, tmp_path, azurite):
    from parallelrun import Datastore, Workspace

    ws = Workspace.create("ws", path=tmp_path / "ws")
    store = Datastore.register_azure_blob_container(
        ws, datastore_name="side", container_name=azurite.new_container(),
        account_name=azurite.account_name, account_key=azurite.account_key,
        endpoint=f"127.0.0.1:{azurite.port}", protocol="http")
    azurite.filesystem().pipe({f"{store.container_name}/labels/en/labels.txt": b"zero one",
                               f"{store.container_name}/labels/fr/labels.txt": b"zero un"})
    scripts = make_script("""
        import os
        from azureml.core import Run
        def init():
            global folder
            folder = Run.get_context().input_datasets["labels"]
        def run(mini_batch):
            out = []
            for path in mini_batch:
                n = int(open(path).read())
                en = open(os.path.join(folder, "en", "labels.txt")).read().split()
                fr = open(os.path.join(folder, "fr", "labels.txt")).read().split()
                out.append(f"{en[n]} {fr[n]}")
            return out
    """)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        (data / f"{i}.txt").write_text(str(i))
    side = Dataset.File.from_files(store.path(spec)).as_named_input("labels")
    result = run_job(_config(scripts), [Dataset.File.from_files(str(data))], tmp_path / "out",
                     side_inputs=[side])
    assert result.succeeded, result.error
    assert sorted(_rows(result)) == ["one un", "zero zero"]
