"""The condition schema: which attributes a dataset has and which values each takes.

It comes from the data (Metadata.csv's condition columns), is handed to the condition encoder,
and is saved inside every model so a model file alone knows what can be asked of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from colorgan.errors import ConditionError


@dataclass(frozen=True)
class ConditionSchema:
    """Ordered attributes, each with its sorted tuple of values."""

    attributes: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def from_mapping(cls, attributes: Mapping[str, Any]) -> "ConditionSchema":
        return cls(tuple((str(a), tuple(sorted(str(v) for v in vals))) for a, vals in attributes.items()))

    def to_dict(self) -> dict[str, list[str]]:
        return {a: list(v) for a, v in self.attributes}

    @property
    def names(self) -> list[str]:
        return [a for a, _ in self.attributes]

    def values(self, attribute: str) -> tuple[str, ...]:
        for a, vals in self.attributes:
            if a == attribute:
                return vals
        raise ConditionError(f"unknown attribute {attribute!r}; attributes: {', '.join(self.names)}")

    def index(self, attribute: str, value: str) -> int:
        """Position of `value` among the attribute's values, or a ConditionError listing them."""
        vals = self.values(attribute)
        if value not in vals:
            raise ConditionError(
                f"unknown value {value!r} for attribute {attribute!r}; valid: {', '.join(vals)}"
            )
        return vals.index(value)

    def check_keys(self, conditions: Mapping[str, Any], allow_missing: bool = False) -> None:
        """Refuse unknown attributes, and missing ones unless the encoder can leave them out."""
        unknown = [k for k in conditions if k not in self.names]
        if unknown:
            raise ConditionError(
                f"unknown attribute {unknown[0]!r}; attributes: {', '.join(self.names)}"
            )
        missing = [a for a in self.names if conditions.get(a) is None]
        if missing and not allow_missing:
            raise ConditionError(
                f"missing condition {missing[0]!r} (this model needs {', '.join(self.names)}; "
                "train with condition.dropout > 0 to allow leaving one out)"
            )
