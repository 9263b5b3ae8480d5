"""Peer table: the taxi_fare pipeline against what a user would run instead, on the same rows and machine.

    .venv/bin/python bench/peers.py --rows 1000000[,20000000] [--real] [--repeats 1] [--rounds 100] [--oom-probe]

Data, prepared once per data set and cached under bench/out/peers/<data set>/ (not timed): N synthetic trips
generated and ingested as the pipeline does (conf taxi_fare), and with --real the real TLC samples of
shared/data/real-taxi/ ingested as bench/taxi_real.py does (conf taxi_fare_real). Each is split by the pipeline's
own rule (``taxi_fare.split_trips``: a hash of the trip, or the time split of taxi_fare_real), and its train rows
(validation rows left out: no side early-stops) and test rows are written to Parquet once. Every side reads those
two directories and is timed from reading them to a test RMSE on the same test rows.

Sides, each in a fresh interpreter (a subprocess: its peak memory is its own, no side warms another):
  product  the pipeline's fit as ``train`` runs it: ``fit_pipeline`` (the feature stages + the configured
           xgboost.spark regressor, local[cores]), the test rows scored, RMSE by the pipeline's metrics.
  mllib    Spark MLlib's GBTRegressor on the same feature stages' columns (VectorAssembler, nulls as -999): the
           conf's depth, step, row subsample, bins and min child rows, its column subsample per node (XGBoost's
           is per tree); no L2 term or monotone constraint (it has neither); min(rounds, --gbt-max-iter) trees.
  pandas   the script a data scientist would write instead: pandas (pyarrow) reads the Parquet, numpy features
           equal to features/taxi.py's (the categories hashed as Spark hashes them), native ``xgboost.train``
           (hist, QuantileDMatrix) with the conf's parameters, the same rounds and nthread=cores.
  sklearn  scikit-learn HistGradientBoostingRegressor on the same numpy features (the conf's depth, rate, bins,
           L2, min child rows and monotone constraint, its column subsample per split; no row subsample: it has
           none), at sizes <= --sklearn-max-rows.

Every side uses the conf's parameters with the rounds fixed to --rounds and early stopping off. "work" is the timed
part; "process" the subprocess's whole wall time (interpreter, imports and, for Spark, the JVM's start and stop).
Peak RSS: the largest sum over the side's process tree (Python, JVM, Spark's Python workers) sampled every 0.1 s,
or the side's own peak (VmHWM) when larger. Each figure is also given as a ratio to the product's in the same run.
Prints a Markdown table per data set and writes bench/out/peers/results.json. --oom-probe adds, per synthetic
data set measured, the rows at which the pandas side would fill this machine's memory, extrapolated linearly from
its peak RSS (an estimate, not a run).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

from process_memory import TreeMemory

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "peers"
REAL_INPUT = ROOT.parent / "shared" / "data" / "real-taxi" / "tlc-yellow-samples" / "*.csv"
SIDES = ("product", "mllib", "pandas", "sklearn")
RESULT = "PEERS-RESULT "  # the line a side prints its figures on
MISSING = -999.0  # MLlib's trees take no nulls: a value no feature has
GIB = 2 ** 30


# --- the sides: each runs in its own interpreter and imports what it needs inside its function, so that no side
# loads another's libraries (the pandas side never loads pyspark, which the project's modules import) ------------

def memory(field: str) -> int:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), in bytes: of its own image (ru_maxrss
    would also carry the parent's peak across the exec)."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) * 1024


def start() -> tuple[float, int]:
    """The timed work's start, and the side's resident memory before it (interpreter, imports, session)."""
    return time.perf_counter(), memory("VmRSS")


def spark_side(task: dict):
    """The data set's conf, as the pipeline loads it, and its session (outside the timed work)."""
    from spark_ml_pipeline.runtime.config import load_config
    from spark_ml_pipeline.runtime.session import get_session

    config = load_config(task["conf"], ["local"], task["overrides"])
    return config, get_session(config.spark, config.compute)


