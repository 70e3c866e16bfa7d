"""The size estimate is arithmetic that must agree with the networks: parameter counts exactly,
activations within a small factor of what autograd keeps; the limits are stated and raisable."""

import pytest
import torch

from colorgan import recipe as recipes
from colorgan.build import build_parts
from colorgan.data.schema import ConditionSchema
from colorgan.errors import ColorganError, RecipeError
from colorgan.model_size import BYTES, D_PASSES, check_model_size, estimate_size

SCHEMA = ConditionSchema.from_mapping({"hair": ["crimson", "gold", "navy"], "shirt": ["orange", "olive"]})

# Every built-in generator, discriminator and condition, each option that changes a shape.
CONFIGS = {
    "unet-patchgan": dict(generator={"type": "unet", "depth": 5, "base_channels": 8, "max_channels": 32,
                                     "norm": "instance"},
                          discriminator={"type": "patchgan", "layers": 2, "base_channels": 8}),
    "unet1-film-projection": dict(generator={"type": "unet", "depth": 1, "condition": "film", "norm": "none"},
                                  discriminator={"type": "projection", "norm": "batch", "base_channels": 8},
                                  condition={"type": "embedding", "dim": 4, "dropout": 0.1}),
    "resnet-film-multiscale": dict(generator={"type": "resnet", "blocks": 2, "base_channels": 8,
                                              "condition": "film", "norm": "group"},
                                   discriminator={"type": "multiscale", "scales": 2, "layers": 3,
                                                  "base_channels": 16, "norm": "spectral"},
                                   condition={"type": "rgb", "dropout": 0.2}),
    "unet-spade": dict(generator={"type": "unet", "depth": 4, "base_channels": 8, "condition": "spade"},
                       discriminator={"type": "patchgan", "layers": 2, "base_channels": 8}),
    "resnet-spade": dict(generator={"type": "resnet", "blocks": 2, "base_channels": 8, "condition": "spade"},
                         discriminator={"type": "patchgan", "layers": 2, "base_channels": 8}),
    "resnet-rgba": dict(generator={"type": "resnet", "blocks": 3, "base_channels": 8, "norm": "none"},
                        discriminator={"type": "patchgan", "layers": 4, "base_channels": 8, "norm": "none"},
                        data={"keep_alpha": True, "sketch_channels": 3}),
    "timm-unet": dict(generator={"type": "timm-unet", "encoder": "test_resnet", "decoder_channels": [16, 8, 8, 8, 8],
                                 "condition": "film", "norm": "instance"},
                      discriminator={"type": "patchgan", "layers": 1, "base_channels": 8},
                      condition={"type": "embedding", "dim": {"hair": 3}, "combine": "concat"}),
    "timm-unet-spade": dict(generator={"type": "timm-unet", "encoder": "test_resnet", "decoder_channels": [16, 8, 8, 8, 8],
                                       "condition": "spade"},
                            discriminator={"type": "patchgan", "layers": 1, "base_channels": 8}),
}


def recipe_of(config, batch_size=2):
    config = dict(config)
    data = {"image_size": 32, **config.pop("data", {})}
    return recipes.from_dict({"data": data, "train": {"batch_size": batch_size}, **config})


def kept_bytes(run, parameters) -> int:
    """Bytes autograd keeps for backward while `run()` goes forward, weights left out."""
    own = {p.data_ptr() for p in parameters}
    total = 0

    def pack(t):
        nonlocal total
        if t.data_ptr() not in own:
            total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return total


@pytest.mark.parametrize("name", CONFIGS)
def test_parameter_counts_equal_the_built_networks(name):
    recipe = recipe_of(CONFIGS[name])
    recipes.validate(recipe)
    estimate = estimate_size(recipe, SCHEMA)
    parts = build_parts(recipe, SCHEMA)
    assert estimate.generator_parameters == sum(p.numel() for p in parts.generator.parameters())
    assert estimate.discriminator_parameters == sum(p.numel() for p in parts.discriminator.parameters())


