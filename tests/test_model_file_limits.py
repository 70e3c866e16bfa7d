"""Model files from strangers: every description is checked before anything is allocated.

The table runs `colorgan info` and `colorgan sample` on crafted model files: each must end with
exit code 2, one line naming the problem, no traceback, and nothing written. Then the memory
budget (option, environment), the message for a built-in component that does not build, and a
property test: random metadata written into a real safetensors file never gets further.
"""

from __future__ import annotations

import copy
import json
import re
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from colorgan import checkpoint
from colorgan.cli import cli
from colorgan.errors import ModelFileError
from colorgan.inference import Colorizer
from colorgan.model_file import MAX_JSON_DEPTH, validate_model_file
from hardening_helpers import snapshot, tiny_model_file


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("limits"))


def rewrite(source: Path, target: Path, **raw: str) -> Path:
    """A copy of model file `source` with some `colorgan.*` metadata values replaced by raw text."""
    with safe_open(str(source), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    meta.update({f"colorgan.{k}": v for k, v in raw.items()})
    save_file(tensors, str(target), metadata=meta)
    return target


def recipe_of(source: Path) -> dict:
    with safe_open(str(source), framework="pt") as f:
        return json.loads(f.metadata()["colorgan.recipe"])


def with_recipe(**changes) -> Callable[[Path, Path], Path]:
    """Setup: the template with recipe keys changed (`data__image_size=-32` -> data.image_size)."""
    def setup(template: Path, target: Path) -> Path:
        recipe = copy.deepcopy(recipe_of(template))
        for dotted, value in changes.items():
            *parents, last = dotted.split("__")
            node = recipe
            for part in parents:
                node = node[part]
            node[last] = value
        return rewrite(template, target, recipe=json.dumps(recipe))
    return setup


def with_raw(**raw: str) -> Callable[[Path, Path], Path]:
    return lambda template, target: rewrite(template, target, **raw)


def huge_header(template: Path, target: Path) -> Path:
    """A file whose first 8 bytes claim a 1 TB header."""
    target.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    return target


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@dataclass
class Case:
    id: str
    setup: Callable[[Path, Path], Path]
    expect: tuple[str, ...]


CASES = [
    Case("deeply-nested-recipe", with_raw(recipe=deep(100_000)), ("colorgan.recipe is JSON nested 100000 deep",)),
    Case("deeply-nested-value", with_recipe(name=json.loads(deep(MAX_JSON_DEPTH))), ("nested 9 deep",)),
    Case("huge-metadata", with_recipe(name="x" * 2_000_000), ("colorgan metadata, more than the 1,048,576",)),
    Case("header-claims-a-terabyte", huge_header, ("not a readable safetensors file", "its header claims")),
    Case("format-version-zero", with_raw(format_version="0"), ("format_version is 0",)),
    Case("format-version-a-string", with_raw(format_version='"1"'), ("format_version is '1'",)),
    Case("negative-image-size", with_recipe(data__image_size=-32), ("data.image_size", "-32")),
    Case("image-size-disagrees", with_raw(image_size="64"), ("colorgan.image_size is 64", "makes it 32")),
    Case("image-size-as-bool", with_raw(image_size="true"), ("colorgan.image_size is true",)),
    Case("zero-sketch-channels", with_recipe(data__sketch_channels=0), ("data.sketch_channels", "got 0")),
    Case("channels-disagree", with_raw(channels='{"sketch": 0, "image": 3}'), ("colorgan.channels",)),
    Case("empty-value-list", with_raw(schema='{"hair": [], "shirt": ["olive"]}'),
         ("colorgan.schema.hair is [], expected a non-empty list",)),
    Case("no-attributes", with_raw(schema="{}"), ("colorgan.schema is {}",)),
    Case("value-listed-twice", with_raw(schema='{"hair": ["red", "red"]}'), ("lists a value twice",)),
    Case("nul-in-a-value", with_raw(schema='{"hair": ["re\\u0000d"]}'), ("NUL",)),
    Case("nul-in-an-attribute", with_raw(schema='{"ha\\u0000ir": ["red"]}'), ("NUL",)),
    Case("nul-in-the-recipe", with_recipe(name="ti\0ny"), ("name", "NUL")),
    Case("not-json", with_raw(schema="{'hair': 1}"), ("colorgan.schema is not valid JSON",)),
    Case("nan-in-the-recipe", with_raw(recipe=json.dumps({"seed": float("nan")})), ("seed",)),
    # what would have allocated 256 TB: options in range, a model far over the limits
    Case("a-256-terabyte-model", with_recipe(generator__base_channels=65536, generator__max_channels=65536),
         ("parameters, more than the 2e+09 allowed",)),
    # a model of sane size, but its weights are not in the file (a 1 KB file cannot describe one)
    Case("weights-missing-from-the-file", with_recipe(generator__base_channels=16),
         ("describes a model of", "but the file holds only 115,195 values")),
]
COMMANDS = {
    "info": lambda model, tmp: ["info", str(model)],
    "sample": lambda model, tmp: ["sample", str(model), str(sketch(tmp)), "-c", "hair=crimson", "-c", "shirt=olive",
                                  "--out", str(tmp / "out")],
}


def sketch(folder: Path) -> Path:
    path = folder / "sketch.png"
    if not path.exists():
        Image.new("L", (40, 30), 255).save(path)
    return path


def run(args: list[str]):
    started = time.perf_counter()
    result = CliRunner().invoke(cli, args)
    return result, time.perf_counter() - started


def assert_refused(result, seconds: float, expect=()) -> None:
    output = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}: {output}\n{result.exception!r}"
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    for text in expect:
        assert text in output, f"{text!r} not in:\n{output}"
    assert seconds < 10, f"took {seconds:.1f} s"


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_model_file_is_one_line_and_exit_2(case, command, template, tmp_path):
    model = case.setup(template, tmp_path / "m.safetensors")
    args = COMMANDS[command](model, tmp_path)
    before = snapshot(tmp_path)
    result, seconds = run(args)
    assert_refused(result, seconds, case.expect)
    assert snapshot(tmp_path) == before, "the command changed, created or left files behind"


