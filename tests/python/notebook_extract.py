"""Independent extraction, the notebook's way, compared with an icesat2 dataset.

For every granule: h5py reads latitude/longitude of each beam, geopandas/shapely
`within` keeps the points inside the region, the variables are read for the kept
rows, fill values become nulls (the `_FillValue` attribute, else --fills), photons
are matched to segments by ph_segment_id in [segment_id_beg, segment_id_end].
The rows must equal the dataset's, value for value. Prints the row count.
"""

import argparse
import math
from fractions import Fraction
import datetime
import glob
import json
import os
import sys

import h5py
import numpy as np
import pyarrow.dataset as ds
import shapely
from shapely.geometry import shape
from shapely.ops import unary_union

ATLAS_EPOCH_US = 1514764800 * 1_000_000
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
BEAMS = ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"]


def to_us(delta_time):
    """Exact: the float's value times 1e6, rounded half up, plus the epoch."""
    return math.floor(Fraction(float(delta_time)) * 1_000_000 + Fraction(1, 2)) + ATLAS_EPOCH_US


def load_region(path):
    with open(path) as f:
        doc = json.load(f)
    if doc["type"] == "FeatureCollection":
        return unary_union([shape(feature["geometry"]) for feature in doc["features"]])
    if doc["type"] == "Feature":
        return shape(doc["geometry"])
    return shape(doc)


def strength(group, sc_orient, beam):
    text = group.attrs.get("atlas_beam_type")
    if text is not None:
        if isinstance(text, np.ndarray):  # clipped files store 1-element arrays
            text = text.reshape(-1)[0]
        text = text.decode() if isinstance(text, bytes) else str(text)
        return text.strip().lower()
    left = beam.endswith("l")
    return {0: "strong" if left else "weak", 1: "weak" if left else "strong"}.get(sc_orient, "unknown")


def with_nulls(values, fill):
    out = []
    for value in values:
        if isinstance(value, np.ndarray):
            out.append([None if (fill is not None and v == fill) else v.item() for v in value])
        else:
            out.append(None if (fill is not None and value == fill) else value.item())
    return out


def extract(args, region, fills):
    rows = {}
    files = sorted(glob.glob(os.path.join(args.granules, "**", "*.h5"), recursive=True))
    for path in files:
        name = os.path.basename(path)
        with h5py.File(path, "r") as f:
            sc_orient = int(f["orbit_info/sc_orient"][0]) if "orbit_info/sc_orient" in f else None
            for beam in BEAMS:
                if beam not in f or "land_segments" not in f[beam]:
                    continue
                # A clip tool's beam without segments: land_segments holding
                # only empty canopy/terrain groups.
                if not {"latitude", "longitude"} & set(f[beam]["land_segments"]):
                    continue
                group = f[beam]
                beam_strength = strength(group, sc_orient, beam)
                if args.beams == "strong" and beam_strength != "strong":
                    continue
                if args.beams == "weak" and beam_strength != "weak":
                    continue
                land = group["land_segments"]
                lat = land["latitude"][:].astype(np.float64)
                lon = land["longitude"][:].astype(np.float64)
                points = shapely.points(lon, lat)
                keep = shapely.within(points, region)
                time_us = np.array([to_us(t) for t in land["delta_time"][:]], dtype=np.int64)
                if args.start_us is not None:
                    keep &= (time_us >= args.start_us) & (time_us <= args.end_us)
                if args.night_only:
                    keep &= land["night_flag"][:] == 1
                index = np.nonzero(keep)[0]
                if len(index) == 0:
                    continue
                columns = {}
                for variable, column in zip(args.variables, args.names):
                    if variable.startswith("signal_photons/"):
                        if "signal_photons" not in group:
                            columns[column] = [None] * len(index)
                            continue
                        ids = group["signal_photons/ph_segment_id"][:]
                        values = group[variable][:]
                        dataset = group[variable]
                        beg = land["segment_id_beg"][:][index]
                        end = land["segment_id_end"][:][index]
                        lists = []
                        fill = fill_of(dataset, variable, fills)
                        for first, last in zip(beg, end):
                            lo = np.searchsorted(ids, first, side="left")
                            hi = np.searchsorted(ids, last, side="right")
                            lists.append(with_nulls(values[lo:hi], fill))
                        columns[column] = lists
                    else:
                        if variable not in group:
                            columns[column] = [None] * len(index)
                            continue
                        dataset = group[variable]
                        columns[column] = with_nulls(dataset[:][index], fill_of(dataset, variable, fills))
                for k, row in enumerate(index):
                    record = {
                        "time": int(time_us[row]),
                        "latitude": float(lat[row]),
                        "longitude": float(lon[row]),
                        "beam_strength": beam_strength,
                    }
                    for column in args.names:
                        record[column] = columns[column][k]
                    rows[(name, beam, int(row))] = record
    return rows


