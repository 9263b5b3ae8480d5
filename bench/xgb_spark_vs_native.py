"""Benchmark: distributed ``xgboost.spark.SparkXGBRegressor`` fit vs native ``xgboost.train``.

Both sides read the same synthetic Parquet file (written once under bench/out/) and train the same
booster (hist, same depth/eta/bins/rounds) on the same number of cores.  Native time = Parquet ->
numpy + QuantileDMatrix + train; Spark time = defining the DataFrame + ``fit`` (which scans the
Parquet).  Runs are interleaved (native, spark variant A, spark variant B, native, ...) because the
machine is shared and noisy; every run also records how much CPU processes outside this benchmark
used meanwhile ("foreign load"), and medians over all runs and over clean runs are reported.

Spark variants are named configurations (``VARIANTS``): Spark session conf, SparkXGBRegressor
arguments and feature layout.  ``default`` is a plain SparkXGBRegressor (num_workers=1) on a
``local[2]`` session; ``tuned`` is the fastest configuration found.  ``--variants all`` runs a survey.

Quick run:   PYTHONPATH=/work/main .venv/bin/python bench/xgb_spark_vs_native.py --rows 200000 --repeats 1
Full run:    PYTHONPATH=/work/main .venv/bin/python bench/xgb_spark_vs_native.py

Where the Spark time goes (xgboost 3.2 / pyspark 4.3, 1M x 20, 2 cores; see xgboost/spark/core.py
and data.py):

* nthread = spark.task.cpus.  With the defaults (task.cpus=1, num_workers=1) xgboost trains on ONE
  thread: this alone makes the default ~2x slower than native.  num_workers=2 x 1 cpu is worse still
  on one machine: per-node histograms are allreduced between the two processes over loopback TCP,
  so boosting is slower than one single-threaded worker.  One worker with spark.task.cpus=<cores>
  trains as fast as native.
* xgboost.spark repartitions (a full shuffle, round-robin with a sort) whenever the input's
  partition count != num_workers.  ``df.coalesce(n)`` cannot be used instead: Spark rejects it in a
  barrier stage (BarrierJobUnsupportedRDDChainException).  For a Parquet scan,
  spark.sql.files.maxPartitionNum=<num_workers> makes the scan produce the right count.
* Data path: the JVM scans Parquet and writes Arrow batches, one thread per task; the Python worker
  converts each batch to pandas.  An array<float> column costs an extra per-row object conversion
  plus np.stack per batch; a list of float columns (features_col=[...]) does not.  Bigger Arrow
  batches (arrow.maxRecordsPerBatch=1e6) roughly halved the transfer and slightly sped up the
  QuantileDMatrix build (2 batches instead of 100).
* Fixed costs that configuration cannot remove: driver planning (~0.3 s); Spark's
  BarrierTaskContext polls with a hard-coded Thread.sleep(1000), and xgboost.spark makes three
  barrier syncs per fit (barrier, allGather, barrier), costing 0-3 s (typically 1-2 s); sending the
  model back to the driver (~0.1-0.3 s).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent / "out"
LOOPBACK = "127.0.0.1"
CORES = 2

# --------------------------------------------------------------------------------------------------
# Spark variants.  ``conf`` is applied on top of BASE_SPARK_CONF when the session is (re)created
# (spark.task.cpus cannot change on a running SparkContext, so a variant with a different conf gets a
# fresh session, warmed up by one tiny untimed fit); ``estimator`` goes to SparkXGBRegressor;
# ``features`` is "cols" (features_col=[...], a list of float columns), "array" (one array<float>
# column, what spark_ml_pipeline/train/xgboost.py uses) or "vector" (VectorAssembler output).
#
# Name scheme: w<num_workers>_cpu<spark.task.cpus>_<features>[_1split][_bigbatch]
#   _1split   spark.sql.files.maxPartitionNum=<num_workers>: the Parquet scan yields exactly
#             num_workers partitions, so xgboost.spark skips its repartition (a full shuffle).
#             (df.coalesce(n) is NOT an option: Spark rejects coalesce inside a barrier stage,
#             BarrierJobUnsupportedRDDChainException.)
#   _bigbatch spark.sql.execution.arrow.maxRecordsPerBatch=1000000 (default 10000): fewer, bigger
#             Arrow batches into the Python worker (still capped by arrow.maxBytesPerBatch, 64 MiB).
# --------------------------------------------------------------------------------------------------
BASE_SPARK_CONF = {
    "spark.master": f"local[{CORES}]",
    "spark.driver.host": LOOPBACK,
    "spark.driver.bindAddress": LOOPBACK,
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.pyspark.python": sys.executable,
    "spark.pyspark.driver.python": sys.executable,
    "spark.driver.memory": "6g",
}


def _variant(workers: int, task_cpus: int, features: str, one_split: bool = False,
             big_batch: bool = False, batch: int | None = None) -> dict:
    conf = {}
    if task_cpus != 1:
        conf["spark.task.cpus"] = str(task_cpus)
    if one_split:
        conf["spark.sql.files.maxPartitionNum"] = str(workers)
    if big_batch:
        batch = 1_000_000
    if batch:
        conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(batch)
    return dict(conf=conf, estimator=dict(num_workers=workers), features=features)


VARIANTS: dict[str, dict] = {}
for _w, _c in ((1, 1), (1, CORES), (CORES, 1)):
    for _f in ("array", "cols", "vector"):
        for _s in (False, True):
            for _b in (False, True):
                _name = f"w{_w}_cpu{_c}_{_f}" + ("_1split" if _s else "") + ("_bigbatch" if _b else "")
                VARIANTS[_name] = _variant(_w, _c, _f, _s, _b)
for _f in ("array", "cols"):
    VARIANTS[f"w1_cpu{CORES}_{_f}_1split_batch100k"] = _variant(1, CORES, _f, True, batch=100_000)
for _f in ("array", "cols"):
    # the whole partition in one Arrow batch (maxBytesPerBatch default 64 MiB would split it)
    VARIANTS[f"w1_cpu{CORES}_{_f}_1split_onebatch"] = _variant(1, CORES, _f, True, batch=10_000_000)
    VARIANTS[f"w1_cpu{CORES}_{_f}_1split_onebatch"]["conf"]["spark.sql.execution.arrow.maxBytesPerBatch"] = "1g"
# Out of the box: num_workers=1 and spark.task.cpus=1, so xgboost trains with nthread=1.
VARIANTS["default"] = VARIANTS["w1_cpu1_array"]
# Fastest configuration found: one worker using every core, no repartition shuffle, float columns,
# big Arrow batches (see "Where the Spark time goes" in the module docstring).
VARIANTS["tuned"] = VARIANTS[f"w1_cpu{CORES}_cols_1split_bigbatch"]
# What ``--variants all`` runs (the full cross product is too slow for one run).
SURVEY = ["default", f"w{CORES}_cpu1_array", f"w{CORES}_cpu1_cols", f"w1_cpu{CORES}_array", f"w1_cpu{CORES}_cols",
          f"w1_cpu{CORES}_array_bigbatch", f"w1_cpu{CORES}_array_1split", f"w1_cpu{CORES}_cols_1split",
          f"w1_cpu{CORES}_vector_1split", f"w1_cpu{CORES}_array_1split_bigbatch", "tuned"]


# --------------------------------------------------------------------------------------------------
# Background-load accounting.  The machine is shared (other Spark jobs / tests may be running), and
# xgboost's OpenMP loops slow down badly when a core is taken away, so every timed run records how
# many CPU-seconds processes OUTSIDE this benchmark's process tree used during it ("foreign CPU").
# --------------------------------------------------------------------------------------------------
_CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_cpu_s() -> float:
    with open("/proc/stat", encoding="ascii") as fh:
        v = [int(x) for x in fh.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / _CLK  # minus idle and iowait


def _tree_cpu_s() -> dict[int, float]:
    """CPU seconds (user+system) of every live process descending from this one (JVM, Python workers)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                rest = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / _CLK)  # ppid, cpu
    mine, frontier = {os.getpid()}, [os.getpid()]
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in mine:
                mine.add(child)
                frontier.append(child)
    return {pid: stats[pid][1] for pid in mine if pid in stats}


