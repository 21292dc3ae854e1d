"""The notebook's track selection on NASA's tracks (orbits.json), for the
notebook's polygon and 50 random polygons across latitudes. For each case it
prints the RGTs that must be selected:
  - every RGT whose NASA track passes within 10 km of the polygon;
  - every RGT the notebook's method selects (track intersects the polygon
    buffered by 0.3 deg, square caps), unless that track lies within 5 km of
    the buffer's edge.
Distances are in km in a local equirectangular frame around the polygon.

usage: notebook_tracks.py ORBITS POLY_JSON  -> JSON list of {polygon, must, notebook}
"""

import json
import math
import random
import sys

import shapely
from shapely.geometry import shape

orbits = json.load(open(sys.argv[1]))
tracks = [(int(f["properties"]["orbit"]), shape(f["geometry"])) for f in orbits["features"]]
notebook_poly = shape(json.load(open(sys.argv[2]))["features"][0]["geometry"])

rng = random.Random(2024)
cases = [notebook_poly]
while len(cases) < 51:
    lat = rng.uniform(-86, 86)
    lon = rng.uniform(-170, 170)
    size = rng.uniform(0.02, 0.8)
    points = [(lon + rng.uniform(-size, size) / max(math.cos(math.radians(lat)), 0.1), lat + rng.uniform(-size, size)) for _ in range(6)]
    hull = shapely.MultiPoint(points).convex_hull
    if hull.geom_type == "Polygon" and hull.area > 0 and abs(hull.bounds[1]) < 87.5 and abs(hull.bounds[3]) < 87.5:
        cases.append(hull)

out = []
for poly in cases:
    lon0, lat0 = poly.centroid.x, poly.centroid.y
    scale = math.cos(math.radians(lat0))

    def km(coords):
        out = coords.copy()
        out[:, 0] = ((coords[:, 0] - lon0 + 180) % 360 - 180) * 111.32 * scale
        out[:, 1] = (coords[:, 1] - lat0) * 111.32
        return out

    buffered = poly.buffer(0.3, cap_style="square")
    poly_km = shapely.transform(poly, km)
    edge_km = shapely.transform(buffered.boundary, km)
    must, notebook = [], []
    for rgt, line in tracks:
        near = line.intersection(poly.buffer(1.5))  # the parts near the polygon
        if near.is_empty:
            continue
        near_km = shapely.transform(near, km)
        selected = line.intersects(buffered)
        if selected:
            notebook.append(rgt)
        if near_km.distance(poly_km) < 10.0:
            must.append(rgt)
        elif selected and near_km.distance(edge_km) >= 5.0:
            must.append(rgt)
    out.append({"polygon": shapely.geometry.mapping(poly), "must": sorted(set(must)), "notebook": sorted(notebook)})
print(json.dumps(out))
