"""End-to-end benchmark: `icesat2 run` beside the Python ways of doing the same job.

Methods, each on the same local granules, region and variables:

- icesat2: the real binary, `icesat2 run MANIFEST --fresh` (GeoParquet dataset);
- notebook: the notebook's method, per granule and beam: h5py reads whole arrays, a
  geopandas GeoDataFrame of points and `within`, pandas column assignment, one CSV
  per granule;
- skilled: what a skilled Python user writes instead: h5py reads the coordinates,
  `shapely.contains_xy` against the prepared region, then only the rows between
  the first and last kept one of each variable, pyarrow table with a WKB geometry
  column, one zstd Parquet file;
- floor: the time to inflate only the compressed chunks the subset needs (every
  chunk of latitude and longitude, and the chunks of time and the variables that
  hold kept rows), on all cores, each inflate installed (libdeflate,
  zlib-ng, ISA-L, zlib); the fastest is the floor; the raw chunks are read before the clock starts.

Every method runs in its own process (interpreter start and imports count, as
they do for a user), `--repeats` times; the median is reported. The rows are
checked: the same (granule, beam, segment index) keys and the same values in
every output. Usage: see benches/e2e.sh.
"""

import argparse
import concurrent.futures
import glob
import json
import os
import statistics
import subprocess
import sys
import time

BEAMS = ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"]


def granule_files(folder):
    return sorted(glob.glob(os.path.join(folder, "*.h5")))


def load_region(path):
    import shapely
    from shapely.geometry import shape

    with open(path) as f:
        region = shape(json.load(f))
    shapely.prepare(region)
    return region


# --- the notebook's method -------------------------------------------------


def notebook(args):
    import geopandas as gpd
    import h5py
    import pandas as pd

    region = load_region(args.region)
    os.makedirs(args.out, exist_ok=True)
    for path in granule_files(args.granules):
        name = os.path.basename(path)
        frames = []
        with h5py.File(path, "r") as f:
            for beam in BEAMS:
                if f"{beam}/land_segments" not in f:
                    continue
                land = f[f"{beam}/land_segments"]
                df = pd.DataFrame({"latitude": land["latitude"][:], "longitude": land["longitude"][:]})
                gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.longitude, df.latitude), crs="EPSG:4326")
                inside = gdf.within(region)
                gdf = gdf[inside]
                if len(gdf) == 0:
                    continue
                mask = inside.to_numpy()
                gdf["granule"] = name
                gdf["beam"] = beam
                gdf["segment_index"] = gdf.index
                gdf["delta_time"] = land["delta_time"][:][mask]
                for variable in args.variables:
                    gdf[variable.rsplit("/", 1)[-1]] = f[beam][variable][:][mask]
                frames.append(gdf)
        if frames:
            table = pd.concat(frames)
            table.drop(columns="geometry").to_csv(os.path.join(args.out, name + ".csv"), index=False)


# --- what a skilled Python user writes -------------------------------------


def skilled(args):
    import h5py
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    region = load_region(args.region)
    names = [v.rsplit("/", 1)[-1] for v in args.variables]
    tables = []
    for path in granule_files(args.granules):
        name = os.path.basename(path)
        with h5py.File(path, "r") as f:
            for beam in BEAMS:
                if f"{beam}/land_segments" not in f:
                    continue
                land = f[f"{beam}/land_segments"]
                lat = land["latitude"][:].astype(np.float64)
                lon = land["longitude"][:].astype(np.float64)
                index = np.flatnonzero(shapely.contains_xy(region, lon, lat))
                if len(index) == 0:
                    continue
                lo, hi = int(index[0]), int(index[-1]) + 1
                local = index - lo
                columns = {
                    "granule": pa.array([name] * len(index)),
                    "beam": pa.array([beam] * len(index)),
                    "segment_index": pa.array(index.astype(np.int64)),
                    "time": pa.array(
                        np.round((land["delta_time"][lo:hi][local] + 1514764800.0) * 1e6).astype("datetime64[us]")
                    ),
                    "latitude": pa.array(lat[index]),
                    "longitude": pa.array(lon[index]),
                    "geometry": pa.array(shapely.to_wkb(shapely.points(lon[index], lat[index]))),
                }
                for variable, column in zip(args.variables, names):
                    dataset = f[beam][variable]
                    values = dataset[lo:hi][local]
                    fill = dataset.attrs.get("_FillValue")
                    mask = values == fill if fill is not None else None
                    columns[column] = pa.array(values, mask=mask)
                tables.append(pa.table(columns))
    if tables:
        pq.write_table(pa.concat_tables(tables), args.out, compression="zstd")