class CpuMonitor:
    """Foreign CPU-seconds between start() and stop(): system busy time minus this process tree's."""

    def start(self) -> "CpuMonitor":
        self.t, self.busy, self.tree = time.perf_counter(), _busy_cpu_s(), _tree_cpu_s()
        return self

    def stop(self) -> dict:
        wall = time.perf_counter() - self.t
        busy = _busy_cpu_s() - self.busy
        tree_now = _tree_cpu_s()
        own = sum(cpu - self.tree.get(pid, 0.0) for pid, cpu in tree_now.items())
        foreign = max(0.0, busy - own)
        return {"foreign_cpu_s": foreign, "foreign_cores": foreign / wall if wall > 0 else 0.0, "own_cpu_s": own}


def wait_for_quiet(max_wait_s: float, threshold_cores: float = 0.25) -> float:
    """Wait (up to max_wait_s) until foreign load over a 1 s sample is below threshold; return it."""
    deadline = time.perf_counter() + max_wait_s
    while True:
        mon = CpuMonitor().start()
        time.sleep(1.0)
        load = mon.stop()["foreign_cores"]
        if load < threshold_cores or time.perf_counter() >= deadline:
            return load


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def feature_names(n_features: int) -> list[str]:
    return [f"f{i:02d}" for i in range(n_features)]