def run_product(task: dict) -> dict:
    from features.taxi import LABEL, feature_columns
    from pipelines.taxi_fare.pipeline import taxi_feature_stages
    from spark_ml_pipeline.train.metrics import regression_metrics
    from spark_ml_pipeline.train.xgboost import WorkerLayout, fit_pipeline, xgb_estimator

    config, spark = spark_side(task)
    started, baseline = start()
    train, test = spark.read.parquet(task["train"]), spark.read.parquet(task["test"])
    estimator = xgb_estimator(config.model, feature_columns(config.features.categories), LABEL,
                              device=config.compute.device, with_validation=False,
                              layout=WorkerLayout.of(config.model, spark.sparkContext))
    model = fit_pipeline(taxi_feature_stages(config, assemble_into=None), estimator, train)
    rmse = regression_metrics(model.transform(test), LABEL)["rmse"]
    return {"work_s": time.perf_counter() - started, "rmse": rmse, "baseline_rss": baseline}


def run_mllib(task: dict) -> dict:
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import GBTRegressor

    from features.taxi import LABEL, feature_columns
    from pipelines.taxi_fare.pipeline import taxi_feature_stages
    from spark_ml_pipeline.train.metrics import regression_metrics

    config, spark = spark_side(task)
    m, columns = config.model, feature_columns(config.features.categories)
    started, baseline = start()
    train, test = spark.read.parquet(task["train"]), spark.read.parquet(task["test"])
    gbt = GBTRegressor(featuresCol="features", labelCol=LABEL, maxDepth=m.max_depth, stepSize=m.learning_rate,
                       maxIter=task["gbt_iterations"], subsamplingRate=m.subsample, maxBins=m.max_bin,
                       minInstancesPerNode=max(1, round(m.min_child_weight)), seed=m.seed,
                       featureSubsetStrategy="all" if m.colsample_bytree == 1 else str(m.colsample_bytree))
    features = PipelineModel(taxi_feature_stages(config, assemble_into=None))
    assembler = VectorAssembler(inputCols=columns, outputCol="features")

    def vectors(frame):
        return assembler.transform(features.transform(frame).na.fill(MISSING, subset=columns))

    model = gbt.fit(vectors(train))
    rmse = regression_metrics(model.transform(vectors(test)), LABEL)["rmse"]
    return {"work_s": time.perf_counter() - started, "rmse": rmse, "baseline_rss": baseline}


