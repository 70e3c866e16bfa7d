"""Every recipe in recipes/ loads, builds at its own size, and trains 2 steps at a small size."""

from pathlib import Path

import pytest
import torch

from colorgan import recipe as recipes
from colorgan.build import build_parts
from colorgan.data.schema import ConditionSchema
from colorgan.train import train

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))
SEED_SCHEMA = ConditionSchema.from_mapping({"hair": ["crimson", "gold", "navy", "teal", "tan"],
                                             "shirt": ["orange", "olive", "violet", "blue", "pink"]})
# Small-size stand-ins for U-Nets deeper than 32 px allows (the seed's 8 levels need 256 px).
SMALL = {name: ["generator.depth=5"] for name in ("seed-unet256.yaml", "quickstart.yaml", "rgb-film.yaml",
                                                  "real-icons.yaml", "real-icons-gpu.yaml")}


def test_recipes_folder_has_the_promised_recipes():
    names = {p.name for p in RECIPES}
    assert {"quickstart.yaml", "seed-unet256.yaml"} <= names
    used = {kind: set() for kind in ("condition", "generator", "discriminator", "loss")}
    for path in RECIPES:
        r = recipes.load(path)
        for kind in used:
            used[kind].add(getattr(r, kind)["type"])
    from colorgan.registry import CONDITIONS, DISCRIMINATORS, GENERATORS, LOSSES

    def builtin(registry):  # plugins registered by other tests are not ours to cover
        return {name for name, entry in registry.entries().items() if entry.origin == "built-in"}

    assert used["condition"] == builtin(CONDITIONS)
    assert used["generator"] == builtin(GENERATORS)
    assert used["discriminator"] == builtin(DISCRIMINATORS)
    assert used["loss"] == builtin(LOSSES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_builds_at_its_own_size(path):
    recipe = recipes.load_validated(path)
    parts = build_parts(recipe, SEED_SCHEMA)
    if parts.generator.net.fill == "auto":  # training decides it from its data; here the fill runs too
        parts.generator.net.fill = "regions"
    size = recipe.data.image_size
    sketch = torch.zeros(1, recipe.data.sketch_channels, size, size)
    encoded = parts.generator.encode([{"hair": "gold", "shirt": "pink"}])
    with torch.no_grad():
        image, cond = parts.generator.eval()(sketch, encoded)
    assert image.shape == (1, 3, size, size)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_trains_two_steps_small(path, tmp_path):
    overrides = ["data.image_size=32", "data.icons.characters=2", "train.max_steps=2", "train.epochs=null",
                 "train.batch_size=2", "train.sample_every=2", "train.eval_every=2", "log.with=[jsonl]",
                 *SMALL.get(path.name, [])]
    recipe = recipes.load_validated(path, overrides)
    result = train(recipe, out=tmp_path / "run")
    assert result.step == 2 and result.model.is_file()


def test_the_gpu_variant_of_real_icons_differs_only_in_name_and_steps():
    """recipes/real-icons-gpu.yaml is a copy (recipes have no includes): this keeps the two from drifting."""
    base, gpu = (recipes.load(Path(__file__).parent.parent / "recipes" / f"{n}.yaml").to_dict()
                 for n in ("real-icons", "real-icons-gpu"))
    assert (gpu.pop("name"), gpu["train"].pop("max_steps"), base.pop("name"), base["train"].pop("max_steps")) == (
        "real-icons-gpu", 4 * 4000, "real-icons", 4000)
    assert gpu == base