# --- the inflate floor -----------------------------------------------------


def inflaters():
    """The inflate functions installed: each takes (raw chunk, decoded size)."""
    found = []
    try:
        import deflate

        found.append(("libdeflate", lambda chunk: deflate.zlib_decompress(chunk[0], chunk[1])))
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng

        found.append(("zlib-ng", lambda chunk: zlib_ng.decompress(chunk[0])))
    except ImportError:
        pass
    try:
        from isal import isal_zlib

        found.append(("isa-l", lambda chunk: isal_zlib.decompress(chunk[0])))
    except ImportError:
        pass
    import zlib

    found.append(("zlib", lambda chunk: zlib.decompress(chunk[0])))
    return found


def needed_chunks(args):
    """Raw bytes of every chunk the subset needs, with its decoded size."""
    import h5py
    import numpy as np
    import shapely

    region = load_region(args.region)
    chunks = []

    def take(dataset, rows=None):
        dsid = dataset.id
        chunk_rows = dataset.chunks[0]
        chunk_bytes = int(np.prod(dataset.chunks)) * dataset.dtype.itemsize
        for i in range(dsid.get_num_chunks()):
            info = dsid.get_chunk_info(i)
            first = info.chunk_offset[0]
            if rows is not None and not np.any((rows >= first) & (rows < first + chunk_rows)):
                continue
            mask, raw = dsid.read_direct_chunk(info.chunk_offset)
            chunks.append((raw, chunk_bytes))

    for path in granule_files(args.granules):
        with h5py.File(path, "r") as f:
            for beam in BEAMS:
                if f"{beam}/land_segments" not in f:
                    continue
                land = f[f"{beam}/land_segments"]
                lat = land["latitude"][:].astype(np.float64)
                lon = land["longitude"][:].astype(np.float64)
                take(land["latitude"])
                take(land["longitude"])
                rows = np.flatnonzero(shapely.contains_xy(region, lon, lat))
                if len(rows) == 0:
                    continue
                for variable in ["land_segments/delta_time"] + args.variables:
                    take(f[beam][variable], rows)
    return chunks


def floor(args):
    chunks = needed_chunks(args)
    threads = os.cpu_count()
    results = {}
    for name, inflate in inflaters():
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                inflated = sum(len(out) for out in pool.map(inflate, chunks))
            seconds.append(time.perf_counter() - start)
        results[name] = {"seconds": statistics.median(seconds), "inflated_bytes": inflated}
    print(
        json.dumps(
            {
                "chunks": len(chunks),
                "compressed_bytes": sum(len(raw) for raw, _ in chunks),
                "threads": threads,
                "inflate": results,
            }
        )
    )


# --- the rows ----------------------------------------------------------------


def rows_of(args):
    """Keys and values of the three outputs; exits when they differ."""
    import numpy as np
    import pandas as pd
    import pyarrow.dataset as ds

    names = [v.rsplit("/", 1)[-1] for v in args.variables]
    keys = ["granule", "beam", "segment_index"]

    import h5py

    fills = {}
    with h5py.File(granule_files(args.granules)[0], "r") as f:
        for variable, column in zip(args.variables, names):
            fill = f[f"gt1l/{variable}"].attrs.get("_FillValue")
            fills[column] = None if fill is None else float(np.asarray(fill).reshape(-1)[0])

    def normal(frame):
        """Fill as null (the notebook keeps it), values as float32."""
        frame = frame[keys + names].copy()
        for column in names:
            values = frame[column].astype("float64")
            if fills[column] is not None:
                # pandas writes float32 to CSV with 7 significant digits.
                values = values.where(~np.isclose(values, fills[column], rtol=1e-6, atol=0))
            frame[column] = values.astype("float32").astype("float64")
        return frame.sort_values(keys).reset_index(drop=True)

    ours = ds.dataset(args.dataset, format="parquet", partitioning="hive").to_table(columns=keys + names).to_pandas()
    csvs = sorted(glob.glob(os.path.join(args.notebook, "*.csv")))
    notebook = pd.concat([pd.read_csv(p) for p in csvs]) if csvs else pd.DataFrame(columns=keys + names)
    skilled = pd.read_parquet(args.skilled, columns=keys + names) if os.path.exists(args.skilled) else notebook[:0]
    ours, notebook, skilled = normal(ours), normal(notebook), normal(skilled)
    for label, other in [("notebook", notebook), ("skilled", skilled)]:
        if len(other) != len(ours):
            sys.exit(f"rows differ: icesat2 {len(ours)}, {label} {len(other)}")
        for column in keys:
            if not (ours[column].astype(str).to_numpy() == other[column].astype(str).to_numpy()).all():
                sys.exit(f"rows differ: {label} has other {column} keys")
        for column in names:
            a, b = ours[column].to_numpy(), other[column].to_numpy()
            # The notebook's CSV keeps 7 significant digits; the others are exact.
            same = (
                np.allclose(a, b, rtol=1e-6, atol=0, equal_nan=True)
                if label == "notebook"
                else np.array_equal(a, b, equal_nan=True)
            )
            if not same:
                sys.exit(f"values differ: {label} {column}")
    print(len(ours))


