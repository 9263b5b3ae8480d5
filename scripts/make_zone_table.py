"""Build the taxi-zone tables of pipelines/taxi_fare/resources/ from the TLC taxi-zone shapefile.

    python scripts/make_zone_table.py [--shapefile DIR] [--output DIR]

Reads ``taxi_zones.shp/.dbf`` (NAD83 / New York Long Island, US feet: EPSG:2263; default: the copy in
``../shared/data/real-taxi/taxi-zones-shapefile``) and the TLC zone lookup (``scripts/taxi_zone_lookup.csv.in``:
names, boroughs, service zones, and the two zones without a polygon, 264 and 265), and writes:

- ``taxi_zones.csv``: one row per zone of the lookup: its area-weighted polygon centroid (computed in the
  planar EPSG:2263 coordinates, over every part and hole of the zone, then converted to WGS84 longitude /
  latitude) and its area in km²; 264/265 have no geometry.
- ``taxi_zone_points.csv``: ``POINTS_PER_ZONE`` points drawn uniformly inside each zone's polygon (seeded, so
  the file is reproducible): the generator places synthetic pickups and drop-offs there.

Zones are keyed by the shapefile's ``OBJECTID``, the id of the TLC lookup: its ``LocationID`` field repeats 56
and 103 (57 Corona, 104/105 the islands). pyshp and pyproj are dev dependencies: the runtime reads the CSVs.
"""
from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import pyproj
import shapefile

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHAPEFILE = ROOT.parent / "shared" / "data" / "real-taxi" / "taxi-zones-shapefile"
DEFAULT_OUTPUT = ROOT / "pipelines" / "taxi_fare" / "resources"
LOOKUP = ROOT / "scripts" / "taxi_zone_lookup.csv.in"
POINTS_PER_ZONE = 16
SEED = 2263
SQUARE_FEET_PER_KM2 = (1000 / 0.3048006096012192) ** 2  # US survey feet, the shapefile's unit


def rings(shape) -> list[list[tuple[float, float]]]:
    """Every ring (outer boundaries and holes) of a polygon shape, closed."""
    starts = list(shape.parts) + [len(shape.points)]
    found = []
    for begin, end in zip(starts, starts[1:]):
        ring = [tuple(p) for p in shape.points[begin:end]]
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        found.append(ring)
    return found


def area_and_centroid(polygon_rings) -> tuple[float, float, float]:
    """Signed-area-weighted centroid over all rings: shapefile outer rings run clockwise and holes
    counter-clockwise, so summing signed areas and moments subtracts the holes and adds the parts."""
    area = moment_x = moment_y = 0.0
    for ring in polygon_rings:
        for (x0, y0), (x1, y1) in zip(ring, ring[1:]):
            cross = x0 * y1 - x1 * y0
            area += cross / 2
            moment_x += (x0 + x1) * cross / 6
            moment_y += (y0 + y1) * cross / 6
    return abs(area), moment_x / area, moment_y / area


def inside(x: float, y: float, polygon_rings) -> bool:
    """Even-odd rule over every ring: inside a part and not inside one of its holes."""
    crossings = 0
    for ring in polygon_rings:
        for (x0, y0), (x1, y1) in zip(ring, ring[1:]):
            if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                crossings += 1
    return crossings % 2 == 1


def points_inside(polygon_rings, count: int, rng: random.Random) -> list[tuple[float, float]]:
    """``count`` points uniform inside the polygon: rejection sampling in its bounding box."""
    xs = [x for ring in polygon_rings for x, _ in ring]
    ys = [y for ring in polygon_rings for _, y in ring]
    found = []
    while len(found) < count:
        x, y = rng.uniform(min(xs), max(xs)), rng.uniform(min(ys), max(ys))
        if inside(x, y, polygon_rings):
            found.append((x, y))
    return found


def build(shapefile_dir: Path, output: Path) -> None:
    reader = shapefile.Reader(str(shapefile_dir / "taxi_zones"))
    to_wgs84 = pyproj.Transformer.from_crs("EPSG:2263", "EPSG:4326", always_xy=True)
    geometry = {int(record["OBJECTID"]): (record["zone"], rings(shape)) for shape, record
                in zip(reader.shapes(), reader.records())}
    lookup = list(csv.reader(LOOKUP.open()))
    rng = random.Random(SEED)
    output.mkdir(parents=True, exist_ok=True)
    with (output / "taxi_zones.csv").open("w", newline="") as zones_file, \
            (output / "taxi_zone_points.csv").open("w", newline="") as points_file:
        zones, points = csv.writer(zones_file), csv.writer(points_file)
        zones.writerow(["location_id", "borough", "zone", "service_zone", "longitude", "latitude", "area_km2"])
        points.writerow(["location_id", "point", "longitude", "latitude"])
        for location_id, borough, name, service_zone in lookup:
            location_id = int(location_id)
            if location_id not in geometry:
                zones.writerow([location_id, borough, name, service_zone, "", "", ""])
                continue
            shape_name, polygon_rings = geometry.pop(location_id)
            if shape_name != name:
                raise SystemExit(f"zone {location_id}: the shapefile says {shape_name!r}, the lookup {name!r}")
            area, x, y = area_and_centroid(polygon_rings)
            lon, lat = to_wgs84.transform(x, y)
            zones.writerow([location_id, borough, name, service_zone, f"{lon:.6f}", f"{lat:.6f}",
                            f"{area / SQUARE_FEET_PER_KM2:.4f}"])
            for index, (px, py) in enumerate(points_inside(polygon_rings, POINTS_PER_ZONE, rng)):
                plon, plat = to_wgs84.transform(px, py)
                points.writerow([location_id, index, f"{plon:.6f}", f"{plat:.6f}"])
    if geometry:
        raise SystemExit(f"zones in the shapefile but not in the lookup: {sorted(geometry)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapefile", type=Path, default=DEFAULT_SHAPEFILE,
                        help="directory holding taxi_zones.shp/.dbf (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: %(default)s")
    args = parser.parse_args()
    build(args.shapefile, args.output)


if __name__ == "__main__":
    main()
