"""Zip the project's packages for `spark-submit --py-files` (sources and package data, no caches)."""
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(target: str) -> None:
    out = Path(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in ("spark_ml_pipeline", "features", "pipelines", "jobs"):
            for path in sorted((ROOT / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    archive.write(path, path.relative_to(ROOT))
    temporary.replace(out)  # atomic: a half-written zip is never shipped
    print(f"built {out}")


if __name__ == "__main__":
    main(sys.argv[1])
