"""Runs one SQL query with DuckDB over a hive-partitioned dataset registered as `t`;
prints each result row, values separated by tabs."""

import sys

import duckdb

dataset, sql = sys.argv[1], sys.argv[2]
connection = duckdb.connect()
connection.execute(f"create view t as select * from read_parquet('{dataset}/**/*.parquet', hive_partitioning = true)")
for row in connection.execute(sql).fetchall():
    print("\t".join("" if value is None else str(value) for value in row))
