"""Declarative checks for recipe values: ranges, choices, text, lists, mappings.

A check has `ok(value) -> bool` and `describe() -> str` (what would be valid, e.g. "an integer
>= 1"); `problem(check, key, value)` makes the one-line message. Recipe sections carry their checks
as `Annotated[...]` metadata and the built-in components' options have a table of them
(`colorgan.component_options`), so every range lives in one place, next to its key. The checks
look at types themselves because component options arrive straight from YAML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol


class Check(Protocol):
    def ok(self, value: Any) -> bool: ...

    def describe(self) -> str: ...


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def describe_value(value: Any) -> str:
    """How a message shows a value: repr for scalars (a long one cut short), the type otherwise."""
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, Mapping):
        return f"a mapping of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def yaml_repr(value: Any) -> str:
    """A choice as a recipe spells it: true, false, null, 'text', 3."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def problem(check: Check, key: str, value: Any) -> str | None:
    """`key: expected ..., got ...` when `value` fails `check`, else None.

    Inside a list or mapping of the right shape it names the first item that fails
    (`optimizer.betas[1]: ...`), so a message never shows a whole structure as "got list".
    """
    if check.ok(value):
        return None
    if isinstance(check, AnyOf) and value is not None:  # the one alternative the value was meant for
        shaped = [c for c in check.alternatives if isinstance(c, (ListOf, MapOf)) and c.shape_ok(value)]
        if len(shaped) == 1 or len(check.alternatives) == 1:
            return problem((shaped or check.alternatives)[0], key, value)
    if isinstance(check, (ListOf, MapOf)) and check.shape_ok(value):
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        for k, v in items:
            if not check.item.ok(v):
                return problem(check.item, f"{key}.{k}" if isinstance(k, str) else f"{key}[{k}]", v)
    return f"{key}: expected {check.describe()}, got {describe_value(value)}"


def _bound(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Range:
    """A finite number (or, with `integer`, an integer) in an interval; open ends are excluded."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def ok(self, value: Any) -> bool:
        if not (is_integer(value) if self.integer else is_number(value) and math.isfinite(value)):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.lo is None and self.hi is None:
            return kind
        if self.hi is None:
            return f"{kind} {'>' if self.lo_open else '>='} {_bound(self.lo)}"
        if self.integer:  # closed bounds read best for integers: "from 1 to 12"
            lo = self.lo + 1 if self.lo_open else self.lo
            hi = self.hi - 1 if self.hi_open else self.hi
            return f"{kind} from {lo} to {hi}"
        return (f"{kind} in {'(' if self.lo_open else '['}{_bound(self.lo)}, "
                f"{_bound(self.hi)}{')' if self.hi_open else ']'}")


def integer(lo: int, hi: int | None = None) -> Range:
    """An integer in [lo, hi] (hi None: no upper bound)."""
    return Range(lo, hi, integer=True)


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values (compared with their type: true is not 1)."""

    choices: tuple[Any, ...]

    def ok(self, value: Any) -> bool:
        return any(value == c and type(value) is type(c) for c in self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(yaml_repr(c) for c in self.choices)


@dataclass(frozen=True)
class Text:
    """A string of `min_len` to `max_len` characters."""

    min_len: int = 0
    max_len: int = 1000

    def ok(self, value: Any) -> bool:
        return isinstance(value, str) and self.min_len <= len(value) <= self.max_len

    def describe(self) -> str:
        return f"a {'non-empty ' if self.min_len else ''}string of at most {self.max_len} characters"


@dataclass(frozen=True)
class Rule:
    """A check written as a predicate, for the few values no declarative check describes."""

    predicate: Callable[[Any], bool]
    description: str

    def ok(self, value: Any) -> bool:
        return self.predicate(value)

    def describe(self) -> str:
        return self.description


@dataclass(frozen=True)
class ListOf:
    """A list of `min_len` to `max_len` items, each passing `item`."""

    item: Check
    min_len: int = 0
    max_len: int = 64

    def shape_ok(self, value: Any) -> bool:
        return isinstance(value, list) and self.min_len <= len(value) <= self.max_len

    def ok(self, value: Any) -> bool:
        return self.shape_ok(value) and all(self.item.ok(v) for v in value)

    def describe(self) -> str:
        count = str(self.max_len) if self.min_len == self.max_len else f"{self.min_len} to {self.max_len}"
        return f"a list of {count} items, each {self.item.describe()}"


@dataclass(frozen=True)
class MapOf:
    """A mapping of at most `max_len` names (strings) to values passing `item`."""

    item: Check
    max_len: int = 64

    def shape_ok(self, value: Any) -> bool:
        return isinstance(value, Mapping) and len(value) <= self.max_len and all(isinstance(k, str) for k in value)

    def ok(self, value: Any) -> bool:
        return self.shape_ok(value) and all(self.item.ok(v) for v in value.values())

    def describe(self) -> str:
        return f"a mapping of at most {self.max_len} names to {self.item.describe()}"


@dataclass(frozen=True)
class AnyOf:
    """Passes when one of `checks` does; None among them allows null. `description` replaces
    the joined descriptions where they would make an unreadable line."""

    checks: tuple[Check | None, ...]
    description: str = ""

    @property
    def alternatives(self) -> list[Check]:
        return [c for c in self.checks if c is not None]

    def ok(self, value: Any) -> bool:
        return any(value is None if c is None else c.ok(value) for c in self.checks)

    def describe(self) -> str:
        return self.description or " or ".join("null" if c is None else c.describe() for c in self.checks)


def maybe(check: Check) -> AnyOf:
    """`check`, or null."""
    return AnyOf((check, None))