def spark_hash(text: str, seed: int = 42) -> int:
    """Spark's ``hash`` of a string: its Murmur3 x86_32 (``hashUnsafeBytes``: the tail bytes mixed one at a time)."""
    def mix(h: int, k: int) -> int:
        k = (k * 0xCC9E2D51) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) * 0x1B873593 & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        return (h * 5 + 0xE6546B64) & 0xFFFFFFFF

    data, h = text.encode(), seed
    aligned = len(data) - len(data) % 4
    for i in range(0, aligned, 4):
        h = mix(h, int.from_bytes(data[i:i + 4], "little"))
    for byte in data[aligned:]:
        h = mix(h, (byte - 256 if byte > 127 else byte) & 0xFFFFFFFF)  # a signed byte, widened
    h ^= len(data)
    h = (h ^ (h >> 16)) * 0x85EBCA6B & 0xFFFFFFFF
    h = (h ^ (h >> 13)) * 0xC2B2AE35 & 0xFFFFFFFF
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def numpy_features(frame, spec: dict):
    """features/taxi.py's columns, in its order, computed with numpy: zone centroids for missing coordinates, the
    pickup time's parts (Spark's day_of_week: 1 = Sunday), the haversine distance, airport flags, and each
    category hashed as the pipeline hashes it (Spark's hash of the value's text; missing: -1), so that both fit the
    same matrix. A data scientist might write ordinal codes instead: on 100,000 synthetic trips they gave a test
    RMSE of 2.45 against the hash's 2.27 (the order they put the rate codes in suits the trees less)."""
    import pandas as pd

    coordinates = {}
    for end in ("pickup", "dropoff"):
        for axis, centroids in (("longitude", spec["zone_longitudes"]), ("latitude", spec["zone_latitudes"])):
            column = frame.get(f"{end}_{axis}")
            values = np.full(len(frame), np.nan) if column is None else column.to_numpy(np.float64, na_value=np.nan)
            if f"{end}_zone" in frame:
                table = np.array(centroids, dtype=np.float64)  # JSON null -> nan
                zone = frame[f"{end}_zone"].to_numpy(np.float64, na_value=np.nan)
                known = (zone >= 0) & (zone < len(table))
                lookup = np.full(len(frame), np.nan)
                lookup[known] = table[zone[known].astype(np.int64)]
                values = np.where(np.isnan(values), lookup, values)
            coordinates[f"{end}_{axis}"] = values

    def haversine(lat1, lon1, lat2, lon2):
        lat1, lon1, lat2, lon2 = (np.radians(v) for v in (lat1, lon1, lat2, lon2))
        inner = 0.5 - np.cos(lat2 - lat1) / 2 + np.cos(lat1) * np.cos(lat2) * (1 - np.cos(lon2 - lon1)) / 2
        return spec["earth_diameter_km"] * np.arcsin(np.sqrt(np.clip(inner, 0.0, 1.0)))

    c = coordinates
    pickup = frame["pickup_datetime"].dt
    day_of_week = (pickup.dayofweek.to_numpy() + 1) % 7 + 1
    columns = {"passenger_count": frame["passenger_count"], "trip_distance": frame["trip_distance"], **c,
               "haversine_km": haversine(c["pickup_latitude"], c["pickup_longitude"], c["dropoff_latitude"],
                                         c["dropoff_longitude"]),
               "year": pickup.year, "month": pickup.month, "day": pickup.day, "day_of_week": day_of_week,
               "is_weekend": np.isin(day_of_week, (1, 7)), "hour": pickup.hour}
    for code, (lon, lat) in spec["airports"].items():  # in the pipeline's order of flag columns
        near = [haversine(c[f"{end}_latitude"], c[f"{end}_longitude"], lat, lon) <= spec["airport_radius_km"]
                for end in ("pickup", "dropoff")]
        columns[f"{code.lower()}_trip"] = near[0] | near[1]
    for name in spec["categories"]:  # integer columns with nulls come back as floats: 1.0 is Spark's "1"
        hashes = {value: spark_hash(str(int(value)) if isinstance(value, float) else str(value))
                  for value in frame[name].dropna().unique()}
        columns[f"{name}_hash"] = frame[name].map(hashes).fillna(-1)
    return pd.DataFrame({name: np.asarray(values, dtype=np.float32) for name, values in columns.items()})


def read_numpy_data(task: dict):
    """Train and test rows as a data scientist reads them: pandas over pyarrow, the columns the features need."""
    import pandas as pd
    import pyarrow.parquet as pq

    spec = task["features"]
    wanted = ["passenger_count", "trip_distance", "pickup_datetime", "fare_amount", *spec["categories"]]
    optional = [f"{end}_{part}" for end in ("pickup", "dropoff") for part in ("longitude", "latitude", "zone")]
    frames = []
    for path in (task["train"], task["test"]):
        present = set(pq.ParquetDataset(path).schema.names)
        frames.append(pd.read_parquet(path, engine="pyarrow", columns=wanted + [c for c in optional if c in present]))
    train, test = frames
    x_train, x_test = numpy_features(train, spec), numpy_features(test, spec)
    return x_train, train["fare_amount"].to_numpy(np.float32), x_test, test["fare_amount"].to_numpy(np.float64)


def monotone(names, constraints: dict) -> list[int]:
    return [constraints.get(name, 0) for name in names]


def run_pandas(task: dict) -> dict:
    import xgboost as xgb

    params, cores = task["xgboost"], task["cores"]
    started, baseline = start()
    x_train, y_train, x_test, y_test = read_numpy_data(task)
    matrix = xgb.QuantileDMatrix(x_train, label=y_train, nthread=cores, max_bin=params["max_bin"])
    booster = xgb.train({**params, "monotone_constraints": tuple(monotone(x_train.columns, task["monotone"]))},
                        matrix, num_boost_round=task["rounds"])
    prediction = booster.inplace_predict(x_test)
    return {"work_s": time.perf_counter() - started, "rmse": float(np.sqrt(np.mean((prediction - y_test) ** 2))),
            "baseline_rss": baseline}


