"""What the taxi tests share: the quarantine reason each defect the generator writes must get."""
import pytest

# Which quarantine reason each generated defect must produce.
EXPECTED_REASON = {
    "negative_fare": "fare_out_of_range", "absurd_fare": "fare_out_of_range",
    "zero_distance": "distance_out_of_range", "outside_nyc": "location_out_of_range",
    "null_pickup_time": "missing_value", "bad_passenger_count": "passenger_count_out_of_range",
    "malformed_line": "malformed_line",
}


def reasons_of_defects(manifest) -> dict[str, int]:
    """The rows each quarantine reason must hold, from the generator's manifest of defects."""
    counts = {}
    for kind, n in manifest.dirty_rows.items():
        counts[EXPECTED_REASON[kind]] = counts.get(EXPECTED_REASON[kind], 0) + n
    return counts


@pytest.fixture(scope="session")
def expected_reasons():
    """``expected_reasons(manifest)`` -> {reason: rows} the generated defects must be quarantined as."""
    return reasons_of_defects
