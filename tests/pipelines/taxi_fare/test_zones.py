"""The taxi-zone tables built from the TLC shapefile: known centroids, every zone's geometry, the build script."""
from __future__ import annotations

import filecmp
import importlib.util
import math
import os
from pathlib import Path

import pytest

from pipelines.taxi_fare.zones import AIRPORT_ZONES, UNKNOWN_ZONES, airport_coordinates, load_zones, zone_points

ROOT = Path(__file__).resolve().parents[3]
SHAPEFILE = Path(os.environ.get("REAL_TAXI_DATA", ROOT.parent / "shared" / "data" / "real-taxi")) / \
    "taxi-zones-shapefile"
# (lon, lat) of five zones as published with the shapefile (shared/data/real-taxi/README.md)
KNOWN_CENTROIDS = {1: (-74.174, 40.692), 2: (-73.831, 40.617), 4: (-73.977, 40.724), 132: (-73.787, 40.647),
                   138: (-73.874, 40.774)}
NYC = {"lon": (-74.26, -73.69), "lat": (40.49, 40.92)}  # the city's extent, Newark airport included


def _script():
    spec = importlib.util.spec_from_file_location("make_zone_table", ROOT / "scripts" / "make_zone_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("location_id", sorted(KNOWN_CENTROIDS))
def test_known_centroids_within_0_005_degrees(location_id):
    zone = {z.location_id: z for z in load_zones()}[location_id]
    lon, lat = KNOWN_CENTROIDS[location_id]
    assert abs(zone.longitude - lon) < 0.005 and abs(zone.latitude - lat) < 0.005


def test_every_zone_of_the_lookup_has_its_own_geometry_but_the_unknown_ones():
    zones = {z.location_id: z for z in load_zones()}
    assert sorted(zones) == list(range(1, 266))
    for zone_id in UNKNOWN_ZONES:
        assert (zones[zone_id].longitude, zones[zone_id].area_km2) == (None, None)
        assert zone_id not in zone_points()
    located = [z for z in zones.values() if z.location_id not in UNKNOWN_ZONES]
    assert all(NYC["lon"][0] < z.longitude < NYC["lon"][1] and NYC["lat"][0] < z.latitude < NYC["lat"][1]
               for z in located)
    assert all(z.area_km2 > 0 for z in located)
    # the shapefile repeats LocationID 56 and 103; by OBJECTID each of 56/57 and 103/104/105 is its own polygon
    assert len({(zones[i].longitude, zones[i].latitude) for i in (56, 57, 103, 104, 105)}) == 5
    # Alphabet City is small and Manhattan's; Jamaica Bay large: real areas, not placeholders
    assert zones[4].area_km2 < 1.0 < zones[2].area_km2


def test_points_lie_around_their_own_zone_and_nowhere_else():
    """Each zone's 16 points are closer to its own centroid than a zone's size allows for a point outside it,
    and their mean is near the centroid (uniform in the polygon)."""
    zones = {z.location_id: z for z in load_zones()}
    points = zone_points()
    assert sorted(points) == sorted(z for z in zones if z not in UNKNOWN_ZONES)
    for zone_id, found in points.items():
        zone = zones[zone_id]
        assert len(found) == 16
        reach_km = 3 * math.sqrt(zone.area_km2) + 1.0  # elongated zones reach further than a disc of their area
        for lon, lat in found:
            dx = (lon - zone.longitude) * 111.32 * math.cos(math.radians(zone.latitude))
            dy = (lat - zone.latitude) * 110.57
            assert math.hypot(dx, dy) < reach_km, (zone_id, lon, lat)


def test_airports_are_their_zones_centroids():
    by_id = {z.location_id: z for z in load_zones()}
    for code, zone_id in AIRPORT_ZONES.items():
        assert airport_coordinates()[code] == (by_id[zone_id].longitude, by_id[zone_id].latitude)


def test_centroid_and_inside_test_of_a_polygon_with_a_hole_and_two_parts():
    script = _script()
    outer = [(0, 0), (0, 10), (10, 10), (10, 0), (0, 0)]  # clockwise, as shapefile outer rings are
    hole = [(6, 4), (8, 4), (8, 6), (6, 6), (6, 4)]  # counter-clockwise, as holes are
    island = [(20, 0), (20, 2), (22, 2), (22, 0), (20, 0)]
    area, x, y = script.area_and_centroid([outer, hole, island])
    assert area == pytest.approx(100 - 4 + 4)
    assert (x, y) == (pytest.approx((100 * 5 - 4 * 7 + 4 * 21) / 100), pytest.approx(5 - 4 * 5 / 100 + 4 * 1 / 100))
    assert script.inside(1, 1, [outer, hole, island]) and script.inside(21, 1, [outer, hole, island])
    assert not script.inside(7, 5, [outer, hole, island]) and not script.inside(15, 5, [outer, hole, island])


@pytest.mark.skipif(not (SHAPEFILE / "taxi_zones.shp").exists(),
                    reason=f"the TLC shapefile is not at {SHAPEFILE} (set REAL_TAXI_DATA)")
def test_the_shipped_tables_are_what_the_script_builds_from_the_shapefile(tmp_path):
    _script().build(SHAPEFILE, tmp_path)
    shipped = ROOT / "pipelines" / "taxi_fare" / "resources"
    for name in ("taxi_zones.csv", "taxi_zone_points.csv"):
        assert filecmp.cmp(tmp_path / name, shipped / name, shallow=False), f"{name}: run scripts/make_zone_table.py"