def make_data(rows: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic smooth nonlinear regression target plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(rows, n_features)).astype(np.float32)
    x = X.astype(np.float64)
    weights = rng.normal(0.0, 0.3, size=n_features)
    y = (np.sin(np.pi * x[:, 0] * x[:, 1])
         + 2.0 * (x[:, 2] - 0.25) ** 2
         + 1.5 * np.tanh(2.0 * x[:, 3]) * x[:, 4]
         + np.exp(0.5 * x[:, 5])
         + np.cos(3.0 * x[:, 6] + x[:, 7])
         + np.tanh(x) @ weights
         + rng.normal(0.0, 0.1, size=rows))
    return X, y.astype(np.float32)


def ensure_parquet(rows: int, n_features: int, seed: int, regen: bool = False) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = OUT_DIR / f"xgb_bench_{rows}x{n_features}_s{seed}.parquet"
    if path.exists() and not regen:
        return path
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    X, y = make_data(rows, n_features, seed)
    cols = {name: pa.array(X[:, i]) for i, name in enumerate(feature_names(n_features))}
    cols["label"] = pa.array(y)
    tmp = path.with_suffix(".tmp")
    # Several row groups so Spark can split the file across tasks like a normal Spark-written input.
    pq.write_table(pa.table(cols), tmp, row_group_size=131_072, compression="snappy")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------------
# Native side
# --------------------------------------------------------------------------------------------------
def booster_params(args) -> dict:
    return {"objective": "reg:squarederror", "tree_method": "hist", "max_depth": args.max_depth,
            "eta": args.eta, "max_bin": args.max_bin, "seed": 0}


