"""Model archives are safe on every Python parallelrun allows: its own check refuses links that
leave the model's folder through a chain of the archive's links, with or without the standard
library's extraction filter, and extraction stops at limits on total size and entry count."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from parallelrun import ConfigurationError, Model, Workspace
from parallelrun.workspace import models
from parallelrun.workspace.models import UnsafeArchiveError


@pytest.fixture
def ws(tmp_path):
    return Workspace.create("ws", path=tmp_path / "ws")


@pytest.fixture(params=["with the tar filter", "without the tar filter"])
def tar_filter(request, monkeypatch):
    """Each test twice: as on a recent Python, and as on one whose tarfile has no extraction
    filters (parallelrun's fallback path), where only parallelrun's own check protects."""
    if request.param == "without the tar filter":
        monkeypatch.delattr(tarfile, "data_filter")
    return request.param


def _archive(path, entries):
    """entries: (name, kind, data_or_link[, mode]); kind 'file', 'symlink', 'hardlink', 'dir'."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, value, *mode in entries:
            info = tarfile.TarInfo(name)
            if mode:
                info.mode = mode[0]
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
                continue
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "dir": tarfile.DIRTYPE}[kind]
            if kind == "dir":
                info.mode = 0o755
            if value:
                info.linkname = value
            tar.addfile(info)
    return path


def _assert_nothing_registered(ws, tmp_path):
    assert Model.list(ws) == []
    assert not os.path.exists(os.path.join(ws.model_store, "evil"))
    assert os.listdir(os.path.join(ws.model_store, ".staging")) == []
    assert sorted(os.listdir(tmp_path)) == ["evil.tar.gz", "ws"]  # nothing landed beside them


DEEP = [("a/", "dir", None), ("a/b/", "dir", None), ("a/b/c/", "dir", None),
        ("a/b/c/e/", "dir", None)]


@pytest.mark.parametrize("entries, bad", [
    # s points at the folder's top (inside); t's target is lexically inside (a/b) but, s being a
    # link, lands three levels above the folder
    (DEEP + [("a/b/c/e/s", "symlink", "../../../.."), ("t", "symlink", "a/b/c/e/s/../../.."),
             ("t/evil.txt", "file", b"x")], "'t'"),
    # the same through a hard link: its name resolves through s
    (DEEP + [("a/b/c/e/s", "symlink", "../../../.."),
             ("h", "hardlink", "a/b/c/e/s/../outside.txt")], "'h'"),
    # a file written through a link that only a chain of links takes out
    ([("up", "symlink", "."), ("a/", "dir", None), ("a/s", "symlink", "../up/.."),
      ("a/s/evil.txt", "file", b"x")], "'a/s"),
    # a hard link to anything but a file of the archive (here a folder)
    ([("d/", "dir", None), ("d/e/", "dir", None), ("d/e/h", "hardlink", "d")],
     "'d/e/h' is a hard link to 'd', which is not a file of the archive"),
    # one name as a folder and as a link: what lands depends on the order
    ([("p/", "dir", None), ("p", "symlink", "."), ("p/x.txt", "file", b"x")],
     "'p' is a symbolic link and another entry of the same name"),
])
def test_links_leaving_the_folder_through_other_links_are_refused(ws, tmp_path, tar_filter,
                                                                   entries, bad):
    archive = _archive(tmp_path / "evil.tar.gz", entries)
    with pytest.raises(UnsafeArchiveError, match=f"refused, nothing was extracted: entry {bad}"):
        Model.register(ws, str(archive), "evil")
    _assert_nothing_registered(ws, tmp_path)


def test_links_that_stay_inside_are_extracted_safely_without_the_filter(ws, tmp_path,
                                                                        tar_filter):
    archive = _archive(tmp_path / "model.tar.gz", DEEP + [
        ("a/b/c/e/top", "symlink", "../../../.."),          # the folder's top, inside
        ("weights/", "dir", None),
        ("weights/w.bin", "file", b"w" * 10),
        ("run.sh", "file", b"#!/bin/sh\n", 0o6777),         # set-uid and world-writable
        ("current", "symlink", "a/b/c/e/top/weights"),       # a chain that stays inside
        ("copy.bin", "hardlink", "current/w.bin"),
    ])
    model = Model.register(ws, str(archive), "fine")
    assert open(os.path.join(model.path, "current", "w.bin"), "rb").read() == b"w" * 10
    assert open(os.path.join(model.path, "copy.bin"), "rb").read() == b"w" * 10
    mode = os.stat(os.path.join(model.path, "run.sh")).st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH) and mode & stat.S_IXUSR


def test_archives_beyond_the_size_limit_are_refused_until_the_limit_is_raised(
        ws, tmp_path, monkeypatch):
    archive = _archive(tmp_path / "evil.tar.gz", [("zeros.bin", "file", bytes(2 * 1024 ** 2))])
    assert os.path.getsize(archive) < 20_000                # 2 MiB of zeros, a few KB packed
    monkeypatch.setattr(models, "MAX_ARCHIVE_BYTES", 1024 ** 2)
    with pytest.raises(UnsafeArchiveError, match=r"more than 1,048,576 bytes once extracted.*"
                                                 r"PARALLELRUN_MAX_ARCHIVE_BYTES="):
        Model.register(ws, str(archive), "evil")
    _assert_nothing_registered(ws, tmp_path)
    monkeypatch.setenv("PARALLELRUN_MAX_ARCHIVE_BYTES", str(4 * 1024 ** 2))
    model = Model.register(ws, str(archive), "zeros")
    assert model.total_bytes == 2 * 1024 ** 2
    monkeypatch.setenv("PARALLELRUN_MAX_ARCHIVE_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="PARALLELRUN_MAX_ARCHIVE_BYTES='lots'"):
        Model.register(ws, str(archive), "zeros")


def test_the_default_size_limit_is_checked_on_headers_before_any_data_is_read(ws, tmp_path):
    # a header declaring 30 GiB, and no data behind it: refused on the header alone
    header = tarfile.TarInfo("huge.bin")
    header.size = 30 * 1024 ** 3
    (tmp_path / "evil.tar.gz").write_bytes(header.tobuf())
    with pytest.raises(UnsafeArchiveError, match="MAX_ARCHIVE_BYTES"):
        Model.register(ws, str(tmp_path / "evil.tar.gz"), "evil")
    _assert_nothing_registered(ws, tmp_path)


def test_archives_beyond_the_entry_limit_are_refused_until_the_limit_is_raised(
        ws, tmp_path, monkeypatch):
    archive = _archive(tmp_path / "evil.tar.gz", [(f"f{i}.txt", "file", b"1") for i in range(11)])
    monkeypatch.setattr(models, "MAX_ARCHIVE_ENTRIES", 10)
    with pytest.raises(UnsafeArchiveError, match=r"more than 10 entries.*"
                                                 r"PARALLELRUN_MAX_ARCHIVE_ENTRIES=100"):
        Model.register(ws, str(archive), "evil")
    _assert_nothing_registered(ws, tmp_path)
    monkeypatch.setenv("PARALLELRUN_MAX_ARCHIVE_ENTRIES", "11")
    assert Model.register(ws, str(archive), "many").file_count == 11