@pytest.mark.parametrize("name", ["unet-patchgan", "unet-spade", "resnet-spade", "resnet-rgba", "timm-unet"])
def test_activations_are_within_a_small_factor_of_what_autograd_keeps(name):
    recipe = recipe_of(CONFIGS[name])
    parts = build_parts(recipe, SCHEMA)
    sketch = torch.zeros(2, recipe.data.sketch_channels, 32, 32)
    encoded = parts.generator.encode([{"hair": "gold", "shirt": "olive"}] * 2)
    params = [*parts.generator.parameters(), *parts.discriminator.parameters()]
    out = []
    g = kept_bytes(lambda: out.append(parts.generator(sketch, encoded)), params)
    image, cond = out[0]
    d = kept_bytes(lambda: parts.discriminator(image.detach(), sketch, cond.detach()), params)
    ratio = estimate_size(recipe, SCHEMA).activation_bytes / (g + D_PASSES * d)
    assert 0.3 < ratio < 3, ratio


def test_estimate_scales_with_batch_and_is_a_lower_bound_before_the_data():
    one, four = (estimate_size(recipe_of(CONFIGS["unet-patchgan"], b), SCHEMA) for b in (1, 4))
    assert four.activation_bytes == 4 * one.activation_bytes and four.parameters == one.parameters
    assert one.activation_bytes % BYTES == 0
    before = estimate_size(recipe_of(CONFIGS["unet-patchgan"], 1))
    assert before.parameters < one.parameters  # one attribute with one value: the least cond_dim


def test_an_objective_without_a_discriminator_counts_none(monkeypatch):
    """Pixel terms alone train no discriminator (`build_parts` builds none), so the estimate and the
    limits' message count none; a term type not registered is taken to read one."""
    with_d = recipe_of(CONFIGS["unet-patchgan"])
    pixels = recipe_of({**CONFIGS["unet-patchgan"], "objective": [{"type": "l1", "weight": 100.0}]})
    a, b = estimate_size(with_d, SCHEMA), estimate_size(pixels, SCHEMA)
    assert build_parts(pixels, SCHEMA).discriminator is None
    assert b.discriminator_parameters == 0 and b.generator_parameters == a.generator_parameters
    assert 0 < b.activation_bytes < a.activation_bytes
    for odd in ("someone-elses", ["not", "a", "name"]):  # a model file's recipe may say anything here
        assert estimate_size(recipe_of({**CONFIGS["unet-patchgan"], "objective": [{"type": odd}]}), SCHEMA) == a
    monkeypatch.setenv("COLORGAN_MAX_ACTIVATION_GB", "1e-9")
    with pytest.raises(RecipeError) as refused:
        check_model_size(pixels, SCHEMA)
    assert "generator: unet" in str(refused.value) and "discriminator" not in str(refused.value)


def test_plugin_components_are_not_estimated():
    recipe = recipes.from_dict({"generator": {"type": "someone-elses"}})
    estimate = estimate_size(recipe)
    assert estimate.generator_parameters is None and estimate.parameters is None
    assert estimate.discriminator_parameters is not None


def test_limits_are_stated_and_can_be_raised(monkeypatch):
    big = recipes.from_dict({"generator": {"type": "resnet", "base_channels": 4096}})
    with pytest.raises(RecipeError, match=r"generator \(resnet, base_channels 4096\): .* parameters, more than "
                                          r"the 2e\+09 allowed; .*raise COLORGAN_MAX_PARAMETERS"):
        check_model_size(big)
    monkeypatch.setenv("COLORGAN_MAX_PARAMETERS", "1e13")
    monkeypatch.setenv("COLORGAN_MAX_ACTIVATION_GB", "1000")
    assert check_model_size(big).parameters > 2e9
    monkeypatch.setenv("COLORGAN_MAX_ACTIVATION_GB", "0.001")
    with pytest.raises(RecipeError, match=r"train.batch_size 16 at data.image_size 64: .* GB of activations.*"
                                          r"more than the 0.001 GB allowed"):
        check_model_size(big)
    monkeypatch.setenv("COLORGAN_MAX_ACTIVATION_GB", "lots")
    with pytest.raises(ColorganError, match="COLORGAN_MAX_ACTIVATION_GB='lots': expected a positive number"):
        check_model_size(big)


def test_huge_options_are_refused_at_once_without_building():
    """What used to hang (depth) or try a 256 TB allocation (channels) is arithmetic now."""
    for override, message in [("generator.depth=1000000000", "generator.depth: expected an integer from 1 to 12"),
                              ("generator.base_channels=10000000", "generator.base_channels: expected an integer "
                                                                    "from 1 to 65536"),
                              ("data.image_size=4096", "GB of activations")]:
        with pytest.raises(RecipeError, match=message):
            recipes.validate(recipes.from_dict({"generator": {"type": "unet"}}, [override]))