def load_numpy(path: Path, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    X = np.empty((table.num_rows, n_features), dtype=np.float32)
    for i, name in enumerate(feature_names(n_features)):
        X[:, i] = table.column(name).to_numpy()
    y = table.column("label").to_numpy()
    return X, y


def run_native(path: Path, args) -> dict:
    import xgboost as xgb

    quiet = wait_for_quiet(args.quiet_wait)
    mon = CpuMonitor().start()
    t0 = time.perf_counter()
    X, y = load_numpy(path, args.features)
    t1 = time.perf_counter()
    if args.native_dmatrix == "qdm":
        dtrain = xgb.QuantileDMatrix(X, y, nthread=args.native_nthread, max_bin=args.max_bin)
    else:
        dtrain = xgb.DMatrix(X, y, nthread=args.native_nthread)
    t2 = time.perf_counter()
    params = {**booster_params(args), "nthread": args.native_nthread}
    booster = xgb.train(params, dtrain, num_boost_round=args.rounds)
    t3 = time.perf_counter()
    load = mon.stop()
    rmse = check_rmse(booster, X, y)
    return {"load_s": t1 - t0, "dmatrix_s": t2 - t1, "train_s": t3 - t2, "total_s": t3 - t0,
            "rmse_check": rmse, "pre_run_foreign_cores": quiet, **load}


def check_rmse(booster, X: np.ndarray, y: np.ndarray, n: int = 100_000) -> float:
    """Sanity check (untimed): training RMSE on the first n rows, to confirm both sides learn alike."""
    import xgboost as xgb

    pred = booster.predict(xgb.DMatrix(X[:n], nthread=CORES, feature_names=booster.feature_names))
    return float(np.sqrt(np.mean((pred - y[:n]) ** 2)))


# --------------------------------------------------------------------------------------------------
# Spark side
# --------------------------------------------------------------------------------------------------
class _Session:
    spark = None
    conf: dict | None = None


def get_spark(conf: dict):
    """Return a local SparkSession with exactly ``conf``; restart the context if it differs."""
    from pyspark.sql import SparkSession

    if _Session.spark is not None and _Session.conf == conf:
        return _Session.spark, False
    if _Session.spark is not None:
        _Session.spark.stop()
        _Session.spark = None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    builder = SparkSession.builder.appName("xgb_spark_vs_native")
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    _Session.spark, _Session.conf = spark, conf
    return spark, True


class PhaseTimer:
    """xgboost TrainingCallback (pickled to the Spark worker) that records wall-clock timestamps at the
    start and end of boosting, so a Spark fit can be split into data/DMatrix, train and collect."""

    def __new__(cls, path: str):
        import xgboost as xgb

        class _CB(xgb.callback.TrainingCallback):
            def __init__(self, out: str):
                super().__init__()
                self.out = out

            def _write(self, event: str) -> None:
                import xgboost.collective as coll

                rank = coll.get_rank() if coll.is_distributed() else 0
                with open(self.out, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"event": event, "rank": rank, "t": time.time()}) + "\n")

            def before_training(self, model):
                self._write("before_training")
                return model

            def after_training(self, model):
                self._write("after_training")
                return model

        return _CB(path)


def spark_input(spark, path: Path, variant: dict, n_features: int):
    """The DataFrame and features_col argument for a variant (lazy: reading happens inside fit)."""
    from pyspark.sql import functions as F

    names = feature_names(n_features)
    df = spark.read.parquet(str(path))
    form = variant["features"]
    if form == "cols":
        features = names
    elif form == "array":
        df = df.select(F.array(*[F.col(c) for c in names]).alias("features"), "label")
        features = "features"
    elif form == "vector":
        from pyspark.ml.feature import VectorAssembler

        df = VectorAssembler(inputCols=names, outputCol="features").transform(df).select("features", "label")
        features = "features"
    else:
        raise ValueError(form)
    return df, features


def spark_features_col(variant: dict, n_features: int):
    return feature_names(n_features) if variant["features"] == "cols" else "features"


def run_spark(path: Path, args, name: str) -> dict:
    from xgboost.spark import SparkXGBRegressor

    variant = VARIANTS[name]
    conf = {**BASE_SPARK_CONF, **variant["conf"]}
    spark, fresh = get_spark(conf)
    if fresh and not args.no_warmup:
        warmup(spark, path, args, variant)

    phase_file = OUT_DIR / f"phases_{os.getpid()}.jsonl"
    phase_file.unlink(missing_ok=True)
    est = SparkXGBRegressor(
        features_col=spark_features_col(variant, args.features), label_col="label", tree_method="hist",
        max_depth=args.max_depth, learning_rate=args.eta, max_bin=args.max_bin, n_estimators=args.rounds,
        random_state=0, verbose=False, callbacks=[PhaseTimer(str(phase_file))], **variant["estimator"])
    quiet = wait_for_quiet(args.quiet_wait)
    mon = CpuMonitor().start()
    # Timed from here: defining the DataFrame (Parquet footer/schema read) is part of "loading",
    # just as pq.read_table is on the native side; the actual scan runs inside fit.
    t0_wall, t0 = time.time(), time.perf_counter()
    df, _ = spark_input(spark, path, variant, args.features)
    model = est.fit(df)
    fit_s = time.perf_counter() - t0
    t_end_wall = time.time()
    load = mon.stop()

    out = {"fit_s": fit_s, "fresh_session": fresh, "pre_run_foreign_cores": quiet, **load}
    try:
        events = [json.loads(line) for line in phase_file.read_text().splitlines()]
        before = min(e["t"] for e in events if e["event"] == "before_training")
        after = max(e["t"] for e in events if e["event"] == "after_training")
        out.update(to_train_start_s=before - t0_wall, train_s=after - before, after_train_s=t_end_wall - after)
    except (OSError, ValueError):
        pass
    phase_file.unlink(missing_ok=True)
    if args.check:
        X, y = _check_data(path, args.features)
        out["rmse_check"] = check_rmse(model.get_booster(), X, y)
    return out


