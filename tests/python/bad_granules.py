"""Writes a corpus of bad granules made from one good synthetic granule.

usage: bad_granules.py GOOD.h5 OUT_FOLDER

Each file is named like an ATL08 granule (a distinct RGT each) and is broken
in one way, through h5py or by patching bytes (the version-1 B-trees of a
superblock 0 file with 8-byte offsets, as the synthetic granules and NASA's
are written); prints one line per file: `<file name> <kind>`.
"""

import pathlib
import shutil
import sys
import zlib

import h5py
import numpy as np


def name(rgt):
    return f"ATL08_20190501000000_{rgt:04d}0301_006_01.h5"


def u16(data, at):
    return int.from_bytes(data[at : at + 2], "little")


def u64(data, at):
    return int.from_bytes(data[at : at + 8], "little")


def chunk_btree_leaf_of(data, chunk):
    """The offset of the version-1 chunk B-tree leaf listing the chunk at
    file offset `chunk`, of a one-dimensional dataset (superblock 0, 8-byte
    offsets)."""
    # "TREE", type 1 (chunks), level 0, entries, two siblings (24 bytes);
    # then key 0 (size, filter mask, two 8-byte offsets: 24 bytes), child 0,
    # key 1, child 1, ...
    data = bytes(data)
    at = data.find(b"TREE\x01\x00")
    while at >= 0:
        children = (u64(data, at + 48 + 32 * i) for i in range(u16(data, at + 6)))
        if chunk in children:
            return at
        at = data.find(b"TREE\x01\x00", at + 1)
    raise SystemExit(f"no chunk B-tree leaf lists the chunk at {chunk}")


def chunk_btree_leaf(data, good, dataset):
    """The leaf listing the first chunk of `dataset` in file `good`."""
    with h5py.File(good, "r") as f:
        first = f[dataset].id.get_chunk_info(0).byte_offset
    return chunk_btree_leaf_of(data, first)


def with_entries(data, good, dataset, entries):
    at = chunk_btree_leaf(data, good, dataset)
    broken = bytearray(data)
    broken[at + 6 : at + 8] = entries.to_bytes(2, "little")
    return bytes(broken)


def symbol_table_btree(data, good, group):
    """The B-tree address of an old-style `group` from its object header's
    symbol table message (version 1 header: messages from 16 bytes in)."""
    with h5py.File(good, "r") as f:
        address = h5py.h5o.get_info(f[group].id).addr
    assert data[address] == 1, "version 1 object header"
    count = u16(data, address + 2)
    at = address + 16
    for _ in range(count):
        kind, size = u16(data, at), u16(data, at + 2)
        if kind == 0x11:
            return u64(data, at + 8)
        at += 8 + size
    raise SystemExit(f"no symbol table message in {group}")


def repeated_symbol_nodes(data, good, group):
    at = symbol_table_btree(data, good, group)
    assert data[at : at + 6] == b"TREE\x00\x00", "a one-level group B-tree"
    entries = u16(data, at + 6)
    assert entries > 1, entries
    # Header 24 bytes, then key (8), child (8), key, child, ...
    first = u64(data, at + 24 + 8)
    broken = bytearray(data)
    for i in range(1, entries):
        child = at + 24 + 8 + 16 * i
        broken[child : child + 8] = first.to_bytes(8, "little")
    return bytes(broken)


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

    def drop_longitude(f):
        del f["gt3r/land_segments/longitude"]

    edit("no-longitude", 117, drop_longitude)

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

    # The chunk B-tree node of gt2r latitude claiming 65535 entries, where
    # its dataspace holds one chunk; the same for gt1r latitude grown to
    # ten million rows (a thousand chunks, unallocated), where a node of
    # this file holds 64.
    write("btree-node-entries", 113, with_entries(data, good, "gt2r/land_segments/latitude", 65535))

    def grow_gt1r(f):
        for name in ("latitude", "longitude"):
            f[f"gt1r/land_segments/{name}"].resize((10**7,))

    edit("btree-node-beyond-k", 116, grow_gt1r)
    grown = out / name(116)
    grown.write_bytes(with_entries(grown.read_bytes(), grown, "gt1r/land_segments/latitude", 65535))

    # gt3l latitude rewritten in chunks of 4 rows (a B-tree of several
    # leaves), its last leaf then claiming a full node of 64 entries (those
    # past its own are the node's unused zeros): every node within bounds,
    # the tree listing more chunks than the dataspace holds.
    def small_chunks(f):
        old = f["gt3l/land_segments/latitude"]
        values, attributes = old[...], dict(old.attrs)
        del f["gt3l/land_segments/latitude"]
        new = f.create_dataset("gt3l/land_segments/latitude", data=values, chunks=(4,))
        new.attrs.update(attributes)

    edit("btree-more-chunks", 114, small_chunks)
    path = out / name(114)
    with h5py.File(path, "r") as f:
        dataset = f["gt3l/land_segments/latitude"]
        last = dataset.id.get_chunk_info(dataset.id.get_num_chunks() - 1).byte_offset
    broken = bytearray(path.read_bytes())
    leaf = chunk_btree_leaf_of(broken, last)
    broken[leaf + 6 : leaf + 8] = (64).to_bytes(2, "little")
    path.write_bytes(bytes(broken))

    def grow_gt1r(f):
        for name in ("latitude", "longitude"):
            f[f"gt1r/land_segments/{name}"].resize((10**7,))

    # The B-tree of group gt3r/land_segments listing its first symbol table
    # node in place of every other one.
    write("group-btree-repeats", 115, repeated_symbol_nodes(data, good, "gt3r/land_segments"))

    for file_name, kind in made:
        print(file_name, kind)


if __name__ == "__main__":
    main()
