"""Generated recipes, with random types and values for every key and every built-in component's
options: `colorgan recipe check` must end in exit 2 with one line on stderr, or accept the recipe
(and then accept its own printout), never with a traceback, within the deadline, and with nothing
written to the working folder. The bad-input table holds the classes; this hunts between them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from datetime import timedelta

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.component_options import OPTIONS
from hardening_helpers import snapshot

EXAMPLE = settings(max_examples=60, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])


def _keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of the recipe's sections (not the component dicts)."""
    found = []
    for f in dataclasses.fields(cls):
        key = prefix + f.name.rstrip("_")
        hint = typing.get_type_hints(cls)[f.name]
        found += _keys(hint, key + ".") if dataclasses.is_dataclass(hint) else [key]
    return found


SECTION_KEYS = _keys(recipes.Recipe)
# Strings a recipe uses, and strings that make trouble: paths that leave, NUL, long, empty.
WORDS = ["", "..", "../x", "a/b", "a\\b", "x\0y", "x" * 300, "val_l1", "val_condition_error_hair", "auto",
         "none", "batch", "instance", "group", "spectral", "concat", "film", "spade", "sum", "resnet18", "builtin:icons"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70), st.integers(-(2**70), 2**70),
    st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS), st.text(max_size=8),
)
# Values a key might well take (so that many recipes pass and reach the size arithmetic)...
LIKELY = st.one_of(st.integers(0, 16), st.floats(0, 1), st.sampled_from(WORDS), st.booleans(), st.none())
# ...and anything YAML can say.
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["depth", "type", "kind", "x", "hair"]) | st.text(max_size=4), inner, max_size=3), max_leaves=5)


@st.composite
def recipes_with_random_values(draw) -> dict:
    """A small valid recipe with random component types, then random values at up to three keys:
    section keys, the chosen components' options, or keys that do not exist."""
    data: dict = {"train": {"max_steps": 2, "epochs": None, "batch_size": 2}, "data": {"image_size": 256}}
    keys = SECTION_KEYS + ["train.bogus", "bogus"]
    for section, kinds in OPTIONS.items():
        name = draw(st.sampled_from([*kinds, *kinds, "no-such-component"]) if kinds else st.just("lsgan"))
        data[section] = {"type": name}
        keys += [f"{section}.{option}" for option in [*kinds.get(name, {}), "bogus"]]
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        node = data
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):  # an earlier key may have put a value here
                node[part] = {}
            node = node[part]
        node[last] = draw(LIKELY | VALUES)
    return data


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """An empty working folder (the current one while the tests run) and one for the recipes."""
    work, inputs = tmp_path_factory.mktemp("work"), tmp_path_factory.mktemp("inputs")
    before = os.getcwd()
    os.chdir(work)
    # timm's first import takes seconds: not part of any example's time
    CliRunner().invoke(cli, ["recipe", "check", "-o", "generator={type: timm-unet}", str(write(inputs, {}))])
    yield work, inputs
    os.chdir(before)


def write(folder, data=None, text=None):
    path = folder / "recipe.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(data), encoding="utf-8")
    return path


def check(args: list[str], work) -> None:
    """The command ends cleanly: exit 0, or exit 2 with one line; the working folder stays empty."""
    result = CliRunner().invoke(cli, ["recipe", "check", *args])
    assert result.exit_code in (0, 2), f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output
    assert not snapshot(work), "recipe check wrote to the working folder"
    if result.exit_code == 2:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    else:  # what it printed is the recipe resolved: valid again, and the same recipe
        printed = yaml.safe_load(result.stdout)
        again = recipes.from_dict(printed)
        recipes.validate(again)
        assert again.to_dict() == printed


@EXAMPLE
@given(data=recipes_with_random_values())
def test_generated_recipes_end_in_one_line_or_a_valid_recipe(folders, data):
    work, inputs = folders
    check([str(write(inputs, data))], work)


@EXAMPLE
@given(key=st.sampled_from(SECTION_KEYS + ["generator.depth", "generator.base_channels", "condition.dim",
                                           "discriminator.layers", "generator", "train.x.y"]),
       value=VALUES)
def test_generated_overrides_end_in_one_line_or_a_valid_recipe(folders, key, value):
    work, inputs = folders
    check([str(write(inputs, {})), "-o", f"{key}={json.dumps(value)}"], work)


@EXAMPLE
@given(text=st.text(alphabet="{}[]:,&*!?-|>'\"#%@ \n\t\0abxy019.", max_size=60))
def test_random_yaml_text_ends_in_one_line_or_a_valid_recipe(folders, text):
    work, inputs = folders
    check([str(write(inputs, text=text))], work)
