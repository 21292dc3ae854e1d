"""Prints, as JSON, every data file of an icesat2 dataset (relative path)
with its rows per row group, read with pyarrow."""

import json
import pathlib
import sys

import pyarrow.parquet as pq

root = pathlib.Path(sys.argv[1])
layout = {}
for path in sorted(root.rglob("*.parquet")):
    relative = path.relative_to(root).as_posix()
    if any(part.startswith(("_", ".")) for part in relative.split("/")):
        continue
    metadata = pq.ParquetFile(path).metadata
    layout[relative] = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
print(json.dumps(layout))
