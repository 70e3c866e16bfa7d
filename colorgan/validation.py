"""Validation during training: the held-out split scored by `colorgan evaluate`'s own function.

Logged as `val_psnr`, `val_ssim`, `val_l1` (mean |RGB| difference in [0, 1] units, as
`colorgan evaluate` reports it: half the training loss's [-1, 1] units), and per attribute
`val_condition_error_<attr>` (ΔE00) and `val_condition_accuracy_<attr>`. A metric with nothing to
judge is NaN (written as null in metrics.jsonl).
"""

from __future__ import annotations

import torch

from colorgan.evaluate import evaluate_generator, flatten, validation_references
from colorgan.recipe import Recipe


def lower_is_better(metric: str) -> bool:
    """For `train.keep_best`: `val_l1` and every `val_condition_error_<attr>` improve downwards."""
    return metric == "val_l1" or metric.startswith("val_condition_error_")


@torch.no_grad()
def validate_generator(generator, dataset, device, recipe: Recipe, batch_size: int = 32) -> dict[str, float]:
    """Score `generator` on the held-out `dataset` with `evaluate.evaluate_generator` (val_* keys)."""
    references = validation_references(dataset, recipe.data)
    result = evaluate_generator(generator, dataset, device, dataset.schema.names, references, batch_size)
    return flatten(result, "val_")