# --- the driver -------------------------------------------------------------


def timed(command, repeats, before=None):
    seconds = []
    for _ in range(repeats):
        if before:
            before()
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return statistics.median(seconds)


def manifest(path, workload, granules, region_yaml):
    with open(path, "w") as f:
        f.write(
            f"name: e2e-{workload}\n"
            f"region: {region_yaml}\n"
            f"variables: {json.dumps(VARIABLES)}\n"
            f"source: {{ local: {{ path: {granules} }} }}\n"
            f"output: {{ path: {os.path.join(os.path.dirname(path), 'out-' + workload)} }}\n"
        )


VARIABLES = [
    "land_segments/canopy/h_canopy",
    "land_segments/canopy/h_mean_canopy",
    "land_segments/canopy/h_canopy_uncertainty",
    "land_segments/canopy/canopy_openness",
    "land_segments/terrain/h_te_best_fit",
    "land_segments/terrain/h_te_uncertainty",
    "land_segments/terrain/terrain_slope",
    "land_segments/night_flag",
]
NOTEBOOK_POLYGON = {
    "type": "Polygon",
    "coordinates": [
        [
            [147.36292814819225, -43.13877567220346],
            [147.37430514872108, -43.138230401452724],
            [147.37434935986303, -43.14713157803227],
            [147.36332604846982, -43.14788316744545],
            [147.36292814819225, -43.13877567220346],
        ]
    ],
}
BOX = [145.868, -44.643, 148.868, -41.643]


