"""The compressed bytes of the chunks a polygon subset needs, found with h5py
(libhdf5's chunk index) independently of icesat2: latitude and longitude
whole; delta_time, the variables and the photon index datasets for the kept
segments; ph_segment_id and photon variables for their photons.

usage: needed_chunks.py GRANULE POLYGON_GEOJSON VARIABLE...  -> JSON {needed, file}
"""

import json
import os
import sys

import h5py
import numpy as np
import shapely
from shapely.geometry import shape


def chunk_bytes(dataset, rows):
    """Stored bytes of the chunks of `dataset` holding any of `rows`."""
    if len(rows) == 0 or dataset.chunks is None:
        return 0
    per_chunk = dataset.chunks[0]
    wanted = set((np.asarray(rows) // per_chunk).tolist())
    total = 0
    for index in range(dataset.id.get_num_chunks()):
        info = dataset.id.get_chunk_info(index)
        if info.chunk_offset[0] // per_chunk in wanted:
            total += info.size
    return total


path, polygon_path, variables = sys.argv[1], sys.argv[2], sys.argv[3:]
region = shape(json.load(open(polygon_path)))
needed = 0
with h5py.File(path, "r") as f:
    for beam in ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"]:
        if beam not in f or "land_segments" not in f[beam]:
            continue
        land = f[beam]["land_segments"]
        lat, lon = land["latitude"][:], land["longitude"][:]
        everything = np.arange(len(lat))
        needed += chunk_bytes(land["latitude"], everything) + chunk_bytes(land["longitude"], everything)
        kept = np.nonzero(shapely.within(shapely.points(lon.astype(float), lat.astype(float)), region))[0]
        if len(kept) == 0:
            continue
        needed += chunk_bytes(land["delta_time"], kept)
        photon_rows = np.array([], dtype=np.int64)
        if any(v.startswith("signal_photons/") for v in variables):
            for name in ["segment_id_beg", "segment_id_end", "ph_ndx_beg", "n_seg_ph"]:
                needed += chunk_bytes(land[name], kept)
            first = land["ph_ndx_beg"][:][kept] - 1
            count = land["n_seg_ph"][:][kept]
            photon_rows = np.concatenate([np.arange(a, a + n) for a, n in zip(first, count)] + [np.array([], dtype=np.int64)])
            needed += chunk_bytes(f[beam]["signal_photons/ph_segment_id"], photon_rows)
        for variable in variables:
            rows = photon_rows if variable.startswith("signal_photons/") else kept
            needed += chunk_bytes(f[beam][variable], rows)
print(json.dumps({"needed": int(needed), "file": os.path.getsize(path)}))
