"""What every built-in condition encoder shares: schema checks, leaving attributes out, dropout.

An encoder turns a batch of `{attribute: value}` dicts into a CPU tensor on the host (`encode`,
run in the DataLoader's collate and at inference) and that tensor into a `(B, dim)` float vector
on the device (`forward`). With `dropout > 0` an attribute may be left out (value `None` or key
missing): it becomes the encoder's "unspecified" token, and in training each attribute of each
sample is replaced by that token with probability `dropout` (torch's RNG, so seeded runs repeat).
"""

from __future__ import annotations

import numbers
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from colorgan.data.schema import ConditionSchema


def check_dropout(dropout: Any) -> float:
    """The `dropout` option as a float in [0, 1), or a ValueError saying what is wrong."""
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
        raise ValueError(f"dropout: expected a number in [0, 1), got {dropout!r}")
    dropout = float(dropout)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout: expected a number in [0, 1), got {dropout}")
    return dropout


class ConditionEncoder(nn.Module):
    """Base class of the built-in condition encoders (not registered itself)."""

    def __init__(self, schema: ConditionSchema, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(schema, ConditionSchema):
            raise TypeError(f"schema: expected a ConditionSchema, got {type(schema).__name__}")
        for attribute, values in schema.attributes:
            if not values:
                raise ValueError(f"condition attribute {attribute!r} has no values")
        self.schema = schema
        self.dropout = check_dropout(dropout)
        self.supports_unspecified = self.dropout > 0
        self.dim = 0  # set by the subclass

    @property
    def attributes(self) -> list[str]:
        return self.schema.names

    def extra_repr(self) -> str:
        return f"attributes={self.attributes}, dim={self.dim}, dropout={self.dropout}"

    def _values(self, conditions: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[list[str | None]]:
        """Per sample, per schema attribute: the value as a string, or None when left out.

        Unknown attributes are refused; a missing one only when this encoder cannot leave it out.
        A single mapping is taken as a batch of one.
        """
        if isinstance(conditions, Mapping):
            conditions = [conditions]
        rows = []
        for cond in conditions:
            if not isinstance(cond, Mapping):
                raise TypeError(f"conditions: expected a mapping per sample, got {type(cond).__name__}")
            self.schema.check_keys(cond, allow_missing=self.supports_unspecified)
            rows.append([None if cond.get(a) is None else str(cond[a]) for a in self.attributes])
        return rows

    def _drop_mask(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor | None:
        """Boolean mask of the (sample, attribute) entries to replace by "unspecified" now, or None."""
        if not (self.training and self.dropout > 0) or 0 in shape:
            return None
        return torch.rand(shape, device=device) < self.dropout
