"""Runs one SQL query with DuckDB over a hive-partitioned dataset registered
as `segments`; prints the rows as a JSON list of objects (column name -> value)."""

import json
import sys

import duckdb

dataset, sql = sys.argv[1], sys.argv[2]
connection = duckdb.connect()
connection.execute(
    f"create view segments as select * from read_parquet('{dataset}/**/*.parquet', hive_partitioning = true, hive_types = {{'year': INTEGER, 'month': INTEGER}})"
)
result = connection.execute(sql)
names = [column[0] for column in result.description]
rows = result.fetchall()
print(json.dumps([{name: v if not hasattr(v, "isoformat") else v.isoformat() for name, v in zip(names, row)} for row in rows]))
