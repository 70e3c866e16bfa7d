"""Recipes: typed loading, an error for each kind of mistake, overrides, YAML round trip."""

import pytest

from colorgan import recipe as recipes
from colorgan.errors import RecipeError, RegistryError


def write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_defaults_and_types(tmp_path):
    r = recipes.load(write(tmp_path, "name: x\ntrain: {epochs: 3, batch_size: 4}\n"))
    assert r.name == "x" and r.train.epochs == 3 and r.train.batch_size == 4
    assert r.objective == [{"type": "gan", "weight": 1.0}, {"type": "l1", "weight": 100.0}]
    assert r.optimizer.betas == [0.5, 0.999]
    assert r.generator == {"type": "unet", "depth": 6}


@pytest.mark.parametrize(
    "text, message",
    [
        ("train: {epochs: ten}", "train.epochs: expected an integer or null, got 'ten'"),
        ("train: {epoch: 3}", "train.epoch: unknown key (did you mean 'epochs'?)"),
        ("trian: {}", "trian: unknown key (did you mean 'train'?)"),
        ("data: {sketch_channels: 2}", "data.sketch_channels: expected one of 1, 3, got 2"),
        ("train: {mixed_precision: fp8}", "train.mixed_precision: expected one of 'auto', 'no', 'bf16'"),
        ("optimizer: {betas: 0.5}", "optimizer.betas: expected a list, got 0.5"),
        ("optimizer: {betas: [0.5, x]}", "optimizer.betas[1]: expected a number, got 'x'"),
        ("generator: {depth: 6}", "generator.type: missing"),
        ("data: 3", "data: expected a mapping, got 3"),
        ("- a\n- b", "expected a mapping at the top level"),
        ("train: {compile: maybe}", "train.compile: expected one of false, true, 'reduce-overhead', 'graph', 'auto', got 'maybe'"),
        ("data: {holdout: {kind: half}}", "data.holdout.kind: expected one of 'auto'"),
        ("name: [1]", "name: expected a string, got a list of 1"),
    ],
)
def test_each_kind_of_mistake_names_the_key(tmp_path, text, message):
    with pytest.raises(RecipeError) as info:
        recipes.load(write(tmp_path, text))
    assert message in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "r.yaml"))
    assert "\n" not in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(RecipeError, match="not valid YAML at line 2"):
        recipes.load(write(tmp_path, "train: {epochs: [\n"))
    with pytest.raises(RecipeError, match="recipe file not found"):
        recipes.load(tmp_path / "nope.yaml")


