"""Times the five aggregation queries of tests/it/query.rs with `icesat2 query`
and with DuckDB on the same dataset, in the same run; prints medians of 5 and
the ratio. Our time includes process start and table registration (the CLI
as a user runs it); DuckDB's is a query on an open connection.

usage: python benches/query.py ICESAT2_BINARY DATASET
"""

import statistics
import subprocess
import sys
import time

import duckdb

binary, dataset = sys.argv[1], sys.argv[2]
QUERIES = [
    ("partitions",
     "select year, month, count(*) as n, avg(h_canopy) as canopy from segments group by year, month order by year, month",
     "select year, month, count(*) as n, avg(h_canopy) as canopy from segments group by year, month order by year, month"),
    ("grid cells",
     "select grid_cell(longitude, latitude, 0.1) as cell, count(*) as n, avg(h_canopy) as canopy from segments group by 1 order by 1",
     "select cast(floor((latitude + 90) / 0.1) as bigint) * cast(ceil(360 / 0.1) as bigint) + cast(floor((longitude + 180) / 0.1) as bigint) as cell, count(*) as n, avg(h_canopy) as canopy from segments group by 1 order by 1"),
    ("beams",
     "select beam, beam_strength, count(*) as n, sum(case when night_flag = 1 then 1 else 0 end) as night, avg(h_te_best_fit) as terrain from segments group by beam, beam_strength order by beam",
     "select beam, beam_strength, count(*) as n, sum(case when night_flag = 1 then 1 else 0 end) as night, avg(h_te_best_fit) as terrain from segments group by beam, beam_strength order by beam"),
    ("within polygon",
     "select count(*) as n, avg(h_canopy) as canopy from segments where ST_Within(geometry, ST_GeomFromText('POLYGON((-180 -90, 0 -90, 0 90, -180 90, -180 -90))'))",
     "select count(*) as n, avg(h_canopy) as canopy from segments where longitude > -180 and longitude < 0 and latitude > -90 and latitude < 90"),
    ("list columns",
     "select granule, avg(rh(canopy_h_metrics, 50)) as rh50, max(array_length(ph_h)) as most, sum(array_length(ph_h)) as photons from segments group by granule order by granule",
     "select granule, avg(canopy_h_metrics[9]) as rh50, max(len(ph_h)) as most, sum(len(ph_h)) as photons from segments group by granule order by granule"),
]

connection = duckdb.connect()
connection.execute(f"create view segments as select * from read_parquet('{dataset}/**/*.parquet', hive_partitioning = true, hive_types = {{'year': INTEGER, 'month': INTEGER}})")
rows = connection.execute("select count(*) from segments").fetchall()[0][0]
print(f"dataset: {dataset}, {rows} rows")
print(f"{'query':16} {'icesat2 s':>10} {'duckdb s':>10} {'ratio':>7}")
for name, ours, theirs in QUERIES:
    mine, duck = [], []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([binary, "query", dataset, ours, "--format", "json"], check=True, stdout=subprocess.DEVNULL)
        mine.append(time.perf_counter() - start)
        start = time.perf_counter()
        connection.execute(theirs).fetchall()
        duck.append(time.perf_counter() - start)
    a, b = statistics.median(mine), statistics.median(duck)
    print(f"{name:16} {a:10.3f} {b:10.3f} {a / b:7.2f}")
