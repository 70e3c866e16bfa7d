"""The YAML a recipe is written in: safe, without aliases, without duplicate keys.

`yaml.safe_load` already refuses `!!python/...` tags; this loader also refuses the two things a
recipe never needs and that make it mean something else than it says (see `_RecipeLoader`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _RecipeLoader(yaml.SafeLoader):
    """Safe YAML without what a recipe never needs and an attacker would use.

    Aliases are refused: `*name` shares a node, so nine lines of aliases ("billion laughs") stand
    for 10**9 values, which copying the recipe would expand for minutes. Duplicate keys are
    refused: YAML says keys are unique, PyYAML would let the last one silently win.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in recipes; write the value out",
                self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        self.flatten_mapping(node)  # `<<` merge keys become plain keys first (the base does it too)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class refuses it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


# YAML 1.2 reads `1e-4` as a number; PyYAML follows YAML 1.1, which needs a dot and a signed
# exponent (`1.0e-4`), and hands `lr: 1e-4` over as the string "1e-4". Recipes are written by people
# used to the first: exponent forms without a dot or sign are floats here too.
_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def parse_yaml(text: str) -> Any:
    """Recipe YAML (files, `-o` values, a run folder's recipe.yaml) through `_RecipeLoader`."""
    loader = _RecipeLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
    finally:
        loader.dispose()