def test_unsafe_yaml_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="not valid YAML"):
        recipes.load(write(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\n"))


def test_component_errors_are_found_by_validate(tmp_path):
    path = write(tmp_path, "generator: {type: unett}\n")
    with pytest.raises(RegistryError, match="generator.type: unknown generator 'unett' \\(did you mean 'unet'"):
        recipes.load_validated(path)
    path = write(tmp_path, "discriminator: {type: patchgan, layerz: 2}\n")
    with pytest.raises(RegistryError, match="discriminator.layerz: .*did you mean 'layers'"):
        recipes.load_validated(path)
    path = write(tmp_path, "train: {epochs: null, max_steps: null}\n")
    with pytest.raises(RecipeError, match="set train.epochs or train.max_steps"):
        recipes.load_validated(path)


def test_overrides(tmp_path):
    path = write(tmp_path, "train: {epochs: 3}\ngenerator: {type: unet, depth: 6}\n")
    r = recipes.load(path, ["train.epochs=5", "generator.depth=4", "optimizer.betas=[0.0, 0.9]",
                            "data.holdout=none", "log.with=[jsonl, tensorboard]", "train.ema=0.999"])
    assert r.train.epochs == 5 and r.generator["depth"] == 4
    assert r.optimizer.betas == [0.0, 0.9]
    assert r.data.holdout.kind == "none"
    assert r.log.with_ == ["jsonl", "tensorboard"]
    assert r.train.ema == 0.999
    assert recipes.load(path, ["train.mixed_precision=no"]).train.mixed_precision == "no"
    with pytest.raises(RecipeError, match="train.epochs: expected an integer or null, got 'x'"):
        recipes.load(path, ["train.epochs=x"])
    with pytest.raises(RecipeError, match="expected key.path=value"):
        recipes.load(path, ["train.epochs"])
    with pytest.raises(RecipeError, match="train.epochs is not a section"):
        recipes.load(path, ["train.epochs.x=1"])


def test_round_trip(tmp_path):
    r = recipes.load(write(tmp_path, "name: rt\ndata: {holdout: characters}\nloss: {type: hinge}\n"),
                     ["train.grad_clip=1.5"])
    again = recipes.load(write(tmp_path, r.to_yaml()))
    assert again == r
    assert again.data.holdout.kind == "characters"
    assert "with:" in r.to_yaml()


# --- values: every key's range (check_values), and what needs the data's schema -----------------


def test_defaults_and_every_shipped_recipe_pass_check_values():
    from pathlib import Path

    recipes.check_values(recipes.Recipe())
    for path in sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml")):
        recipes.check_values(recipes.load(path))


def test_check_values_judges_a_recipe_made_in_python_too():
    """A model file's embedded recipe comes through from_dict, a library user's through the
    dataclasses: the ranges are checked on the Recipe, not while parsing."""
    with pytest.raises(RecipeError, match=r"^train.ema: expected a number in \(0, 1\), got 1.5$"):
        recipes.check_values(recipes.Recipe(train=recipes.TrainConfig(ema=1.5)))
    with pytest.raises(RecipeError, match="^generator.depth: expected an integer from 1 to 12, got 40$"):
        recipes.check_values(recipes.Recipe(generator={"type": "unet", "depth": 40}))


def test_validate_never_builds_a_network(monkeypatch):
    from colorgan.registry import CONDITIONS, DISCRIMINATORS, GENERATORS

    def refuse(*args, **kwargs):
        raise AssertionError("validate built a component")

    for registry in (CONDITIONS, GENERATORS, DISCRIMINATORS):
        monkeypatch.setattr(registry, "build", refuse)
    recipes.validate(recipes.from_dict({"generator": {"type": "resnet"}, "discriminator": {"type": "multiscale"}}))
    with pytest.raises(RecipeError, match="data.image_size: image size 48 does not fit unet depth 6"):
        recipes.validate(recipes.from_dict({"data": {"image_size": 48}}))


def test_keep_best_attribute_and_condition_width_are_checked_against_the_schema(monkeypatch):
    from colorgan.data.schema import ConditionSchema

    schema = ConditionSchema.from_mapping({"hair": ["crimson", "gold"], "shirt": ["navy"]})
    recipe = recipes.from_dict({"train": {"keep_best": "val_condition_error_hiar"}})
    with pytest.raises(RecipeError, match=r"train.keep_best: the data has no attribute 'hiar' \(did you mean "
                                          r"'hair'.*; attributes: hair, shirt"):
        recipes.check_against_schema(recipe, schema)
    recipes.check_against_schema(recipes.from_dict({"train": {"keep_best": "val_condition_accuracy_shirt"}}), schema)
    # a dataset with many attribute values makes a wide one-hot input: judged with the real width
    monkeypatch.setenv("COLORGAN_MAX_PARAMETERS", "4e7")
    wide = ConditionSchema.from_mapping({"colour": [str(i) for i in range(20_000)]})
    recipes.validate(recipes.Recipe())
    with pytest.raises(RecipeError, match="parameters, more than the 4e\\+07 allowed"):
        recipes.check_against_schema(recipes.Recipe(), wide)


@pytest.mark.parametrize("text, message", [
    ("train:\n  epochs: 1\n  epochs: 2\n", "not valid YAML at line 3: duplicate key 'epochs' (first at line 2)"),
    ("train: {epochs: 1, batch_size: 2, epochs: 3}\n", "line 1: duplicate key 'epochs'"),
    ("base: &b {epochs: 1}\ntrain: *b\n", "not valid YAML at line 2: aliases (*name) are not allowed in recipes"),
    ("train:\n  <<: {epochs: 2}\n  epochs: 3\n", "duplicate key 'epochs'"),
    ("name: " + "[" * 3000 + "]" * 3000 + "\n", "not valid YAML: nested too deeply"),
])
def test_yaml_that_would_mean_something_else_is_refused(tmp_path, text, message):
    with pytest.raises(RecipeError) as info:
        recipes.load(write(tmp_path, text))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_overrides_go_through_the_same_yaml_rules(tmp_path):
    path = write(tmp_path, "train: {epochs: 3}\n")
    with pytest.raises(RecipeError, match="aliases"):
        recipes.load(path, ["optimizer.betas=[&b 0.5, *b]"])
    with pytest.raises(RecipeError, match="duplicate key 'epochs'"):
        recipes.load(path, ["train={epochs: 1, epochs: 2}"])
    assert recipes.load(path, ["train={<<: {epochs: 2}, batch_size: 3}"]).train.epochs == 2


def test_numbers_in_exponent_form_are_numbers_as_people_write_them(tmp_path):
    """PyYAML alone reads `1e-4` as a string (YAML 1.1 wants `1.0e-4`), which a recipe would refuse."""
    r = recipes.load(write(tmp_path, "optimizer: {lr: 1e-4, d_lr: 2E-4}\ntrain: {max_minutes: 1.5e+1}\n"),
                     ["train.grad_clip=5e0"])
    assert (r.optimizer.lr, r.optimizer.d_lr, r.train.max_minutes, r.train.grad_clip) == (1e-4, 2e-4, 15.0, 5.0)
    with pytest.raises(RecipeError, match="train.epochs: expected an integer or null, got 100000.0"):
        recipes.load(write(tmp_path, "train: {epochs: 1e5}\n"))


def test_a_component_type_that_is_not_a_name_is_one_line():
    """Found by the model-file property test: `discriminator.type: []` reached a dict lookup."""
    recipe = recipes.Recipe()
    recipe.discriminator = {"type": [], "layers": 2}
    with pytest.raises(RecipeError, match=r"discriminator.type: expected a component name"):
        recipes.check_values(recipe)