def test_the_memory_budget_is_an_option_an_environment_variable_and_a_parameter(template, tmp_path, monkeypatch):
    args = COMMANDS["sample"](template, tmp_path)
    result, seconds = run([*args, "--max-model-gb", "0.0001"])
    assert_refused(result, seconds, ("needs about 0.000947 GB", "more than the 0.0001 GB allowed", "--max-model-gb",
                                     "COLORGAN_MAX_MODEL_GB"))
    with pytest.raises(ModelFileError, match="more than the 0.0001 GB"):
        Colorizer.load(template, "cpu", max_model_gb=0.0001)
    monkeypatch.setenv("COLORGAN_MAX_MODEL_GB", "0.0001")
    assert_refused(*run(args), ("more than the 0.0001 GB allowed",))
    assert run([*args, "--max-model-gb", "1"])[0].exit_code == 0  # the option wins over the environment
    monkeypatch.setenv("COLORGAN_MAX_MODEL_GB", "lots")
    assert_refused(*run(args), ("COLORGAN_MAX_MODEL_GB='lots': expected a number of gigabytes",))
    monkeypatch.delenv("COLORGAN_MAX_MODEL_GB")
    assert run(["info", str(template)])[0].exit_code == 0


def test_info_describes_a_model_over_the_budget(template, monkeypatch):
    """`info` builds nothing, so the budget does not apply to it: a file can be inspected first."""
    monkeypatch.setenv("COLORGAN_MAX_MODEL_GB", "0.0001")
    result = CliRunner().invoke(cli, ["info", str(template)])
    assert result.exit_code == 0 and "115,195 values" in result.output


def test_a_built_in_encoder_that_does_not_build_is_not_blamed_on_a_plugin(tmp_path):
    """An embedding encoder whose `dim` names an attribute the schema lacks: every option is in
    range and the parameter count is right, but the constructor refuses it."""
    from conftest import TINY

    from colorgan import recipe as recipes
    from colorgan.build import build_generator
    from colorgan.data.schema import ConditionSchema

    schema = ConditionSchema.from_mapping({"hair": ["gold", "red"]})
    recipe = recipes.from_dict(dict(copy.deepcopy(TINY), condition={"type": "embedding", "dim": 4}))
    model = checkpoint.export(build_generator(recipe, schema), recipe, schema, tmp_path / "embedding.safetensors")
    broken = with_recipe(condition={"type": "embedding", "dim": {"hair": 4, "hat": 4}})(model, tmp_path / "b.safetensors")
    with pytest.raises(ModelFileError) as err:
        Colorizer.load(broken, "cpu")
    message = str(err.value)
    assert "does not build" in message and "unknown attribute 'hat'" in message
    assert "plugin" not in message


