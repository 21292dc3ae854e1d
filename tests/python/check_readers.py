"""Opens an icesat2 dataset with geopandas, DuckDB and pyarrow.dataset and
checks the columns and types of PRODUCT.md. Prints the row count.

usage: check_readers.py DATASET VARIABLE_COLUMN=TYPE ... [--partitions year,month]
"""

import glob
import json
import sys

import duckdb
import geopandas as gpd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

DERIVED = [
    ("granule", pa.string()),
    ("beam", pa.string()),
    ("beam_strength", pa.string()),
    ("spot", pa.uint8()),
    ("rgt", pa.uint16()),
    ("cycle", pa.uint8()),
    ("region", pa.uint8()),
    ("segment_index", pa.uint32()),
    ("time", pa.timestamp("us", tz="UTC")),
    ("latitude", pa.float64()),
    ("longitude", pa.float64()),
]

TYPES = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
}


def parse_type(text):
    if text.startswith("list<"):
        return pa.list_(pa.field("item", parse_type(text[5:-1])))
    if text.startswith("fixed"):
        inner, width = text[6:-1].split(",")
        return pa.list_(pa.field("item", parse_type(inner)), int(width))
    return TYPES[text]


def main():
    dataset = sys.argv[1]
    partitions = []
    expected_variables = []
    for arg in sys.argv[2:]:
        if arg.startswith("--partitions="):
            partitions = [p for p in arg.split("=", 1)[1].split(",") if p]
        else:
            name, kind = arg.split("=", 1)
            expected_variables.append((name, parse_type(kind)))
    files = sorted(glob.glob(f"{dataset}/**/*.parquet", recursive=True))
    if not files:
        sys.exit("no parquet files")
    for path in files:
        if any(part.startswith(("_", ".")) for part in path[len(dataset):].split("/") if part):
            sys.exit(f"hidden file visible to readers: {path}")
    expected = [(n, t) for n, t in DERIVED if n not in partitions] + expected_variables
    for path in files:
        schema = pq.read_schema(path)
        names = schema.names
        want = [n for n, _ in expected] + ["geometry", "bbox"]
        if names != want:
            sys.exit(f"{path}: columns {names}, expected {want}")
        for name, kind in expected:
            if schema.field(name).type != kind:
                sys.exit(f"{path}: {name} is {schema.field(name).type}, expected {kind}")
        if schema.field("geometry").type != pa.binary():
            sys.exit(f"{path}: geometry is {schema.field('geometry').type}")
        geo = json.loads(pq.ParquetFile(path).metadata.metadata[b"geo"])
        column = geo["columns"]["geometry"]
        if geo["version"] != "1.1.0" or column["encoding"] != "WKB" or column["geometry_types"] != ["Point"]:
            sys.exit(f"{path}: geo metadata {geo}")
        if "covering" not in column or len(column["bbox"]) != 4:
            sys.exit(f"{path}: no bbox covering: {geo}")
        frame = gpd.read_parquet(path)
        if frame.crs is None or frame.crs.to_string() != "OGC:CRS84":
            sys.exit(f"{path}: crs {frame.crs}")
        if not (frame.geometry.x == frame["longitude"]).all() or not (frame.geometry.y == frame["latitude"]).all():
            sys.exit(f"{path}: geometry differs from longitude/latitude")
        # The covering of a point is the point; its leaves are written as
        # copies of longitude's and latitude's pages: check values and the
        # statistics readers prune with, row group by row group.
        table = pq.read_table(path)
        if table["geometry"].null_count or table["bbox"].null_count:
            sys.exit(f"{path}: null geometry or bbox")
        bbox = table["bbox"].combine_chunks()
        for leaf, column in [("xmin", "longitude"), ("xmax", "longitude"), ("ymin", "latitude"), ("ymax", "latitude")]:
            if not bbox.field(leaf).equals(table[column].combine_chunks()):
                sys.exit(f"{path}: bbox.{leaf} differs from {column}")
        metadata = pq.ParquetFile(path).metadata
        for index in range(metadata.num_row_groups):
            group = metadata.row_group(index)
            chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
            for leaf, column in [("xmin", "longitude"), ("xmax", "longitude"), ("ymin", "latitude"), ("ymax", "latitude")]:
                a, b = chunks[f"bbox.{leaf}"], chunks[column]
                if (a.statistics.min, a.statistics.max, a.num_values) != (b.statistics.min, b.statistics.max, b.num_values):
                    sys.exit(f"{path}: row group {index}: bbox.{leaf} statistics differ from {column}'s")
        compression = pq.ParquetFile(path).metadata.row_group(0).column(0).compression
        if compression != "ZSTD":
            sys.exit(f"{path}: compression {compression}")
        # Provenance: the tool, the run, the manifest, the granules held.
        provenance = json.loads(pq.ParquetFile(path).metadata.metadata[b"icesat2"])
        if provenance["tool"] != "icesat2" or not provenance["run_id"] or len(provenance["manifest_sha256"]) != 64:
            sys.exit(f"{path}: provenance {provenance}")
        held = set(pq.read_table(path, columns=["granule"])["granule"].to_pylist())
        if set(provenance["granules"]) != held:
            sys.exit(f"{path}: provenance names {provenance['granules']}, the rows {sorted(held)}")
    table = ds.dataset(dataset, format="parquet", partitioning="hive").to_table()
    for name in partitions:
        if name not in table.column_names:
            sys.exit(f"partition column {name} not visible through hive partitioning")
    # The whole folder, as users open it: geopandas, and a pyarrow dataset
    # made into a GeoDataFrame (both need `geo` in the stored Arrow schema).
    whole = gpd.read_parquet(dataset)
    if len(whole) != table.num_rows or whole.crs is None or whole.crs.to_string() != "OGC:CRS84":
        sys.exit(f"geopandas on the folder: {len(whole)} rows, crs {whole.crs}")
    if not (whole.geometry.x == whole["longitude"]).all():
        sys.exit("geopandas on the folder: geometry differs from longitude")
    from_arrow = gpd.GeoDataFrame.from_arrow(ds.dataset(dataset, partitioning="hive").to_table())
    if len(from_arrow) != table.num_rows or from_arrow.crs is None or from_arrow.crs.to_string() != "OGC:CRS84":
        sys.exit(f"GeoDataFrame.from_arrow: {len(from_arrow)} rows, crs {from_arrow.crs}")
    count = duckdb.sql(f"select count(*) from read_parquet('{dataset}/**/*.parquet', hive_partitioning = true)").fetchall()[0][0]
    if count != table.num_rows:
        sys.exit(f"duckdb sees {count} rows, pyarrow {table.num_rows}")
    # A bbox filter (what spatial readers push down) keeps the rows the
    # coordinates do.
    query = f"from read_parquet('{dataset}/**/*.parquet', hive_partitioning = true)"
    if table.num_rows:
        middle = duckdb.sql(f"select median(longitude), median(latitude) {query}").fetchall()[0]
        by_bbox = duckdb.sql(f"select count(*) {query} where bbox.xmin > {middle[0]} and bbox.ymax < {middle[1]}").fetchall()[0][0]
        by_point = duckdb.sql(f"select count(*) {query} where longitude > {middle[0]} and latitude < {middle[1]}").fetchall()[0][0]
        if by_bbox != by_point:
            sys.exit(f"duckdb: a bbox filter keeps {by_bbox} rows, the same filter on the coordinates {by_point}")
    print(table.num_rows)


if __name__ == "__main__":
    main()
