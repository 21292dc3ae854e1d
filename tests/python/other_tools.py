"""Rewrites granules the way other tools write them.

usage: other_tools.py KIND SRC_FOLDER OUT_FOLDER [options]

Every `*.h5` of SRC_FOLDER is rewritten into OUT_FOLDER under the same name.
KIND:
  bare BEAM,...   as the R package ICESat2VegR's clip writes a beam with no
                  segments in the clip: the beam group and its subgroups are
                  created (with their attributes), no dataset is copied, so
                  land_segments holds only empty `canopy` and `terrain`
                  subgroups and signal_photons is an empty group
  xarray BEAM DATASET
                  opened with xarray (`open_datatree`, engine h5netcdf) and
                  written back with `to_netcdf(engine="h5netcdf")`, without
                  the beam BEAM, the dataset DATASET (a path such as
                  gt2l/land_segments/terrain/h_te_best_fit) and orbit_info;
                  latitude, longitude and delta_time made coordinates
                  (xarray gives them a NaN `_FillValue`)
  float-orbit     orbit_info/rgt and cycle_number as float64, sc_orient as
                  float32 (1.0 or 0.0), and the beams' atlas_beam_type and
                  atlas_spot_number attributes removed (so strength and spot
                  come from sc_orient)
Prints one line per file written.
"""

import pathlib
import shutil
import sys

import h5py
import numpy as np

BEAMS = ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"]


def bare(src, out, beams):
    shutil.copyfile(src, out)
    with h5py.File(out, "r+") as f:
        for beam in beams:
            group = f[beam]
            kept = {}
            for name in ("land_segments", "land_segments/canopy", "land_segments/terrain", "signal_photons"):
                if name in group:
                    kept[name] = dict(group[name].attrs)
            for name in ("land_segments", "signal_photons"):
                if name in group:
                    del group[name]
            for name in ("land_segments", "land_segments/canopy", "land_segments/terrain", "signal_photons"):
                created = group.create_group(name)
                created.attrs.update(kept.get(name, {}))
    with h5py.File(out, "r") as f:
        for beam in beams:
            land = f[beam]["land_segments"]
            assert sorted(land) == ["canopy", "terrain"], list(land)
            assert len(land["canopy"]) == 0 and len(land["terrain"]) == 0
            assert len(f[beam]["signal_photons"]) == 0


def rewrite_xarray(src, out, beam, dataset):
    import xarray as xr

    tree = xr.open_datatree(src, engine="h5netcdf", phony_dims="sort")
    tree = tree.drop_nodes([beam, "orbit_info"])
    kept = [b for b in BEAMS if b in tree.children]
    folder, leaf = dataset.rsplit("/", 1)
    node = tree[folder]
    node.dataset = node.to_dataset(inherit=False).drop_vars(leaf)
    for name in kept:
        land = tree[f"{name}/land_segments"]
        land.dataset = land.to_dataset(inherit=False).set_coords(["latitude", "longitude", "delta_time"])
    tree.to_netcdf(out, engine="h5netcdf")
    with h5py.File(out, "r") as f:
        assert beam not in f and "orbit_info" not in f, list(f)
        assert leaf not in f[folder] and len(f[folder]) > 0
        for name in kept:
            for coordinate in ("latitude", "longitude", "delta_time"):
                fill = f[f"{name}/land_segments/{coordinate}"].attrs["_FillValue"]
                assert np.isnan(fill).all(), (name, coordinate, fill)


def float_orbit(src, out):
    shutil.copyfile(src, out)
    with h5py.File(out, "r+") as f:
        orbit = f["orbit_info"]
        for name, dtype in (("rgt", "f8"), ("cycle_number", "f8"), ("sc_orient", "f4")):
            values = orbit[name][...].astype(dtype)
            del orbit[name]
            orbit.create_dataset(name, data=values)
        assert orbit["sc_orient"].dtype == np.float32
        for beam in BEAMS:
            if beam in f:
                for name in ("atlas_beam_type", "atlas_spot_number"):
                    if name in f[beam].attrs:
                        del f[beam].attrs[name]


def main():
    kind, src, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.h5")):
        target = out / path.name
        if kind == "bare":
            bare(path, target, sys.argv[4].split(","))
        elif kind == "xarray":
            rewrite_xarray(path, target, sys.argv[4], sys.argv[5])
        elif kind == "float-orbit":
            float_orbit(path, target)
        else:
            sys.exit(f"unknown kind {kind}")
        print(target.name)


if __name__ == "__main__":
    main()
