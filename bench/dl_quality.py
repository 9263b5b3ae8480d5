"""Quality of the deep-learning pipelines on their real test sets (full data, a few epochs, 2 ranks).

    .venv/bin/python bench/dl_quality.py [--only fashion_cnn,darcy_cnn,...]

Prints one line per case and appends JSON records to bench/out/dl_quality.jsonl.
"""
from __future__ import annotations

import argparse

from dl_runner import OUT, append, run_pipeline, session

# The Darcy training settings before issue 12 (the rows measured with them in docs/benchmarks.md).
DARCY_BEFORE = ["training.epochs=60", "training.lr_schedule=constant", "training.loss=mse",
                "training.early_stopping_patience=10"]

CASES = {
    "fashion_cnn": ("fashion_mnist", ["model=cnn", "training.epochs=6"], "test_accuracy", ">= 0.91"),
    "fashion_resnet": ("fashion_mnist", ["model=resnet", "training.epochs=10", "training.lr_schedule=cosine",
                                         "training.early_stopping_patience=0"], "test_accuracy", ">= 0.93"),
    "fashion_resnet_15": ("fashion_mnist", ["model=resnet", "training.epochs=15", "training.lr_schedule=cosine",
                                            "training.early_stopping_patience=0"], "test_accuracy", ">= 0.93"),
    "fashion_resnet_augmented": ("fashion_mnist", ["model=resnet", "training.epochs=15", "training.lr_schedule=cosine",
                                                   "training.early_stopping_patience=0", "training.augment=shift_flip"],
                                 "test_accuracy", ">= 0.93"),
    # The README's quick look, exactly as printed there.
    "fashion_quick_look": ("fashion_mnist", ["data.train_limit=5000", "training.epochs=1"], "test_accuracy",
                           ">= 0.75"),
    # The shipped default (conf/pipelines/darcy_surrogate.yaml): FNO, relative H1 loss, cosine, 100 epochs,
    # dihedral augmentation (issue 24); darcy_fno_unaugmented is the default before it.
    "darcy_fno": ("darcy_surrogate", ["model=fno"], "test_relative_l2", "<= 0.05"),
    "darcy_fno_100": ("darcy_surrogate", ["model=fno", "training.epochs=100"], "test_relative_l2", "<= 0.05"),
    "darcy_fno_unaugmented": ("darcy_surrogate", ["model=fno", "training.augment=none"], "test_relative_l2",
                              "<= 0.05"),
    "darcy_fno_l2": ("darcy_surrogate", ["model=fno", "training.loss=relative_l2"], "test_relative_l2", "<= 0.05"),
    "darcy_fno_adamw": ("darcy_surrogate", ["model=fno", "training.optimizer=adamw", "training.weight_decay=0.01"],
                        "test_relative_l2", "<= 0.05"),
    "darcy_mlp": ("darcy_surrogate", ["model=mlp", *DARCY_BEFORE], "test_relative_l2", "<= 0.05"),
    "darcy_cnn": ("darcy_surrogate", ["model=cnn", *DARCY_BEFORE], "test_relative_l2", "<= 0.05"),
    "darcy_resnet": ("darcy_surrogate", ["model=resnet", *DARCY_BEFORE], "test_relative_l2", "<= 0.05"),
    "darcy_unet": ("darcy_surrogate", ["model=unet", *DARCY_BEFORE, "training.lr_schedule=cosine",
                                       "training.early_stopping_patience=0"], "test_relative_l2", "<= 0.05"),
    "darcy_resnet_cosine": ("darcy_surrogate", ["model=resnet", *DARCY_BEFORE, "training.lr_schedule=cosine",
                                                "training.early_stopping_patience=0"], "test_relative_l2", "<= 0.05"),
    "tweets_bilstm": ("tweet_sentiment", ["model=bilstm", "training.epochs=4"], "test_macro_f1", "vs baseline"),
    "tweets_lstm": ("tweet_sentiment", ["model=lstm", "training.epochs=4"], "test_macro_f1", "vs baseline"),
    "tweets_transformer": ("tweet_sentiment", ["model=transformer", "training.epochs=4"], "test_macro_f1",
                           "accuracy >= BiLSTM 0.7385"),
    "tweets_transformer_regularised": ("tweet_sentiment", ["model=transformer", "models.transformer.dropout=0.3",
                                                           "training.learning_rate=0.001", "training.epochs=6"],
                                       "test_macro_f1", "accuracy >= BiLSTM 0.7385"),
    "tweets_bigru": ("tweet_sentiment", ["model=bigru", "training.epochs=4"], "test_macro_f1", "vs baseline"),
    "autoencoder_conv": ("fashion_autoencoder", ["training.epochs=4"], "test_reconstruction_mse", "(lower is better)"),
    # The VAE (32-64, 32 latent dimensions, kl_weight 1): also prints the test ELBO (nats per image).
    "vae": ("fashion_autoencoder", ["model=vae", "training.epochs=4"], "test_reconstruction_mse", "(lower is better)"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--run-date", default="2026-11-27")
    args = parser.parse_args()
    spark = session()
    for case in args.only.split(","):
        pipeline, overrides, key, target = CASES[case]
        record = run_pipeline(spark, pipeline, [*overrides, f"run_date={args.run_date}"])
        record["case"] = case
        append(OUT / "dl_quality.jsonl", record)
        extra = ""
        if pipeline == "tweet_sentiment":
            m = record["metrics"]
            extra = (f" | accuracy {m['test_accuracy']:.4f} vs TF-IDF+LR accuracy "
                     f"{m['baseline_tfidf_logreg_accuracy']:.4f}, macro-F1 {m['baseline_tfidf_logreg_macro_f1']:.4f}")
        if pipeline == "darcy_surrogate":
            extra = f" | 32x32 test (subsampled) {record['metrics']['test32_relative_l2']:.4f}"
            if "test32_full_relative_l2" in record["metrics"]:
                extra += f", at 32x32 {record['metrics']['test32_full_relative_l2']:.4f}"
        if "test_negative_elbo" in record["metrics"]:
            m = record["metrics"]
            extra = (f" | -ELBO {m['test_negative_elbo']:.1f} nats/image = reconstruction "
                     f"{m['test_reconstruction_nll']:.1f} + KL {m['test_kl']:.1f}")
        print(f"{case:18s} {key} {record['metrics'][key]:.4f} (target {target}) "
              f"epochs {record['metrics']['epochs_trained']} fit {record['metrics']['fit_seconds']:.0f} s{extra}",
              flush=True)


if __name__ == "__main__":
    main()