def extract_20m(args, region, fills):
    """One row per 20 m sub-segment inside the region (its own point; fill
    coordinates kept out); variables with five values a segment give the
    sub-segment's, the others repeat the segment's."""
    rows = {}
    files = sorted(glob.glob(os.path.join(args.granules, "**", "*.h5"), recursive=True))
    for path in files:
        name = os.path.basename(path)
        with h5py.File(path, "r") as f:
            sc_orient = int(f["orbit_info/sc_orient"][0]) if "orbit_info/sc_orient" in f else None
            for beam in BEAMS:
                if beam not in f or "latitude_20m" not in f[beam].get("land_segments", {}):
                    continue
                group = f[beam]
                beam_strength = strength(group, sc_orient, beam)
                land = group["land_segments"]
                lat = land["latitude_20m"][:].astype(np.float64)
                lon = land["longitude_20m"][:].astype(np.float64)
                usable = (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
                inside = shapely.within(shapely.points(np.where(usable, lon, 0), np.where(usable, lat, 0)), region) & usable
                time_us = np.array([to_us(t) for t in land["delta_time"][:]], dtype=np.int64)
                if args.start_us is not None:
                    inside &= ((time_us >= args.start_us) & (time_us <= args.end_us))[:, None]
                columns = {}
                for variable, column in zip(args.variables, args.names):
                    if variable not in group:
                        columns[column] = None
                        continue
                    dataset = group[variable]
                    columns[column] = (dataset[:], fill_of(dataset, variable, fills))
                for row, k in zip(*np.nonzero(inside)):
                    record = {
                        "time": int(time_us[row]),
                        "latitude": float(lat[row, k]),
                        "longitude": float(lon[row, k]),
                        "beam_strength": beam_strength,
                    }
                    for column in args.names:
                        if columns[column] is None:
                            record[column] = None
                            continue
                        values, fill = columns[column]
                        value = values[row]
                        if values.ndim == 2 and values.shape[1] == 5:
                            value = value[k]
                        record[column] = with_nulls([value], fill)[0]
                    rows[(name, beam, int(row), int(k))] = record
    return rows


def fill_of(dataset, variable, fills):
    if "_FillValue" in dataset.attrs:
        return np.asarray(dataset.attrs["_FillValue"]).reshape(-1)[0].item()
    return fills.get(variable)


def drop_fill(rows, columns):
    return {key: row for key, row in rows.items() if all(row[c] is not None for c in columns)}


def where(rows, expression):
    """The rows an independent SQL engine (DuckDB, over an Arrow table with
    nulls for fills) keeps for `expression`."""
    import duckdb
    import pyarrow as pa

    keys = list(rows)
    extracted = pa.Table.from_pylist([dict(row, _row=k) for k, row in enumerate(rows.values())])
    kept = duckdb.sql(f"SELECT _row FROM extracted WHERE {expression}").fetchall()
    return {keys[k]: rows[keys[k]] for (k,) in kept}


def ours(path, names):
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    rows = {}
    for record in table.to_pylist():
        key = (record["granule"], record["beam"], record["segment_index"])
        if "subsegment" in record:
            key += (record["subsegment"],)
        if key in rows:
            raise SystemExit(f"duplicate row {key}")
        out = {
            "time": (record["time"] - EPOCH) // datetime.timedelta(microseconds=1) if record["time"] is not None else None,
            "latitude": record["latitude"],
            "longitude": record["longitude"],
            "beam_strength": record["beam_strength"],
        }
        for column in names:
            out[column] = record[column]
        rows[key] = out
    return rows, table


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--granules", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--variables", default="")
    parser.add_argument("--names", default="")
    parser.add_argument("--beams", default="all")
    parser.add_argument("--start-us", type=int)
    parser.add_argument("--end-us", type=int)
    parser.add_argument("--night-only", action="store_true")
    parser.add_argument("--drop-fill", default="")
    parser.add_argument("--fills", default="{}", help="JSON: variable -> fill for files without attributes")
    parser.add_argument("--resolution", default="100m")
    parser.add_argument("--where", help="SQL boolean expression the dataset's rows were filtered by")
    parser.add_argument("--where-variables", default="", help="variables read for --where only, not in the dataset")
    args = parser.parse_args()
    args.variables = [v for v in args.variables.split(",") if v]
    args.names = [n for n in args.names.split(",") if n] or [v.rsplit("/", 1)[-1] for v in args.variables]
    written = list(args.names)
    hidden = [v for v in args.where_variables.split(",") if v]
    args.variables += hidden
    args.names += [v.rsplit("/", 1)[-1] for v in hidden]
    region = load_region(args.region)
    if args.resolution == "20m":
        expected = extract_20m(args, region, json.loads(args.fills))
    else:
        expected = extract(args, region, json.loads(args.fills))
    expected = drop_fill(expected, [c for c in args.drop_fill.split(",") if c])
    if args.where:
        expected = where(expected, args.where)
    expected = {key: {c: v for c, v in row.items() if c not in args.names or c in written} for key, row in expected.items()}
    args.names = written
    actual, table = ours(args.dataset, args.names)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    if missing or extra:
        sys.exit(f"rows differ: {len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})")
    for key, row in expected.items():
        if actual[key] != row:
            diff = {c: (row[c], actual[key][c]) for c in row if row[c] != actual[key][c]}
            sys.exit(f"row {key} differs: {str(diff)[:500]}")
    if "geometry" not in table.column_names:
        sys.exit("no geometry column")
    print(len(expected))


if __name__ == "__main__":
    main()
