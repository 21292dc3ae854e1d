"""Exits 1 unless two icesat2 datasets hold the same rows (any order, any
file layout); prints the row count. A third argument lists columns, comma
separated, to leave out of the comparison (say `granule`, where one dataset
was read from a copy of the other's granules under other names)."""

import sys

import pyarrow.compute as pc
import pyarrow.dataset as ds


def rows(path):
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    table = table.drop_columns([c for c in ("bbox",) if c in table.column_names])
    order = [(c, "ascending") for c in ("granule", "beam", "segment_index")]
    return table.sort_by(order)


a, b = rows(sys.argv[1]), rows(sys.argv[2])
ignored = sys.argv[3].split(",") if len(sys.argv) > 3 else []
a = a.drop_columns([c for c in ignored if c in a.column_names])
b = b.drop_columns([c for c in ignored if c in b.column_names])
if a.num_rows != b.num_rows:
    sys.exit(f"{a.num_rows} rows vs {b.num_rows}")
columns = sorted(set(a.column_names) | set(b.column_names))
for column in columns:
    if column not in a.column_names or column not in b.column_names:
        sys.exit(f"column {column} only in one dataset")
    if a.column(column).to_pylist() != b.column(column).to_pylist():
        sys.exit(f"column {column} differs")
print(a.num_rows)