def workload(args, label, granules, region, region_yaml, one_core):
    work = args.work
    region_path = os.path.join(work, f"region-{label}.json")
    with open(region_path, "w") as f:
        json.dump(region, f)
    manifest_path = os.path.join(work, f"m-{label}.yaml")
    manifest(manifest_path, label, granules, region_yaml)
    n_granules = len(granule_files(granules))
    me = [sys.executable, os.path.abspath(__file__)]
    common = ["--granules", granules, "--region", region_path, "--variables", ",".join(VARIABLES)]
    notebook_out = os.path.join(work, f"notebook-{label}")
    skilled_out = os.path.join(work, f"skilled-{label}.parquet")

    def clean_notebook():
        subprocess.run(["rm", "-rf", notebook_out], check=True)

    times = {}
    cores = os.cpu_count()
    if one_core:
        # One core against all of them: the process pinned to core 0.
        times["icesat2, 1 core (taskset -c 0)"] = timed(
            ["taskset", "-c", "0", args.bin, "run", manifest_path, "--fresh", "--threads", "1"], args.repeats
        )
    times[f"icesat2, {cores} cores"] = timed([args.bin, "run", manifest_path, "--fresh"], args.repeats)
    times["skilled Python"] = timed(me + ["skilled", *common, "--out", skilled_out], args.repeats)
    times["notebook"] = timed(me + ["notebook", *common, "--out", notebook_out], args.repeats, clean_notebook)
    floor_run = subprocess.run(
        me + ["floor", *common, "--repeats", str(args.repeats)], check=True, capture_output=True, text=True
    )
    floor_result = json.loads(floor_run.stdout)
    rows = int(
        subprocess.run(
            me
            + [
                "rows",
                "--granules",
                granules,
                "--variables",
                ",".join(VARIABLES),
                "--dataset",
                os.path.join(work, f"out-{label}"),
                "--notebook",
                notebook_out,
                "--skilled",
                skilled_out,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    best = min(floor_result["inflate"].items(), key=lambda item: item[1]["seconds"])
    ours = times[f"icesat2, {cores} cores"]
    print(f"\n{label}: {n_granules} granules, {len(VARIABLES)} variables, {rows} rows (same keys and values in every output)")
    print(f"  {'method':34} {'seconds':>9} {'rows/s':>12} {'icesat2 is':>11}")
    for method, seconds in times.items():
        print(f"  {method:34} {seconds:9.3f} {rows / seconds:12,.0f} {seconds / ours:10.1f}x")
    for name, result in sorted(floor_result["inflate"].items(), key=lambda item: item[1]["seconds"]):
        seconds = result["seconds"]
        print(f"  {'floor: inflate (' + name + ')':34} {seconds:9.3f} {rows / seconds:12,.0f} {seconds / ours:10.2f}x")
    print(
        f"  floor: {floor_result['chunks']} chunks, {floor_result['compressed_bytes'] / 1e6:.1f} MB compressed"
        f" -> {best[1]['inflated_bytes'] / 1e6:.1f} MB, {floor_result['threads']} threads"
    )
    summary = {
        "notebook / icesat2": times["notebook"] / ours,
        "skilled / icesat2": times["skilled Python"] / ours,
        f"icesat2 / floor ({best[0]})": ours / best[1]["seconds"],
    }
    if one_core:
        summary[f"1 core / {cores} cores"] = times["icesat2, 1 core (taskset -c 0)"] / ours
    for key, value in summary.items():
        print(f"  {key:34} {value:9.2f}")
    return summary


def kept_by_tracks(args, region_path):
    """The granules whose ground track crosses the buffered region (what the
    notebook's RGT search would download), from `icesat2 plan`."""
    manifest_path = os.path.join(args.work, "m-tracks.yaml")
    with open(manifest_path, "w") as f:
        f.write(f"region: {{ geojson: {region_path} }}\nsource: {{ local: {{ path: {args.granules} }} }}\n")
    plan = json.loads(
        subprocess.run([args.bin, "plan", manifest_path, "--json"], check=True, capture_output=True, text=True).stdout
    )
    return sorted(g["location"] for g in plan["granules"] if g["skip"] is None)


def drive(args):
    os.makedirs(args.work, exist_ok=True)
    region_path = os.path.join(args.work, "region-small.json")
    with open(region_path, "w") as f:
        json.dump(NOTEBOOK_POLYGON, f)
    small = os.path.join(args.work, "g20")
    subprocess.run(["rm", "-rf", small], check=True)
    os.makedirs(small)
    for path in kept_by_tracks(args, region_path)[:20]:
        os.symlink(path, os.path.join(small, os.path.basename(path)))
    print(f"median of {args.repeats}; icesat2 = {args.bin}")
    workload(args, "small", small, NOTEBOOK_POLYGON, f"{{ geojson: {os.path.join(args.work, 'region-small.json')} }}", False)
    west, south, east, north = BOX
    box = {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }
    workload(args, "bulk", args.granules, box, f"{{ bbox: {json.dumps(BOX)} }}", True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="time every method on both workloads")
    run.add_argument("--bin", required=True)
    run.add_argument("--granules", required=True, help="40 full-size granules")
    run.add_argument("--work", required=True)
    run.add_argument("--repeats", type=int, default=5)
    for name in ["notebook", "skilled", "floor"]:
        method = sub.add_parser(name)
        method.add_argument("--granules", required=True)
        method.add_argument("--region", required=True)
        method.add_argument("--variables", required=True)
        method.add_argument("--out")
        method.add_argument("--repeats", type=int, default=5)
    rows = sub.add_parser("rows")
    rows.add_argument("--granules", required=True)
    rows.add_argument("--variables", required=True)
    rows.add_argument("--dataset", required=True)
    rows.add_argument("--notebook", required=True)
    rows.add_argument("--skilled", required=True)
    args = parser.parse_args()
    if hasattr(args, "variables") and isinstance(args.variables, str):
        args.variables = [v for v in args.variables.split(",") if v]
    {"run": drive, "notebook": notebook, "skilled": skilled, "floor": floor, "rows": rows_of}[args.command](args)


if __name__ == "__main__":
    main()
