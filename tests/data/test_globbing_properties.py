"""The glob rule against references, on generated trees of local files: Python's ``glob`` (with
``recursive=True``, hidden names left to patterns that start with '.'), and the same engine
walking the tree through fsspec's local filesystem (``file://`` URLs) instead of ``os.scandir``.
Where the rule differs from ``glob`` on purpose (the job marker is never listed, patterns name
files and never folders) the reference is adjusted and says so."""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import shutil

from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

import pytest

from parallelrun import DataError
from parallelrun.data import globbing
from parallelrun.data.globbing import fragment_regex
from parallelrun.data.listing import check_outside, iter_local_files
from parallelrun.data.remote import check_remote_outside, iter_remote_files

NAMES = ["a", "b", "ab", "a.txt", "b.txt", ".h", ".h.txt", "[x]", ".parallelrun", "x1"]
COMPONENTS = ["*", "?", "a*", "*.txt", ".*", "[ab]", "[!a]*", "a?", "**", "a", ".h", "[[]x]",
              "*1", "b.txt"]

paths = st.lists(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(tuple),
                 min_size=1, max_size=14)
# a pattern holds a wildcard (a folder named outright lists every file below it: the other
# test), never ends in '**' (glob lists folders and skips hidden files there; the rule lists
# every file below, as a folder does) and never holds '**/**' (glob repeats files)
patterns = st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=3).filter(
    lambda parts: parts[-1] != "**" and "**/**" not in "/".join(parts)
    and any(set(part) & set("*?[") for part in parts))


def _build(root: str, files: list[tuple]) -> None:
    """The files, less those that would need a file and a folder of one name."""
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    folders = {f[:i] for f in files for i in range(1, len(f))}
    for parts in files:
        if parts in folders:
            continue
        path = os.path.join(root, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("/".join(parts))


def _listing_order(paths: list[str]) -> list[str]:
    return sorted(paths, key=lambda p: p.split(os.sep))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=paths, parts=patterns)
# the cases each rule is about: '**' skips hidden folders, '.*' matches hidden names but never
# the job marker, '[[]' names a '['
@example(files=[(".h", "a"), ("b", "a"), ("a",)], parts=["**", "a"])
@example(files=[("a", ".parallelrun"), ("a", ".h")], parts=["a", ".*"])
@example(files=[("[x]",), ("x1",)], parts=["[[]x]"])
@example(files=[(".h",)], parts=[".h", "a", "*"])     # a pattern through a file lists nothing
def test_a_pattern_lists_what_glob_matches_in_listing_order(tmp_path_factory, files, parts):
    root = str(tmp_path_factory.getbasetemp() / "globbing-tree")
    _build(root, files)
    pattern = os.path.join(root, *parts)
    listed = list(iter_local_files(pattern))
    reference = [p for p in glob.glob(pattern, recursive=True)
                 if os.path.isfile(p) and os.path.basename(p) != ".parallelrun"]
    assert sorted(listed) == sorted(set(reference)), pattern
    assert len(set(listed)) == len(listed)
    # folders sorted by name, entered where their name falls; only '**' matching a file both
    # here and deeper down (a/** /x) may list a deeper file first, as the pattern's order says
    if "**" not in parts:
        assert listed == _listing_order(listed)
    # the same engine over fsspec's local filesystem names the same files in the same order
    through_fsspec = [u[len("file://"):] for u in iter_remote_files("file://" + pattern)]
    assert through_fsspec == listed, pattern


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=paths)
def test_a_folder_lists_every_file_below_it_but_the_job_marker(tmp_path_factory, files):
    root = str(tmp_path_factory.getbasetemp() / "globbing-folder")
    _build(root, files)
    listed = list(iter_local_files(root + "/"))
    expected = [os.path.join(folder, name) for folder, _, names in os.walk(root)
                for name in names if name != ".parallelrun"]
    assert listed == _listing_order(expected)
    assert [u[len("file://"):] for u in iter_remote_files("file://" + root)] == listed


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=paths, parts=st.one_of(patterns, st.lists(st.sampled_from(NAMES), max_size=2)),
       own=st.lists(st.sampled_from(NAMES), max_size=2))
@example(files=[("a", "b"), ("b",)], parts=[], own=[])            # the output is the input
@example(files=[("a", "b"), ("b",)], parts=["*"], own=[])         # a glob in the output
@example(files=[("a", "b.txt"), ("b.txt",)], parts=["**", "*.txt"], own=["a"])
def test_the_jobs_own_folder_is_never_listed_and_a_listing_from_it_is_refused(
        tmp_path_factory, files, parts, own):
    root = str(tmp_path_factory.getbasetemp() / "globbing-own")
    _build(root, files)
    spec = os.path.join(root, *parts)
    folder = os.path.join(root, *own)
    everything = list(iter_local_files(spec))
    assume(not os.path.isfile(folder))     # a job's output folder is a folder, or not yet made
    start = globbing.listing_root(spec, os.sep)
    named_outright = start == spec and not os.path.isdir(spec)   # a file: listed wherever it is
    refused = start == folder and not named_outright
    for listing in (lambda: list(iter_local_files(spec, exclude=[folder])),
                    lambda: [u[len("file://"):] for u in
                             iter_remote_files("file://" + spec, exclude=["file://" + folder])]):
        if refused:
            with pytest.raises(DataError, match="the job's own output or log folder"):
                listing()
        else:
            # left out: what lies in the folder where the listing would enter it (an input
            # inside the output folder is listed whole)
            entered = (folder + os.sep).startswith(start + os.sep)
            assert listing() == [p for p in everything if named_outright or not entered
                                 or not p.startswith(folder + os.sep)]
    # asked before any listing (of inputs that exist: run_job checks that first), the same
    if not os.path.exists(start):
        return
    if refused:
        with pytest.raises(DataError):
            check_outside(spec, [folder])
        with pytest.raises(DataError):
            check_remote_outside("file://" + spec, ["file://" + folder])
    else:
        check_outside(spec, [folder])
        check_remote_outside("file://" + spec, ["file://" + folder])


@settings(max_examples=300, deadline=None)
@given(part=st.text(alphabet="ab-z!*?[]^\\.", min_size=1, max_size=7),
       name=st.text(alphabet="ab-z!^[]\\.", max_size=5))
@example(part="*[!a]*", name="b")       # a negated set does not match the '/'
@example(part="[z-a]x", name="x")       # a reversed range matches nothing, as in fnmatch
@example(part="[!]]", name="]")
def test_a_pattern_matched_against_whole_paths_reads_wildcards_as_listing_does(part, name):
    # partition patterns are matched against paths, not listed: the same wildcards, never
    # crossing a '/'
    regex = re.compile(fragment_regex(part))
    assert (regex.fullmatch(name) is not None) == (re.fullmatch(fnmatch.translate(part), name)
                                                   is not None), (part, name)
    assert regex.fullmatch(f"{name}/{name}") is None or "/" in part or "**" in part