def run_sklearn(task: dict) -> dict:
    from sklearn.ensemble import HistGradientBoostingRegressor

    params = task["xgboost"]
    started, baseline = start()
    x_train, y_train, x_test, y_test = read_numpy_data(task)
    model = HistGradientBoostingRegressor(
        max_iter=task["rounds"], learning_rate=params["eta"], max_depth=params["max_depth"], max_leaf_nodes=None,
        min_samples_leaf=max(1, round(params["min_child_weight"])), l2_regularization=params["lambda"],
        max_features=params["colsample_bytree"], max_bins=min(255, params["max_bin"]),
        monotonic_cst=monotone(x_train.columns, task["monotone"]), early_stopping=False,
        random_state=params["seed"])
    prediction = model.fit(x_train, y_train).predict(x_test)
    return {"work_s": time.perf_counter() - started, "rmse": float(np.sqrt(np.mean((prediction - y_test) ** 2))),
            "baseline_rss": baseline}


def run_side(name: str, task_file: str) -> None:
    """One side in this (fresh) interpreter; prints its figures on one line for the parent."""
    task = json.loads(Path(task_file).read_text())
    figures = {"product": run_product, "mllib": run_mllib, "pandas": run_pandas, "sklearn": run_sklearn}[name](task)
    figures["self_peak_rss"] = memory("VmHWM")
    print(RESULT + json.dumps(figures), flush=True)


# --- data preparation (once per data set, in its own Spark process) ------------------------------------------------

def prepare(task_file: str) -> None:
    """Generate (synthetic) and ingest the trips, split them by the pipeline's rule, write train and test rows."""
    from pipelines.taxi_fare import pipeline as taxi_fare
    from pipelines.taxi_fare import train as taxi_train

    task = json.loads(Path(task_file).read_text())
    config, spark = spark_side(task)
    manifest = taxi_fare.ensure_generated(spark, config)
    stats = taxi_fare.ingest(spark, config)
    splits, _ = taxi_train.split_trips(spark, config)
    splits.train.write.mode("overwrite").parquet(task["train"])
    splits.test.write.mode("overwrite").parquet(task["test"])
    prepared = {"rows_in": stats.rows_in, "rows_valid": stats.rows_valid, "rows_train": splits.train.count(),
                "rows_validation_unused": splits.validation.count(), "rows_test": splits.test.count(),
                "noise_floor_rmse": manifest["noise_floor_rmse"] if manifest else None}
    Path(task["prepared"]).write_text(json.dumps(prepared, indent=2))


# --- the run -------------------------------------------------------------------------------------------------------

def dataset_task(name: str, conf: str, extra: list[str], args) -> dict:
    """What every side of one data set is given: its files, the conf (as overrides) and the parameters the
    non-Spark sides mirror, taken from the same conf (the project's modules, here and in the Spark sides only)."""
    from features.geo import EARTH_DIAMETER_KM
    from features.taxi import AIRPORT_FLAG_COLUMNS
    from pipelines.taxi_fare import zones
    from spark_ml_pipeline.runtime.config import load_config

    folder = OUT / name
    overrides = [f"spark.master=local[{args.cores}]", f"spark.driver_memory={args.driver_memory}",
                 f"model.n_estimators={args.rounds}", "model.early_stopping_rounds=null", "report.enabled=false",
                 f"store.root={folder / 'store'}", "run_date=2026-01-01", *extra]
    config = load_config(conf, ["local"], overrides)
    m, f = config.model, config.features
    longitudes, latitudes = zones.centroid_arrays()
    airports = zones.airport_coordinates()
    return {
        "name": name, "conf": conf, "overrides": overrides, "rounds": args.rounds, "cores": args.cores,
        "gbt_iterations": min(args.rounds, args.gbt_max_iter),
        "train": str(folder / "train"), "test": str(folder / "test"), "prepared": str(folder / "prepared.json"),
        "xgboost": {"tree_method": m.tree_method, "max_depth": m.max_depth, "eta": m.learning_rate,
                    "min_child_weight": m.min_child_weight, "subsample": m.subsample,
                    "colsample_bytree": m.colsample_bytree, "lambda": m.reg_lambda, "max_bin": m.max_bin,
                    "objective": "reg:squarederror", "nthread": args.cores, "seed": m.seed},
        "monotone": dict(m.monotone_constraints),
        "features": {"categories": list(f.categories), "airport_radius_km": f.airport_radius_km,
                     "zone_longitudes": longitudes, "zone_latitudes": latitudes,
                     "earth_diameter_km": EARTH_DIAMETER_KM,
                     "airports": {code: airports[code] for code in
                                  (flag.removesuffix("_trip").upper() for flag in AIRPORT_FLAG_COLUMNS)}},
    }