def test_a_valid_model_file_passes_and_reports_what_it_holds(template):
    model = validate_model_file(template)
    assert model.tensor_values == 115_195 and model.schema.names == ["hair", "shirt"]
    assert model.recipe.data.image_size == model.meta["image_size"] == 32


# --- property: random metadata never gets past the checks ------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = ("recipe",) * 4 + ("schema",) * 2 + ("image_size", "channels", "format_version")  # recipes have most keys


@st.composite
def metadata_edits(draw) -> dict[str, str]:
    """Raw values for some `colorgan.*` keys: random JSON, deep nesting, or the valid value with
    one leaf replaced by random JSON (which reaches the deeper checks)."""
    edits = {}
    for key in draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=2, unique=True)):
        kind = draw(st.sampled_from(["leaf", "leaf", "leaf", "random", "deep"]))
        if kind == "random":
            edits[key] = json.dumps(draw(JSON))
        elif kind == "deep":
            edits[key] = deep(draw(st.integers(MAX_JSON_DEPTH + 1, 50_000)))
        else:
            edits[key] = json.dumps(draw(replaced_leaf(key)))
    return edits


@st.composite
def replaced_leaf(draw, key: str):
    valid = copy.deepcopy(VALID[key])
    if not isinstance(valid, dict):
        return draw(JSON)
    node = valid
    while True:
        name = draw(st.sampled_from(sorted(node)))
        if not isinstance(node[name], dict) or draw(st.booleans()):
            node[name] = draw(JSON)
            return valid
        node = node[name]


def _valid() -> dict:
    """The decoded metadata of a valid model file (the tiny recipe over the icons' schema)."""
    from conftest import TINY

    from colorgan.data.icons import HAIR_COLOURS, SHIRT_COLOURS
    from colorgan.data.schema import ConditionSchema
    from colorgan.model_file import describe
    from colorgan.recipe import from_dict

    schema = ConditionSchema.from_mapping({"hair": list(HAIR_COLOURS), "shirt": list(SHIRT_COLOURS)})
    return {k.removeprefix("colorgan."): json.loads(v) for k, v in describe(from_dict(TINY), schema).items()}


VALID = _valid()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=metadata_edits(), command=st.sampled_from(sorted(COMMANDS)))
def test_random_metadata_ends_in_one_line_or_a_valid_run(template, edits, command):
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        model = rewrite(template, tmp / "m.safetensors", **edits)
        args = COMMANDS[command](model, tmp)
        before = snapshot(tmp)
        result, seconds = run(args)
        event(re.sub(r"^Error: \S+: (damaged colorgan metadata: )?", "", result.output)[:24])
        if result.exit_code == 0:  # a harmless edit (say, another seed): a valid run
            assert seconds < 10
            return
        assert_refused(result, seconds)
        assert snapshot(tmp) == before


def test_a_pretrained_path_in_a_model_file_is_never_read(tmp_path):
    """timm-unet's `pretrained` names a weights file to start from; a model file's own weights
    replace them, so loading one never reads the path a stranger wrote there."""
    from conftest import TINY

    from colorgan import recipe as recipes
    from colorgan.build import build_generator
    from colorgan.data.schema import ConditionSchema

    schema = ConditionSchema.from_mapping({"hair": ["gold", "red"]})
    generator = {"type": "timm-unet", "encoder": "test_resnet", "decoder_channels": [8, 8, 8, 8, 8]}
    recipe = recipes.from_dict(dict(copy.deepcopy(TINY), generator=generator))
    model = checkpoint.export(build_generator(recipe, schema), recipe, schema, tmp_path / "timm.safetensors")
    elsewhere = with_recipe(generator__pretrained=str(tmp_path / "not-here.safetensors"))(model, tmp_path / "p.safetensors")
    colorizer = Colorizer.load(elsewhere, "cpu")
    assert colorizer.recipe.generator["pretrained"].endswith("not-here.safetensors")  # recorded, not read
