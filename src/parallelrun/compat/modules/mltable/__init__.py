"""Stand-in for Azure ML's ``mltable`` package inside parallelrun workers and command nodes (when
``mltable`` itself is not installed there; see :mod:`parallelrun.compat.installed`).

Tables are read by :mod:`parallelrun.data.mltable`, which follows ``mltable`` 1.7's semantics
(row order, partition columns, ``Path`` first, types):

- ``mltable.load(folder)`` (a folder holding an ``MLTable`` file, or ``file://``);
- ``from_delimited_files``, ``from_parquet_files``, ``from_json_lines_files``, ``from_paths``;
- ``MLTable``: ``to_pandas_dataframe()``, ``paths``, ``take``, ``skip``, ``show``, ``filter``,
  ``drop_columns``, ``keep_columns``, ``convert_column_types`` (with ``DataType``),
  ``extract_columns_from_partition_format``, ``take_random_sample``, ``save(folder)``;
- ``DataType``, ``MLTableHeaders``, ``MLTableFileEncoding``.

Each method returns a new table with one more transformation, as ``mltable`` does. The real
package needs ``pyarrow<26``, ``pandas<3`` and a native runtime of ~75 MB, which is why
parallelrun reads tables itself.
"""

from parallelrun.compat.installed import installed_instead, not_in_standin

if not installed_instead(__name__, __file__):
    from mltable.mltable import (  # noqa: F401  (the package's names, as mltable exports them)
        DataType, MLTable, MLTableFileEncoding, MLTableHeaders, from_delimited_files,
        from_json_lines_files, from_parquet_files, from_paths, load,
    )

    __all__ = ["MLTable", "load", "from_delimited_files", "from_parquet_files",
               "from_json_lines_files", "from_paths", "DataType", "MLTableFileEncoding",
               "MLTableHeaders"]

    __getattr__ = not_in_standin("mltable", ", ".join(__all__))
