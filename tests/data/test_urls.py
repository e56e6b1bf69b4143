"""The one URL rule (parallelrun.data.urls), as properties over generated strings: which
strings are URLs, which are remote, what ``file://`` and Windows-like paths are, and that every
URL it accepts is one fsspec splits the same way."""

from __future__ import annotations

import string
from pathlib import PurePosixPath, PureWindowsPath

import pytest
from fsspec.core import split_protocol
from hypothesis import example, given
from hypothesis import strategies as st

from parallelrun import DataError
from parallelrun.data.urls import is_remote, is_url, local_path, scheme_of, split_url

schemes = st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{1,9}", fullmatch=True)
remote_schemes = schemes.filter(lambda s: s.lower() not in ("file", "local"))
rests = st.text(alphabet=string.ascii_letters + string.digits + "/._-*?[] :", max_size=30)
path_text = st.text(alphabet=string.printable, max_size=40)


@given(remote_schemes, rests)
@example("az", "container/a/b.png")
@example("s3", "bucket/key")
@example("abfss", "c@account.dfs.core.windows.net/x")
@example("azureml", "datastores/d/paths/p")
def test_a_scheme_and_a_rest_make_a_remote_url_that_splits_back(scheme, rest):
    url = f"{scheme}://{rest}"
    assert is_url(url) and is_remote(url)
    assert scheme_of(url) == scheme
    assert split_url(url) == (scheme.lower(), rest)


@given(path_text.filter(lambda t: "://" not in t))
@example("data/images/*.png")
@example("/abs/path")
@example("")
def test_text_without_a_scheme_separator_is_a_local_path_of_its_own(text):
    assert not is_url(text) and not is_remote(text) and scheme_of(text) is None
    assert split_url(text) == ("file", text)
    assert local_path(text) == text


@given(st.sampled_from(["file", "FILE", "local"]), rests)
@example("file", "/tmp/data/x.csv")
def test_file_urls_are_local_paths(scheme, rest):
    url = f"{scheme}://{rest}"
    assert is_url(url) and not is_remote(url)
    assert local_path(url) == rest


@given(st.sampled_from(string.ascii_letters), st.sampled_from(["\\", "/", "//", ":/"]), rests)
@example("C", "\\", "data\\images")
@example("c", "//", "data/images")
def test_windows_like_paths_are_local(drive, separator, rest):
    path = f"{drive}:{separator}{rest}"
    assert not is_remote(path) and not is_url(path)
    assert split_url(path) == ("file", path)


@given(rests, st.text(alphabet=" /\\~!@$%^&(),;=", min_size=1, max_size=3), rests)
@example("data", "/", "a")
@example("my", " ", "data")
def test_a_separator_after_a_path_or_a_space_is_not_a_scheme(before, odd, after):
    text = f"{before}{odd}x://{after}"
    # the scheme would hold a character no RFC 3986 scheme has: a folder, not a protocol
    assert not is_url(text) and not is_remote(text)


@given(st.one_of(path_text, st.builds(lambda s, r: f"{s}://{r}", schemes, rests)))
def test_every_url_accepted_is_split_as_fsspec_splits_it(text):
    scheme = scheme_of(text)
    if scheme is None:
        return
    protocol, path = split_protocol(text)
    assert (protocol, path) == (scheme, split_url(text)[1])


@pytest.mark.parametrize("value", [PurePosixPath("data/x"), PureWindowsPath("C:/data"), None, 3,
                                   b"az://c/x"])
def test_only_strings_are_urls(value):
    assert scheme_of(value) is None and not is_url(value) and not is_remote(value)


def test_a_remote_url_has_no_local_path():
    with pytest.raises(DataError, match="'s3://bucket/key' is a remote URL, not a local path"):
        local_path("s3://bucket/key")
