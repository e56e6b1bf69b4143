"""Which strings are URLs and which are local paths: the one rule every layer asks.

The rule (hand-written because no library states it: fsspec's ``split_protocol`` takes anything
before ``://`` as a protocol, ``data/a://b`` included):

* A **URL** starts with ``scheme://``, where ``scheme`` is an RFC 3986 scheme (a letter, then
  letters, digits, ``+``, ``-`` or ``.``) of at least two characters. Anything else is a local
  path, ``data/a://b`` and ``my data://x`` included.
* **Windows-like paths** are local: ``C:\\data``, ``C:/data`` hold no ``://``, and a
  one-letter scheme is a drive (``C://data``), as fsspec also reads it.
* ``file://`` (and fsspec's ``local://``) URLs are **local**: ``file:///data/x`` is the path
  ``/data/x`` (:func:`local_path`). Every other scheme is **remote** (``az://``, ``abfs://``,
  ``s3://``, ``gs://``, ``https://``, ``azureml://``...), read through fsspec.
* fsspec's chained URLs (``simplecache::s3://...``) are not URLs here.
* Only ``str`` (or ``os.PathLike``, always local) values are classified; schemes are compared
  without regard to case.

Example::

    is_remote("az://data/x.png")        # True
    is_remote("file:///tmp/x.png")      # False (but is_url: True)
    split_url("s3://bucket/key")        # ("s3", "bucket/key")
    split_url("images/x.png")           # ("file", "images/x.png")
"""

from __future__ import annotations

import os
import re

from parallelrun.errors import DataError

#: schemes whose URLs name files on this machine
LOCAL_SCHEMES = frozenset({"file", "local"})
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")


def scheme_of(text: object) -> str | None:
    """The scheme of a URL as written (``az`` for ``az://c/x``); None for a local path."""
    if not isinstance(text, str):
        return None  # os.PathLike values and others are local paths
    match = _URL.match(text)
    return match.group(1) if match else None


def is_url(text: object) -> bool:
    """True for ``scheme://...`` (``file://`` included); False for local paths."""
    return scheme_of(text) is not None


def is_remote(text: object) -> bool:
    """True for a URL of remote storage: any scheme but ``file``/``local``."""
    scheme = scheme_of(text)
    return scheme is not None and scheme.lower() not in LOCAL_SCHEMES


def split_url(text: str) -> tuple[str, str]:
    """``az://container/a/b`` -> (``az``, ``container/a/b``); a local path is ``file``'s
    (a local datastore goes through the same calls as a remote one); the scheme in lower case,
    as fsspec's registry knows it."""
    scheme = scheme_of(text)
    if scheme is None:
        return "file", os.fspath(text)
    return scheme.lower(), text[len(scheme) + 3:]


def local_path(text: str | os.PathLike) -> str:
    """The local path a string names: ``file:///tmp/x`` -> ``/tmp/x``; a path as it is.

    Raises :class:`~parallelrun.errors.DataError` for a remote URL.
    """
    if is_remote(text):
        raise DataError(f"{text!r} is a remote URL, not a local path; open it through fsspec "
                        "(parallelrun.data.remote.filesystem)")
    return split_url(text)[1] if is_url(text) else os.fspath(text)
