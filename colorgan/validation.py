"""Validation during training: the held-out split scored by `colorgan evaluate`'s own function.

Logged as `val_psnr`, `val_ssim`, `val_l1` (mean |RGB| difference in [0, 1] units, as
`colorgan evaluate` reports it: half the training loss's [-1, 1] units), and per attribute
`val_condition_error_<attr>` (ΔE00) and `val_condition_accuracy_<attr>`. A metric with nothing to
judge is NaN (written as null in metrics.jsonl).
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

import torch

from colorgan.evaluate import character_dataset, evaluate_generator, flatten, references_of
from colorgan.metrics import References
from colorgan.recipe import DataConfig, Recipe

_REFERENCES: WeakKeyDictionary = WeakKeyDictionary()


def lower_is_better(metric: str) -> bool:
    """For `train.keep_best`: `val_l1` and every `val_condition_error_<attr>` improve downwards."""
    return metric == "val_l1" or metric.startswith("val_condition_error_")


def validation_references(dataset, data_cfg: DataConfig, device) -> References:
    """`References` for a held-out ColorDataset: every row of its characters in the dataset folder.

    Built on first use and kept with the dataset object (they depend on the ground truth only,
    and validation runs every `eval_every` steps), on the device of that first call.
    """
    if dataset not in _REFERENCES:
        from colorgan.data.metadata import read_metadata

        frame, _ = read_metadata(dataset.root)
        everything = character_dataset(dataset.root, frame, dataset.schema, dataset.indices, data_cfg)
        _REFERENCES[dataset] = references_of(everything, dataset.schema.names, device)
    return _REFERENCES[dataset]


@torch.no_grad()
def validate_generator(generator, dataset, device, recipe: Recipe, batch_size: int = 32) -> dict[str, float]:
    """Score `generator` on the held-out `dataset` with `evaluate.evaluate_generator` (val_* keys)."""
    references = validation_references(dataset, recipe.data, device)
    result = evaluate_generator(generator, dataset, device, dataset.schema.names, references, batch_size)
    return flatten(result, "val_")
