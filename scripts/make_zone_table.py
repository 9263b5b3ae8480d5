"""Build pipelines/taxi_fare/resources/taxi_zones.csv from the TLC zone lookup (scripts/taxi_zone_lookup.csv.in).

The public lookup has zone ids, boroughs and names but no coordinates, and the zone shapefile
cannot be fetched here. Centroids are therefore *approximate*: the three airports sit at their
real coordinates; every other zone is placed deterministically (by its id) inside its borough's
rough extent (Manhattan along its spine). Good enough for distance features and the data
generator; swap in shapefile centroids for geographic analysis.
"""
import csv
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRPORTS = {1: (-74.1745, 40.6895), 132: (-73.7781, 40.6413), 138: (-73.8740, 40.7769)}
BOROUGH_BOXES = {  # lon_min, lon_max, lat_min, lat_max
    "Brooklyn": (-74.02, -73.87, 40.58, 40.70),
    "Queens": (-73.94, -73.72, 40.60, 40.78),
    "Bronx": (-73.92, -73.79, 40.81, 40.90),
    "Staten Island": (-74.22, -74.07, 40.52, 40.63),
}
MANHATTAN_SPINE = ((-74.012, 40.706), (-73.926, 40.868))


def unit(location_id: int, salt: str) -> float:
    digest = hashlib.sha256(f"{location_id}:{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def centroid(location_id: int, borough: str):
    if location_id in AIRPORTS:
        return AIRPORTS[location_id]
    if borough == "Manhattan":
        (lon0, lat0), (lon1, lat1) = MANHATTAN_SPINE
        t, offset = unit(location_id, "t"), (unit(location_id, "o") - 0.5) * 0.012
        return lon0 + t * (lon1 - lon0) + offset, lat0 + t * (lat1 - lat0) - offset * 0.5
    if borough in BOROUGH_BOXES:
        lon_min, lon_max, lat_min, lat_max = BOROUGH_BOXES[borough]
        return (lon_min + unit(location_id, "x") * (lon_max - lon_min),
                lat_min + unit(location_id, "y") * (lat_max - lat_min))
    return None, None  # 264/265: unknown zones have no location


def main() -> None:
    rows = list(csv.reader((ROOT / "scripts" / "taxi_zone_lookup.csv.in").open()))
    out = ROOT / "pipelines" / "taxi_fare" / "resources" / "taxi_zones.csv"
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["location_id", "borough", "zone", "service_zone", "longitude", "latitude"])
        for location_id, borough, zone, service_zone in rows:
            lon, lat = centroid(int(location_id), borough)
            writer.writerow([location_id, borough, zone, service_zone,
                             "" if lon is None else f"{lon:.5f}", "" if lat is None else f"{lat:.5f}"])


if __name__ == "__main__":
    main()
