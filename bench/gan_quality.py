"""Quality of the fashion_gan pipeline's samples, judged by the project's own Fashion-MNIST CNN (no download).

    .venv/bin/python bench/gan_quality.py                                  # full data, the shipped settings
    .venv/bin/python bench/gan_quality.py --classifier-uri <model URI>     # reuse a trained fashion_mnist model
    .venv/bin/python bench/gan_quality.py --gan training.epochs=3 data.train_limit=20000   # a partial figure
    .venv/bin/python bench/gan_quality.py --classifier-uri <judge> --generator-uri <fashion_gan model URI>
        # judge a committed generator again (e.g. with a stronger judge) without training it

First trains the judge (the fashion_mnist CNN, ``--classifier`` overrides; skipped with ``--classifier-uri``),
then runs ``fashion_gan`` with ``judge.model_uri`` set to it. Prints one line (the judge's figures: share of
samples classified with confidence >= 0.9, entropy of the predicted-class distribution against the goal
0.9 x log(10), share classified as the requested class; the classifier on as many real test images for scale)
and appends a JSON record to bench/out/gan_quality.jsonl. The sample grids are artifacts of the GAN run.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from dl_runner import OUT, append, run_pipeline, session

CLASSIFIER = ["model=cnn", "training.epochs=2"]


def judge_again(spark, generator_uri: str, overrides: list[str]) -> dict:
    """The judge's figures of a committed generator (its model spec: the fashion_gan conf with ``overrides``)."""
    import json

    from pyspark.ml import PipelineModel

    from pipelines.fashion_gan.pipeline import judge_generator
    from spark_ml_pipeline.runtime.config import load_pipeline

    config, _ = load_pipeline("fashion_gan", ["local"], [f"store.root={OUT / 'store'}", *overrides])
    started = time.time()
    metrics = judge_generator(spark, config, PipelineModel.load(generator_uri)).metrics
    run_dir = generator_uri.removeprefix("file://").rstrip("/").rsplit("/", 1)[0]
    trained = json.loads(Path(run_dir, "config.json").read_text()) if Path(run_dir, "config.json").exists() else {}
    epochs = trained.get("training", {}).get("epochs")
    return {"pipeline": "fashion_gan", "overrides": overrides, "generator_uri": generator_uri,
            "seconds": round(time.time() - started, 1), "run_id": None,
            "metrics": {**metrics, "epochs_trained": epochs if epochs is not None else float("nan")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier-uri", help="a committed fashion_mnist model (skips training the judge)")
    parser.add_argument("--classifier", nargs="*", default=CLASSIFIER, help="fashion_mnist overrides of the judge")
    parser.add_argument("--gan", nargs="*", default=[], help="fashion_gan overrides (key=value)")
    parser.add_argument("--generator-uri", help="a committed fashion_gan model: judged, not trained")
    parser.add_argument("--run-date", default="2026-11-28")
    args = parser.parse_args()
    spark = session()
    judge_uri, judge_record = args.classifier_uri, None
    if not judge_uri:
        judge_record = run_pipeline(spark, "fashion_mnist", [*args.classifier, f"run_date={args.run_date}"])
        judge_uri = judge_record["model_uri"]
        print(f"judge   fashion_mnist {' '.join(args.classifier)}: test accuracy "
              f"{judge_record['metrics']['test_accuracy']:.4f} ({judge_record['seconds']:.0f} s) -> {judge_uri}",
              flush=True)
    gan_overrides = [*args.gan, f"judge.model_uri={judge_uri}", f"run_date={args.run_date}"]
    if args.generator_uri:
        record = judge_again(spark, args.generator_uri, gan_overrides)
    else:
        record = run_pipeline(spark, "fashion_gan", gan_overrides)
    record.update(case="fashion_gan", judge_model_uri=judge_uri, judge_record=judge_record)
    append(OUT / "gan_quality.jsonl", record)
    m = record["metrics"]
    print(f"fashion_gan {' '.join(args.gan) or '(shipped settings)'}: epochs {m['epochs_trained']} "
          f"fit {m.get('fit_seconds', float('nan')):.0f} s | confident (p >= 0.9) {m['judge_confident_share']:.3f} "
          f"(real test images {m['judge_real_confident_share']:.3f}) | class entropy {m['judge_class_entropy']:.3f}"
          f" = {m['judge_class_entropy_ratio']:.3f} x log(10) (goal >= 0.9) | requested class "
          f"{m.get('judge_requested_class_share', float('nan')):.3f} | judge accuracy on real "
          f"{m['judge_real_accuracy']:.3f} | samples {m['judge_samples']:.0f} | run {record['run_id']}", flush=True)
    assert math.isfinite(m["judge_class_entropy"])


if __name__ == "__main__":
    main()
