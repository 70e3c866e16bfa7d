"""Validation during training: the held-out split scored by `colorgan evaluate`'s own function.

Logged as `val_psnr`, `val_ssim`, `val_l1` (mean |RGB| difference in [0, 1] units, as
`colorgan evaluate` reports it: half the training loss's [-1, 1] units), and per attribute
`val_condition_error_<attr>` (ΔE00) and `val_condition_accuracy_<attr>`. A metric with nothing to
judge is NaN (written as null in metrics.jsonl).
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet

import torch

from colorgan.evaluate import evaluate_generator, flatten, validation_references
from colorgan.recipe import Recipe


class _LowerIsBetter(AbstractSet):
    """Metric names where smaller is better: fixed names plus every `val_condition_error_<attr>`."""

    _names = frozenset({"val_l1"})
    _prefixes = ("val_condition_error_",)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._names or name.startswith(self._prefixes))

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


LOWER_IS_BETTER = _LowerIsBetter()


@torch.no_grad()
def validate_generator(generator, dataset, device, recipe: Recipe, batch_size: int = 32) -> dict[str, float]:
    """Score `generator` on the held-out `dataset` with `evaluate.evaluate_generator` (val_* keys)."""
    references = validation_references(dataset, recipe.data)
    result = evaluate_generator(generator, dataset, device, dataset.schema.names, references, batch_size)
    return flatten(result, "val_")
