"""The TLC taxi-zone table with (approximate) centroids, shipped as package data.

Used by the generator (zone -> coordinates) and by the features (zone ids of current-schema files
-> coordinates for distance features). See scripts/make_zone_table.py for how centroids were made.
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


@lru_cache(maxsize=1)
def load_zones() -> tuple[Zone, ...]:
    # pkgutil reads package data from a directory or from the zip shipped with --py-files alike.
    raw = pkgutil.get_data("pipelines.taxi_fare", "resources/taxi_zones.csv").decode()
    zones = []
    for row in csv.DictReader(io.StringIO(raw)):
        zones.append(Zone(
            location_id=int(row["location_id"]), borough=row["borough"], name=row["zone"],
            service_zone=row["service_zone"],
            longitude=float(row["longitude"]) if row["longitude"] else None,
            latitude=float(row["latitude"]) if row["latitude"] else None))
    return tuple(zones)


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


def airport_coordinates() -> dict[str, tuple[float, float]]:
    by_id = {z.location_id: z for z in load_zones()}
    return {code: (by_id[i].longitude, by_id[i].latitude) for code, i in AIRPORT_ZONES.items()}
