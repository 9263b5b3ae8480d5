"""How a Keras fit trains: one frozen, validated object carried whole from the configuration to every rank.

:class:`KerasTrainingSettings` is the pipelines' ``training`` section (which adds how the pipeline launches and
splits), the estimator's one ``trainingSettings`` Param and the ``training`` of every rank's spec. A new setting
is one field here, with its default and its validation: the config accepts it, the estimator carries it and the
rank functions read it, with no other code in between.

Spark-free: the Horovod ranks unpickle it.
"""
from __future__ import annotations

from typing import Literal, Optional, get_args

from pydantic import ConfigDict, Field, PositiveInt, model_validator

from spark_ml_pipeline.runtime.config_models import Section

Augmentation = Literal["none", "shift_flip", "dihedral"]
AUGMENTATIONS: tuple[str, ...] = get_args(Augmentation)


class KerasTrainingSettings(Section):
    """How every rank trains; ``learning_rate`` and ``batch_size`` are per rank (the rate is scaled by the number
    of ranks). Frozen: what the estimator was given is what the ranks train with."""

    model_config = ConfigDict(frozen=True)

    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)  # adamw's decoupled weight decay; adam and sgd ignore it
    batch_size: PositiveInt = 128
    epochs: PositiveInt = 3
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: to 0 by the last epoch
    warmup_epochs: int = Field(0, ge=0)  # linear warm-up to the rank-scaled rate
    early_stopping_patience: int = Field(3, ge=0)  # 0 = off
    # Random transformations of training batches (spark_ml_pipeline.train.augmentation): shift_flip for images,
    # dihedral for square fields with field targets (the square's 8 symmetries, input and target together).
    augment: Augmentation = "none"
    augment_channels: Optional[PositiveInt] = None  # dihedral: input channels that move (the rest stay); null: all
    # Batches that re-estimate batch-norm statistics with the final weights (short fits need it); 0 = off.
    recalibrate_batch_norm: int = Field(50, ge=0)
    shuffle_buffer: PositiveInt = 10_000
    seed: int = 0

    @model_validator(mode="after")
    def _warmup_within_epochs(self) -> "KerasTrainingSettings":
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs})")
        return self

    @classmethod
    def from_section(cls, section: Section, **overrides) -> "KerasTrainingSettings":
        """The settings a configuration section names (its fields of the same names; the others at their
        defaults), with ``overrides``: a ``training`` section, which extends this class, gives every one."""
        named = section.model_dump(include=set(cls.model_fields) & set(type(section).model_fields))
        return cls(**{**named, **overrides})
