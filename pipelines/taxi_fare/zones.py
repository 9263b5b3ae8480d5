"""The TLC taxi zones with their real geometry, shipped as package data (resources/NOTICE.md: source, licence).

Centroids are the area-weighted centroids of the TLC's zone polygons (scripts/make_zone_table.py builds both
tables from the shapefile). The features turn zone ids of current-schema files into coordinates with them; the
generator places trips at points drawn inside the zones' polygons.
"""
from __future__ import annotations

import csv
import io
import pkgutil
from dataclasses import dataclass
from functools import lru_cache

AIRPORT_ZONES = {"EWR": 1, "JFK": 132, "LGA": 138}
UNKNOWN_ZONES = (264, 265)


@dataclass(frozen=True)
class Zone:
    location_id: int
    borough: str
    name: str
    service_zone: str
    longitude: float | None
    latitude: float | None
    area_km2: float | None


@lru_cache(maxsize=1)
def load_zones() -> tuple[Zone, ...]:
    return tuple(Zone(location_id=int(row["location_id"]), borough=row["borough"], name=row["zone"],
                      service_zone=row["service_zone"], longitude=_number(row["longitude"]),
                      latitude=_number(row["latitude"]), area_km2=_number(row["area_km2"]))
                 for row in _rows("taxi_zones.csv"))


@lru_cache(maxsize=1)
def zone_points() -> dict[int, tuple[tuple[float, float], ...]]:
    """Points (longitude, latitude) drawn uniformly inside each zone's polygon, by zone id; zones without
    geometry (264, 265) have none."""
    points: dict[int, list[tuple[float, float]]] = {}
    for row in _rows("taxi_zone_points.csv"):
        points.setdefault(int(row["location_id"]), []).append((float(row["longitude"]), float(row["latitude"])))
    return {zone: tuple(found) for zone, found in points.items()}


def _rows(resource: str) -> list[dict]:
    # pkgutil reads package data from a directory or from the zip shipped with --py-files alike.
    return list(csv.DictReader(io.StringIO(pkgutil.get_data("pipelines.taxi_fare", f"resources/{resource}").decode())))


def _number(text: str) -> float | None:
    return float(text) if text else None


def zones_in(borough: str) -> list[Zone]:
    return [z for z in load_zones() if z.borough == borough and z.location_id not in AIRPORT_ZONES.values()]


def centroid_arrays() -> tuple[list[float | None], list[float | None]]:
    """Longitudes and latitudes indexed by location id (index 0 unused), for element_at lookups."""
    size = max(z.location_id for z in load_zones()) + 1
    lons: list[float | None] = [None] * size
    lats: list[float | None] = [None] * size
    for zone in load_zones():
        lons[zone.location_id] = zone.longitude
        lats[zone.location_id] = zone.latitude
    return lons, lats


def point_arrays() -> tuple[int, list[float | None], list[float | None]]:
    """(points per zone k, longitudes, latitudes): point j of zone i at index i * k + j, None for zones without
    geometry; for element_at lookups of a zone's j-th inner point."""
    points = zone_points()
    per_zone = len(next(iter(points.values())))
    size = (max(z.location_id for z in load_zones()) + 1) * per_zone
    lons: list[float | None] = [None] * size
    lats: list[float | None] = [None] * size
    for zone, found in points.items():
        for j, (lon, lat) in enumerate(found):
            lons[zone * per_zone + j], lats[zone * per_zone + j] = lon, lat
    return per_zone, lons, lats


def airport_coordinates() -> dict[str, tuple[float, float]]:
    by_id = {z.location_id: z for z in load_zones()}
    return {code: (by_id[i].longitude, by_id[i].latitude) for code, i in AIRPORT_ZONES.items()}
