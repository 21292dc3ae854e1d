"""Writes a corpus of bad granules made from one good synthetic granule.

usage: bad_granules.py GOOD.h5 OUT_FOLDER

Each file is named like an ATL08 granule (a distinct RGT each) and is broken
in one way; prints one line per file: `<file name> <kind>`.
"""

import pathlib
import shutil
import sys
import zlib

import h5py
import numpy as np


def name(rgt):
    return f"ATL08_20190501000000_{rgt:04d}0301_006_01.h5"


def main():
    good, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    made = []

    def write(kind, rgt, content):
        path = out / name(rgt)
        path.write_bytes(content)
        made.append((path.name, kind))

    def edit(kind, rgt, change):
        path = out / name(rgt)
        shutil.copyfile(good, path)
        with h5py.File(path, "r+") as f:
            change(f)
        made.append((path.name, kind))

    write("truncated-half", 101, data[: len(data) // 2])
    write("truncated-metadata", 102, data[:6000])
    write("truncated-superblock", 103, data[:40])
    write("zeroed-superblock", 104, bytes(96) + data[96:])

    # Garbage inside the first compressed chunk of gt1l latitude.
    with h5py.File(good, "r") as f:
        chunk = f["gt1l/land_segments/latitude"].id.get_chunk_info(0)
    broken = bytearray(data)
    middle = chunk.byte_offset + chunk.size // 2
    broken[middle : middle + 64] = bytes((i * 37 + 11) % 256 for i in range(64))
    write("corrupt-chunk", 105, bytes(broken))

    path = out / name(106)
    with h5py.File(path, "w") as f:
        f["measurements/values"] = np.arange(10.0)
        f.attrs["title"] = "not an ATL08 granule"
    made.append((path.name, "not-atl08"))

    write("empty", 107, b"")
    write("text", 108, b"<html><body>Earthdata Login</body></html>\n")

    def drop_latitude(f):
        del f["gt1l/land_segments/latitude"]

    edit("no-latitude", 109, drop_latitude)

    def short_longitude(f):
        longitude = f["gt2l/land_segments/longitude"][...]
        del f["gt2l/land_segments/longitude"]
        f["gt2l/land_segments/longitude"] = longitude[: len(longitude) // 2]

    edit("shapes-disagree", 110, short_longitude)

    def inflate_bomb(f):
        # A chunk whose deflate stream expands far beyond the chunk's size.
        f["gt1r/land_segments/latitude"].id.write_direct_chunk(
            (0,), zlib.compress(bytes(64 << 20), 9))

    edit("inflates-beyond-chunk", 111, inflate_bomb)

    def huge_shape(f):
        # Declared rows far beyond what a reader may allocate (chunks unallocated).
        for beam in ("gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"):
            for name in ("latitude", "longitude"):
                dataset = f[f"{beam}/land_segments/{name}"]
                if dataset.maxshape[0] is None:
                    dataset.resize((10**11,))

    edit("huge-shape", 112, huge_shape)

    for file_name, kind in made:
        print(file_name, kind)


if __name__ == "__main__":
    main()
