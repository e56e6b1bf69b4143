"""Azure ML's subsetting of a tabular dataset, applied to its rows, and the copies it makes.

``take``, ``skip``, ``keep_columns``, ``drop_columns`` and ``random_split`` only record a step
on a new :class:`~parallelrun.data.tabular.TabularDataset`; :func:`transformed_rows` applies the
steps to the rows read. take/skip/random_split count rows across files, which no single
mini-batch can do, so a job over such a dataset plans :func:`materialised`: its rows written once
to a Parquet file in the cache (keyed by the definition and the files). :func:`partition_by`
writes a partitioned copy to a datastore.

Separate from :mod:`parallelrun.data.tabular` because these read whole datasets into pandas and
write copies, while the dataset class itself only describes and plans; it imports the class
lazily, since the class imports this module.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from parallelrun.data.base import AbstractDataset
from parallelrun.data.files import FileDataset, path_list
from parallelrun.data.tabular_options import column_list
from parallelrun.errors import DataError

if TYPE_CHECKING:
    from parallelrun.data.tabular import TabularDataset


def transformed_rows(dataset: "TabularDataset", frame):
    """``frame`` (every row of ``dataset``, in plan order) after its subsetting steps."""
    import numpy as np

    for step in dataset.transforms:
        kind = step[0]
        if kind == "take":
            frame = frame.iloc[:step[1]]
        elif kind == "skip":
            frame = frame.iloc[step[1]:]
        elif kind in ("keep_columns", "drop_columns"):
            missing = [c for c in step[1] if c not in frame.columns]
            if missing:
                raise DataError(f"{kind}: columns {missing} are not in {dataset.describe()} "
                                f"(columns: {list(frame.columns)})")
            frame = (frame[[c for c in frame.columns if c in step[1]]] if kind == "keep_columns"
                     else frame.drop(columns=list(step[1])))
        elif kind == "random_split":
            _, percentage, seed, side = step
            first = np.random.default_rng(seed).random(len(frame)) < percentage
            frame = frame[first if side == 0 else ~first]
        else:
            raise DataError(f"unknown dataset transform {kind!r}")
    return frame.reset_index(drop=True)


def materialised(dataset: "TabularDataset") -> "TabularDataset":
    """``dataset``'s rows as one Parquet file, written once per definition and files, and the
    dataset of that file."""
    import hashlib
    import json

    from parallelrun.data import remote
    from parallelrun.data.tabular import TabularDataset  # the class imports this module

    untransformed = copy.copy(dataset)
    untransformed.transforms = ()
    digest = hashlib.sha256(json.dumps(
        [dataset.to_record(), [tuple(e) for e in untransformed.file_entries()]],
        sort_keys=True, default=str).encode()).hexdigest()[:24]
    folder = os.path.join(remote.cache_base(), "transformed-datasets")
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, f"{digest}.parquet")
    if not os.path.exists(target):
        tmp = f"{target}.{os.getpid()}.tmp"
        dataset.to_pandas_dataframe().to_parquet(tmp, index=False)
        os.replace(tmp, target)
    return TabularDataset.from_parquet_files(target, validate=False)


def partition_by(dataset: "TabularDataset", partition_keys: list[str], target: Any,
                 name: str | None = None,
                 partition_as_file_dataset: bool = False) -> AbstractDataset:
    """What :meth:`TabularDataset.partition_by` does: ``dataset``'s rows copied to ``target`` as
    Parquet files, one folder per key combination, and the dataset of that copy."""
    import uuid

    from parallelrun.data.tabular import TabularDataset  # the class imports this module

    keys = column_list("partition_keys", partition_keys)
    destination = path_list(target, "partition_by")
    if len(destination) != 1 or getattr(destination[0], "url", None) is None:
        raise DataError(f"target={target!r} is not allowed: a (datastore, 'folder') tuple or "
                        "a datastore path, e.g. (ws.get_default_datastore(), 'partitioned')")
    frame = dataset.to_pandas_dataframe()
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise DataError(f"partition_keys {missing} are not columns of {dataset.describe()} "
                        f"(columns: {list(frame.columns)})")
    data_path = destination[0]
    folder = f"{getattr(data_path, 'path_on_datastore', '').strip('/')}/{uuid.uuid4().hex}"
    folder = folder.lstrip("/")
    staging = tempfile.mkdtemp(prefix="parallelrun-partition-")
    try:
        for combo, rows in frame.groupby(list(keys), sort=True, dropna=False):
            combo = combo if isinstance(combo, tuple) else (combo,)
            part_dir = os.path.join(staging, *[_folder_value(v) for v in combo])
            os.makedirs(part_dir, exist_ok=True)
            rows.drop(columns=list(keys)).to_parquet(os.path.join(part_dir, "part-00000.parquet"),
                                                     index=False)
        store = data_path.datastore
        from parallelrun.data import remote

        remote.upload_tree(staging, store.path(folder).url, store.storage_options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    glob = "/".join([folder] + ["*"] * len(keys) + ["*.parquet"])
    pattern = "/".join([folder] + ["{%s}" % k for k in keys] + ["*.parquet"])
    if partition_as_file_dataset:
        result: AbstractDataset = FileDataset.from_files((store, glob), validate=False,
                                                         partition_format=pattern)
    else:
        result = TabularDataset.from_parquet_files((store, glob), validate=False,
                                                   partition_format=pattern)
    if name is not None:
        workspace = getattr(store, "workspace", None)
        if workspace is None:
            raise DataError(f"name={name!r}: the target datastore has no workspace to "
                            "register the dataset in; register it with .register(ws, name)")
        result = result.register(workspace, name, create_new_version=True)
    return result


def _folder_value(value: Any) -> str:
    text = "__null__" if value is None or (isinstance(value, float) and value != value) else str(value)
    if not text or "/" in text or os.sep in text or text in (".", ".."):
        raise DataError(f"partition value {value!r} cannot be a folder name; partition by a "
                        "column without '/' in its values")
    return text