_CHECK_CACHE: dict = {}


def _check_data(path: Path, n_features: int):
    if path not in _CHECK_CACHE:
        _CHECK_CACHE.clear()
        _CHECK_CACHE[path] = load_numpy(path, n_features)
    return _CHECK_CACHE[path]


def warmup(spark, path: Path, args, variant: dict) -> None:
    """One tiny untimed fit on a fresh session: starts the Python worker daemon and imports xgboost in
    it, which a long-lived session has already paid for."""
    from xgboost.spark import SparkXGBRegressor

    df, features = spark_input(spark, path, variant, args.features)
    df = df.limit(2000).repartition(variant["estimator"]["num_workers"])
    SparkXGBRegressor(features_col=features, label_col="label", tree_method="hist", n_estimators=2,
                      verbose=False, **variant["estimator"]).fit(df)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--max-depth", type=int, default=8)
    p.add_argument("--eta", type=float, default=0.1)
    p.add_argument("--max-bin", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--variants", default="default,tuned",
                   help="comma-separated Spark variants, or 'all' (choices: %s)" % ", ".join(VARIANTS))
    p.add_argument("--native-nthread", type=int, default=CORES, help="threads for native xgboost")
    p.add_argument("--native-dmatrix", choices=("qdm", "dmatrix"), default="qdm")
    p.add_argument("--no-warmup", action="store_true", help="do not warm up a fresh Spark session")
    p.add_argument("--check", action="store_true", help="also compute an (untimed) RMSE sanity check")
    p.add_argument("--regen", action="store_true", help="rewrite the Parquet input")
    p.add_argument("--quiet-wait", type=float, default=20.0,
                   help="before each timed run wait up to this many seconds for other processes to go "
                        "quiet (<0.25 cores); 0 disables")
    p.add_argument("--clean-threshold", type=float, default=0.15,
                   help="runs with less foreign load than this many cores count as 'clean'")
    p.add_argument("--omp-wait-policy", choices=("default", "passive", "active"), default="default",
                   help="set OMP_WAIT_POLICY for native xgboost and the Spark Python workers alike "
                        "(passive makes OpenMP far less sensitive to other processes using the cores)")
    p.add_argument("--json", default=str(OUT_DIR / "xgb_spark_vs_native.json"))
    args = p.parse_args(argv)

    names = SURVEY if args.variants == "all" else [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")

    if args.omp_wait_policy != "default":
        # Must be set before libgomp is loaded (first xgboost import); inherited by the Spark JVM and
        # its Python workers, which are started later by this process.
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    import logging

    import pyspark
    import xgboost

    # xgboost.spark logs every fit at INFO on the driver; keep the console for the benchmark's lines.
    logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)

    t = time.perf_counter()
    path = ensure_parquet(args.rows, args.features, args.seed, args.regen)
    print(f"data: {path} ({args.rows} x {args.features}, {path.stat().st_size / 1e6:.1f} MB, "
          f"ready in {time.perf_counter() - t:.1f}s)")
    print(f"xgboost {xgboost.__version__}, pyspark {pyspark.__version__}, python {platform.python_version()}, "
          f"cores {CORES}, rounds {args.rounds}, max_depth {args.max_depth}, max_bin {args.max_bin}, "
          f"native {args.native_dmatrix} nthread {args.native_nthread}, OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    for n in names:
        v = VARIANTS[n]
        print(f"spark variant {n!r}: conf={v['conf'] or '{}'} estimator={v['estimator']} "
              f"features={v['features']}")
    print(f"base spark conf: { {k: v for k, v in BASE_SPARK_CONF.items() if 'python' not in k} }", flush=True)

    native: list[dict] = []
    spark: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.repeats):
        res = run_native(path, args)
        native.append(res)
        print(f"[{r + 1}/{args.repeats}] native          total {res['total_s']:6.2f}s  (load {res['load_s']:.2f}"
              f"  dmatrix {res['dmatrix_s']:.2f}  train {res['train_s']:.2f})  rmse {res['rmse_check']:.4f}"
              f"  [own cpu {res['own_cpu_s']:.1f}s, foreign load {res['foreign_cores']:.2f} cores]",
              flush=True)
        for n in names:
            res = run_spark(path, args, n)
            spark[n].append(res)
            extra = ""
            if "train_s" in res:
                extra = (f"  (to train start {res['to_train_start_s']:.2f}  train {res['train_s']:.2f}"
                         f"  after {res['after_train_s']:.2f})")
            if "rmse_check" in res:
                extra += f"  rmse {res['rmse_check']:.4f}"
            extra += f"  [own cpu {res['own_cpu_s']:.1f}s, foreign load {res['foreign_cores']:.2f} cores]"
            print(f"[{r + 1}/{args.repeats}] spark {n:<10s} fit   {res['fit_s']:6.2f}s{extra}", flush=True)
    if _Session.spark is not None:
        _Session.spark.stop()

    clean = args.clean_threshold
    native_med = median([x["total_s"] for x in native])
    native_clean = [x["total_s"] for x in native if x["foreign_cores"] < clean]
    summary = {"native_median_s": native_med,
               "native_median_parts_s": {k: median([x[k] for x in native]) for k in ("load_s", "dmatrix_s", "train_s")},
               "native_clean_median_s": median(native_clean), "native_clean_runs": len(native_clean),
               "clean_threshold_cores": clean, "spark": {}}
    print(f"\nnative            median total {native_med:6.2f}s  "
          + "  ".join(f"{k} {v:.2f}" for k, v in summary["native_median_parts_s"].items())
          + f"   | clean runs (foreign < {clean} cores): {len(native_clean)}/{len(native)}, "
            f"median {median(native_clean):.2f}s")
    for n in names:
        runs = spark[n]
        med = median([x["fit_s"] for x in runs])
        ratio = med / native_med
        paired = median([s_["fit_s"] / nat["total_s"] for s_, nat in zip(runs, native)])
        parts = {k: median([x[k] for x in runs if k in x]) for k in ("to_train_start_s", "train_s", "after_train_s")}
        clean_fits = [x["fit_s"] for x in runs if x["foreign_cores"] < clean]
        clean_ratio = median(clean_fits) / summary["native_clean_median_s"] if clean_fits and native_clean else float("nan")
        summary["spark"][n] = {"median_fit_s": med, "ratio_of_medians": ratio, "median_of_paired_ratios": paired,
                               "median_parts_s": parts, "clean_median_fit_s": median(clean_fits),
                               "clean_runs": len(clean_fits), "clean_ratio_of_medians": clean_ratio}
        print(f"spark {n:<11s} median fit   {med:6.2f}s  ratio spark/native {ratio:.2f} "
              f"(median of paired ratios {paired:.2f})  "
              + "  ".join(f"{k} {v:.2f}" for k, v in parts.items())
              + f"   | clean runs: {len(clean_fits)}/{len(runs)}, median {median(clean_fits):.2f}s, "
                f"ratio {clean_ratio:.2f}")

    final = "tuned" if "tuned" in names else names[-1]
    fin = summary["spark"][final]
    line = (f"ratio spark/native (median of {args.repeats}): {fin['ratio_of_medians']:.2f}  "
            f"(spark {fin['median_fit_s']:.2f} s, native {native_med:.2f} s)  [spark variant: {final}]")
    if "default" in names and final != "default":
        d = summary["spark"]["default"]
        line += f"  default: {d['ratio_of_medians']:.2f} ({d['median_fit_s']:.2f} s)"
    print(line)

    result = {
        "args": vars(args), "data": str(path), "cores": CORES,
        "versions": {"xgboost": xgboost.__version__, "pyspark": pyspark.__version__,
                     "python": platform.python_version()},
        "base_spark_conf": {k: v for k, v in BASE_SPARK_CONF.items()},
        "variants": {n: VARIANTS[n] for n in names},
        "runs": {"native": native, "spark": spark}, "summary": summary, "summary_line": line,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