def subprocess_run(command: list[str], log: Path, env: dict) -> tuple[float, int, str]:
    """Runs ``command`` (stdout and stderr to ``log``); returns its wall time, its tree's peak RSS and stdout."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=sink, text=True, env=env)
        with TreeMemory(process.pid, interval=0.1) as memory:
            stdout, _ = process.communicate()
        peak = memory.peak
        sink.write(stdout)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:])}: exit {process.returncode}; see {log}:\n"
                         + "\n".join(log.read_text().splitlines()[-30:]))
    return time.perf_counter() - started, peak, stdout


def measure(side: str, task_file: Path, log: Path, env: dict) -> dict:
    seconds, tree_peak, stdout = subprocess_run([sys.executable, __file__, "--side", side, str(task_file)], log, env)
    figures = json.loads(next(line for line in stdout.splitlines() if line.startswith(RESULT))[len(RESULT):])
    return {**figures, "process_s": seconds, "peak_rss": max(tree_peak, figures["self_peak_rss"])}


def run_dataset(task: dict, sides: list[str], repeats: int, env: dict) -> dict:
    folder = OUT / task["name"]
    folder.mkdir(parents=True, exist_ok=True)
    task_file = folder / "task.json"
    task_file.write_text(json.dumps(task, indent=2))
    if not Path(task["prepared"]).exists():
        print(f"{task['name']}: preparing the data (once; not timed)", flush=True)
        subprocess_run([sys.executable, __file__, "--prepare", str(task_file)], folder / "logs" / "prepare.log", env)
    prepared = json.loads(Path(task["prepared"]).read_text())
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for repeat in range(repeats):
        for side in sides[repeat % len(sides):] + sides[:repeat % len(sides)]:  # each side leads in turn
            figures = measure(side, task_file, folder / "logs" / f"{side}-{repeat}.log", env)
            runs[side].append(figures)
            print(f"{task['name']} repeat {repeat} {side:8s} work {figures['work_s']:7.2f} s · process "
                  f"{figures['process_s']:7.2f} s · peak {figures['peak_rss'] / GIB:5.2f} GiB · "
                  f"RMSE {figures['rmse']:.4f}", flush=True)
    summary = {side: {"work_s": statistics.median(r["work_s"] for r in found),
                      "process_s": statistics.median(r["process_s"] for r in found),
                      "peak_rss": max(r["peak_rss"] for r in found),
                      "baseline_rss": max(r["baseline_rss"] for r in found),
                      "rmse": found[0]["rmse"], "runs": found} for side, found in runs.items()}
    return {"name": task["name"], "conf": task["conf"], "rounds": task["rounds"],
            "gbt_iterations": task["gbt_iterations"], "xgboost": task["xgboost"], "monotone": task["monotone"],
            "prepared": prepared, "sides": summary}


LABELS = {
    "product": "the pipeline (fit_pipeline: feature stages + xgboost.spark, local[{cores}])",
    "mllib": "Spark MLlib GBTRegressor, same feature stages ({gbt_iterations} trees)",
    "pandas": "pandas + numpy features + native xgboost.train",
    "sklearn": "pandas + numpy features + scikit-learn HistGradientBoosting",
}


def table(result: dict, cores: int) -> str:
    p, sides = result["prepared"], result["sides"]
    x = result["xgboost"]
    floor = f" · noise floor RMSE {p['noise_floor_rmse']:.3f}" if p["noise_floor_rmse"] else ""
    lines = [f"### {result['name']}: train {p['rows_train']:,} rows, test {p['rows_test']:,} rows "
             f"(conf {result['conf']}: depth {x['max_depth']}, eta {x['eta']}, subsample {x['subsample']}, "
             f"colsample {x['colsample_bytree']}, {result['rounds']} rounds, {cores} threads{floor})", "",
             "| side | work s | × product | process s | × product | peak RSS GiB | × product | test RMSE "
             "| × product |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = sides.get("product")
    for side, s in sides.items():
        def ratio(key: str) -> str:
            return f"{s[key] / base[key]:.2f}" if base else "–"
        lines.append(f"| {LABELS[side].format(cores=cores, gbt_iterations=result['gbt_iterations'])} "
                     f"| {s['work_s']:.1f} | {ratio('work_s')} | {s['process_s']:.1f} | {ratio('process_s')} "
                     f"| {s['peak_rss'] / GIB:.2f} | {ratio('peak_rss')} | {s['rmse']:.4f} | {ratio('rmse')} |")
    return "\n".join(lines)


def oom_estimate(results: list[dict]) -> str:
    """Rows at which the pandas side's peak RSS reaches this machine's memory: a straight line through its peaks
    at the synthetic sizes measured (through its post-import RSS at 0 rows when only one size was measured)."""
    measured = [(r["prepared"]["rows_in"], r["sides"]["pandas"]) for r in results
                if r["name"].startswith("synthetic") and "pandas" in r["sides"]]
    if not measured:
        return "--oom-probe: no synthetic data set with the pandas side measured"
    rows = [n for n, _ in measured]
    peaks = [s["peak_rss"] for _, s in measured]
    caveat = ""
    if len(set(rows)) == 1:
        rows, peaks = [0, *rows], [measured[0][1]["baseline_rss"], *peaks]
        caveat = "; one size only, so the line starts at its RSS before the work: fixed costs count as per-trip ones"
    slope, intercept = np.polyfit(rows, peaks, 1)
    memory = psutil.virtual_memory().total
    estimate = (memory - intercept) / slope
    return (f"pandas + xgboost script, out of memory at about {estimate:,.0f} trips (EXTRAPOLATED, not run: a line "
            f"through its peak RSS at {', '.join(f'{n:,}' for n, _ in measured)} trips, {slope * 1e6 / GIB:.2f} GiB "
            f"per million trips + {intercept / GIB:.2f} GiB, reaching this machine's {memory / GIB:.1f} GiB{caveat})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000", help="synthetic sizes, comma-separated (none: '')")
    parser.add_argument("--real", action="store_true", help="also the real TLC samples (240,000 trips)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--gbt-max-iter", type=int, default=50, help="MLlib GBT's trees: min(rounds, this)")
    parser.add_argument("--sklearn-max-rows", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, default=2, help="local[cores] and every side's threads")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--oom-probe", action="store_true",
                        help="estimate (extrapolate, not run) the pandas side's out-of-memory size")
    parser.add_argument("--side", nargs=2, metavar=("SIDE", "TASK"), help=argparse.SUPPRESS)
    parser.add_argument("--prepare", metavar="TASK", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return run_side(*args.side)
    if args.prepare:
        return prepare(args.prepare)

    requested = {s for s in args.sides.split(",") if s}
    if requested - set(SIDES):
        parser.error(f"--sides: unknown {', '.join(sorted(requested - set(SIDES)))} (of {', '.join(SIDES)})")
    sides = [s for s in SIDES if s in requested]  # the product first, in every table
    # Every side's threads held to --cores (scikit-learn's OpenMP too); Spark's Python workers import the project.
    env = {**os.environ, "OMP_NUM_THREADS": str(args.cores), "PYTHONPATH": str(ROOT)}
    datasets = [(rows, dataset_task(f"synthetic-{rows}", "taxi_fare", [f"generate.rows={rows}"], args))
                for rows in (int(r) for r in args.rows.split(",") if r)]
    if args.real:
        datasets.append((None, dataset_task("real", "taxi_fare_real", [f"ingest.input={REAL_INPUT}"], args)))
    results = []
    for rows, task in datasets:
        chosen = [s for s in sides if s != "sklearn" or rows is None or rows <= args.sklearn_max_rows]
        results.append(run_dataset(task, chosen, args.repeats, env))
    report = [table(r, args.cores) for r in results]
    if args.oom_probe:
        report.append(oom_estimate(results))
    print("\n" + "\n\n".join(report))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(
        {"command": " ".join(sys.argv[1:]), "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
         "load_average": os.getloadavg(), "cores": args.cores, "results": results, "report": report}, indent=2))


if __name__ == "__main__":
    main()
