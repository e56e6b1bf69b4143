"""Files on remote storage (``az://`` Azure Blob, ``s3://`` S3, any fsspec URL) as inputs.

Three jobs, all through fsspec (parallelrun adds no storage layer of its own), each in its own
module, with what reaching the storage takes in a fourth; this module gathers their names, so
callers import them from one place (``from parallelrun.data import remote``):

* **Reaching the storage** (``remote_storage``): :func:`filesystem`, the storage-options
  registry (:func:`register_storage_options`: credentials belong to a datastore; a plain URL
  borrows them and is refused when two storage locations share it), and :func:`storage_error`,
  which turns a storage library's exception into a StorageError naming the URL and the fix,
  with secrets hidden (:func:`redact`).
* **Listing** (coordinator, ``remote_listing``): :func:`iter_remote_entries` names the files of
  a folder or glob in the same deterministic order as local listing, one folder listing at a
  time, so planning starts before a big tree is listed.
* **Copying trees** (coordinator, ``remote_trees``): :func:`upload_tree` /
  :func:`download_tree` for outputs and logs staged locally (``parallelrun.engine.staging``).
* **Fetching** (workers, ``remote_cache``): :class:`RemoteFileList` is the payload of a remote
  file mini-batch; its ``load()`` downloads the files into a bounded per-worker cache and
  returns local paths, and its ``prefetch()`` fetches the next mini-batch while the current one
  runs. :func:`sweep_stale_caches` removes the caches of workers that died.

``parallelrun.engine.staging`` sweeps worker caches at the end of a job only when this module
was imported (remote inputs were used), so callers keep importing from here.
"""

from __future__ import annotations

from parallelrun.data.remote_cache import (  # noqa: F401
    RemoteFileList, cache_base, sweep_stale_caches)
# _tag (data/base.py) and _missing_root_error (workspace/storage_kinds.py) are asked here too
from parallelrun.data.remote_listing import (  # noqa: F401
    RemoteFile, _tag, check_remote_outside, iter_remote_entries, iter_remote_files, local_entry)
from parallelrun.data.remote_storage import (  # noqa: F401
    EXTRAS, _missing_root_error, filesystem, forget_storage_options, redact,
    register_storage_options, registered_storage_options, storage_error)
from parallelrun.data.remote_trees import download_tree, upload_tree  # noqa: F401
# the URL rule's owner is data/urls.py; is_remote is also asked here as remote.is_remote
from parallelrun.data.urls import is_remote, split_url  # noqa: F401
