"""File datasets: what paths and globs match, in what order, and how they are cut."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from parallelrun import ConfigurationError, DataError, Dataset


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def planned(dataset, size=1) -> list[list[str]]:
    return [mb.payload.load() for mb in dataset.plan(size)]


def test_glob_folder_and_file_specs(tmp_path):
    touch(tmp_path, "a/2.png", "a/1.png", "a/x.jpg", "a/sub/3.png", "b.png", "a/.hidden.png")
    base = str(tmp_path)
    ds = Dataset.File.from_files(f"{base}/a/*.png")
    assert [os.path.relpath(p, base) for [p] in planned(ds)] == ["a/1.png", "a/2.png"]
    folder = Dataset.File.from_files(f"{base}/a")
    assert [os.path.relpath(p, base) for [p] in planned(folder)] == [
        "a/.hidden.png", "a/1.png", "a/2.png", "a/sub/3.png", "a/x.jpg"]
    recursive = Dataset.File.from_files(f"{base}/**/*.png")
    assert [os.path.relpath(p, base) for [p] in planned(recursive)] == [
        "a/1.png", "a/2.png", "a/sub/3.png", "b.png"]
    several = Dataset.File.from_files([f"{base}/b.png", Path(base) / "a" / "sub"])
    assert [os.path.relpath(p, base) for [p] in planned(several)] == ["b.png", "a/sub/3.png"]


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    touch(tmp_path, "data/1.txt")
    monkeypatch.chdir(tmp_path)
    [[path]] = planned(Dataset.File.from_files("data/*.txt"))
    assert path == str(tmp_path / "data/1.txt")


def test_nothing_matched_is_a_clear_error_now_or_at_planning(tmp_path):
    with pytest.raises(DataError, match=r"glob '.*\*\.png' matched no files"):
        Dataset.File.from_files(f"{tmp_path}/*.png")
    lazy = Dataset.File.from_files(f"{tmp_path}/*.png", validate=False)
    with pytest.raises(DataError, match="matched no files"):
        planned(lazy)
    with pytest.raises(DataError, match="got no paths"):
        Dataset.File.from_files([])
    # '' would list the current folder (an unset "$DATA"): refused, for files and tables alike
    with pytest.raises(DataError, match="got an empty path"):
        Dataset.File.from_files([f"{tmp_path}/*.png", ""])
    with pytest.raises(DataError, match="got an empty path"):
        Dataset.Tabular.from_delimited_files("  ")


def test_mini_batch_size_for_files_is_a_count(tmp_path):
    touch(tmp_path, *[f"{i}.txt" for i in range(7)])
    ds = Dataset.File.from_files(str(tmp_path))
    assert [len(b) for b in planned(ds, "3")] == [3, 3, 1]
    assert [len(b) for b in planned(ds, None)] == [1] * 7
    with pytest.raises(ConfigurationError, match="count of files"):
        ds.check_mini_batch_size("1MB")


names = st.lists(
    st.tuples(st.sampled_from(["", "d1/", "d2/", "d1/e/"]),
              st.text(alphabet="abcxyz019_.-", min_size=1, max_size=6).filter(lambda s: s not in {".", ".."})),
    min_size=1, max_size=25, unique_by=lambda t: t[1])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=names, size=st.integers(1, 9))
def test_plan_covers_every_file_once_in_order_and_is_deterministic(tmp_path_factory, files, size):
    root = tmp_path_factory.mktemp("tree")
    paths = set()
    for folder, name in files:
        if (root / folder / name).is_dir() or any(Path(p).is_relative_to(root / folder / name) for p in paths):
            continue
        touch(root, folder + name)
        paths.add(str(root / folder / name))
    ds = Dataset.File.from_files(str(root))
    plan = list(ds.plan(size))
    batches = [mb.payload.load() for mb in plan]
    flat = [p for b in batches for p in b]
    assert sorted(flat) == sorted(paths) and len(flat) == len(set(flat))
    assert [mb.index for mb in plan] == list(range(len(plan)))
    assert all(len(b) == size for b in batches[:-1]) and 1 <= len(batches[-1]) <= size
    assert [mb.items for mb in plan] == [len(b) for b in batches]
    # order: by path components, each folder's entries sorted
    assert flat == sorted(flat, key=lambda p: Path(p).relative_to(root).parts)
    assert [mb.payload.load() for mb in ds.plan(size)] == batches


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stems=st.lists(st.text(alphabet="abcAB019_-", min_size=1, max_size=5), min_size=1,
                      max_size=40, unique=True),
       head=st.integers(1, 6))
def test_big_folders_list_in_the_same_order_when_their_head_comes_first(tmp_path_factory, stems,
                                                                        head):
    from unittest import mock

    from parallelrun.data import listing

    root = tmp_path_factory.mktemp("flat")
    touch(root, *[f"{s}.png" for s in stems], "notes.txt", ".hidden.png")
    expected = sorted(str(root / f"{s}.png") for s in stems)
    # a "big" folder from 3 names on, so both the partial selection and the full sort run
    with mock.patch.object(listing, "BIG_FOLDER", 3), mock.patch.object(listing, "HEAD", head):
        assert list(listing.iter_local_files(f"{root}/*.png")) == expected
        assert list(listing.iter_local_files(str(root))) == sorted(
            [*expected, str(root / "notes.txt"), str(root / ".hidden.png")])
        assert listing.any_local_file(f"{root}/*.png")
        assert not listing.any_local_file(f"{root}/*.jpg")


def test_links_are_followed_once_per_real_folder_and_loops_end(tmp_path):
    touch(tmp_path, "data/a.txt", "data/sub/b.txt", "data/sub/deeper/c.txt", "other/d.txt")
    data = tmp_path / "data"
    (data / "sub" / "up").symlink_to("..")                  # a loop beside subfolders
    (data / "sub" / "deeper" / "top").symlink_to("../..")   # a loop in a folder without
    (data / "alias").symlink_to("sub")                      # a second name for sub/
    (data / "other").symlink_to(tmp_path / "other")         # reachable only through the link
    (data / "broken").symlink_to(tmp_path / "missing")
    base = str(data)
    every = ["a.txt", "alias/b.txt", "alias/deeper/c.txt", "other/d.txt"]
    for spec in [base, f"{base}/**", f"{base}/**/*.txt"]:
        assert [os.path.relpath(p, base) for [p] in planned(Dataset.File.from_files(spec))] == every
    assert [os.path.relpath(p, base) for [p] in planned(
        Dataset.File.from_files(f"{base}/*/*.txt"))] == ["alias/b.txt", "other/d.txt"]


def test_broken_links_fifos_and_links_to_folders_are_not_files(tmp_path):
    touch(tmp_path, "flat/a.txt", "elsewhere/x.txt")
    flat = tmp_path / "flat"
    (flat / "broken.txt").symlink_to(tmp_path / "missing.txt")
    (flat / "folder.txt").symlink_to(tmp_path / "elsewhere")
    (flat / "link.txt").symlink_to("a.txt")
    os.mkfifo(flat / "pipe.txt")
    for spec, expected in [(str(flat), ["a.txt", "folder.txt/x.txt", "link.txt"]),
                           (f"{flat}/*.txt", ["a.txt", "link.txt"])]:
        assert [os.path.relpath(p, flat) for [p] in planned(Dataset.File.from_files(spec))] == expected
    # nothing but a broken link: no file, now or at planning
    touch(tmp_path, "only/.keep")
    os.remove(tmp_path / "only" / ".keep")
    (tmp_path / "only" / "gone").symlink_to(tmp_path / "missing")
    with pytest.raises(DataError, match="matched no files"):
        Dataset.File.from_files(str(tmp_path / "only"))
    with pytest.raises(DataError, match="matched no files"):
        Dataset.File.from_files(str(tmp_path / "only" / "gone"))


def test_excluded_folders_are_never_listed(tmp_path):
    touch(tmp_path, "data/a.txt", "data/out/parallel_run_step.txt", "data/out/logs/x.txt",
          "data/logs/y.txt", "data/sub/b.txt")
    data = tmp_path / "data"
    (data / "sub" / "results").symlink_to(data / "out")
    exclude = [str(data / "out"), str(data / "logs")]
    for spec, expected in [(str(data), ["a.txt", "sub/b.txt"]),
                           (f"{data}/**/*.txt", ["a.txt", "sub/b.txt"]),
                           (f"{data}/*/*.txt", ["sub/b.txt"])]:
        paths = [os.path.relpath(p, data) for mb in Dataset.File.from_files(spec).plan(
            1, exclude=exclude) for p in mb.payload.load()]
        assert paths == expected
    with pytest.raises(DataError, match="job's own output or log folder"):
        list(Dataset.File.from_files(f"{data}/out/*.txt").plan(1, exclude=exclude))
