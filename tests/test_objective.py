"""The generator objective: a recipe's weighted list of registered terms, summed; old recipes with
`train.l1_weight` still load; a plugin term needs no change to the training step."""

import copy
import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.colour import srgb_to_lab
from colorgan.errors import ColorganError
from colorgan.objective import Objective
from colorgan.registry import LOSSES, OBJECTIVES
from colorgan.registry.objectives import ObjectiveInputs
from colorgan.train import train
from conftest import TINY


def inputs(fake, target):
    logits = torch.zeros(fake.shape[0], 1, 2, 2)
    return ObjectiveInputs(fake, target, torch.zeros_like(fake[:, :1]), torch.zeros(fake.shape[0], 2),
                           logits, LOSSES.build({"type": "lsgan"}))


def test_the_seeds_objective_is_gan_plus_100_l1():
    torch.manual_seed(0)
    fake, target = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    x = inputs(fake, target)
    total, (gan, l1) = Objective.build(recipes.Recipe().objective)(x)
    assert torch.allclose(gan, ((x.d_fake - 1) ** 2).mean())
    assert torch.allclose(l1, (fake - target).abs().mean())
    assert torch.allclose(total, gan + 100 * l1)


def test_the_l2_term_prefers_the_mean_where_l1_prefers_the_median():
    # one pixel, three equally likely targets: L2 is least at their mean, L1 at their median
    targets = torch.tensor([-1.0, -0.8, 1.0]).view(3, 1, 1, 1)
    guesses = torch.linspace(-1, 1, 201)

    def best(term):
        values = [OBJECTIVES.build({"type": term})(inputs(g.expand(3, 1, 1, 1), targets)) for g in guesses]
        return float(guesses[int(torch.stack(values).argmin())])

    assert best("l2") == pytest.approx(targets.mean().item(), abs=0.01)
    assert best("l1") == pytest.approx(-0.8, abs=0.01)


def test_the_region_term_scores_only_the_pixels_the_conditions_colour():
    target = torch.zeros(1, 3, 4, 4)
    region = torch.zeros(1, 1, 4, 4)
    region[..., :2, :] = 1                       # the top half is the conditioned region
    outside, inside = target.clone(), target.clone()
    outside[..., 2:, :] = 0.5
    inside[..., :2, :] = 0.5
    term = OBJECTIVES.build({"type": "region"})
    assert term(replace(inputs(outside, target), region=region)) == 0
    assert torch.isclose(term(replace(inputs(inside, target), region=region)), torch.tensor(0.5))
    with pytest.raises(ValueError, match="needs the batch's condition regions"):
        term(inputs(inside, target))


def test_feature_matching_compares_the_discriminators_activations_on_fake_and_real():
    from colorgan.registry import DISCRIMINATORS
    from colorgan.registry.objectives import discriminator_features

    torch.manual_seed(0)
    d = DISCRIMINATORS.build({"type": "patchgan", "layers": 2, "base_channels": 8},
                             image_channels=3, sketch_channels=1, cond_dim=2).requires_grad_(False)  # frozen, as in a step
    sketch, cond = torch.zeros(2, 1, 32, 32), torch.zeros(2, 2)
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    fake = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    features = discriminator_features(d, sketch, cond)
    assert len(features(target)) == 3  # one per LeakyReLU: first conv, one per further layer
    term = OBJECTIVES.build({"type": "feature_matching"})
    assert term(replace(inputs(target, target), features=features)) == 0
    value = term(replace(inputs(fake, target), features=features))
    value.backward()
    assert value > 0 and fake.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="needs the discriminator's features"):
        term(inputs(fake, target))
    with pytest.raises(ValueError, match="Identity has no LeakyReLU layers"):
        discriminator_features(identity_discriminator(), sketch, cond)(target)


def identity_discriminator():
    class Identity(torch.nn.Module):
        def forward(self, image, sketch, cond):
            return image

    return Identity()


def test_the_lab_term_is_a_colour_distance_with_finite_gradients():
    fake = torch.full((1, 3, 4, 4), -1.0, requires_grad=True)  # black: the cube root's steep end
    target = torch.ones(1, 3, 4, 4)                             # white
    value = OBJECTIVES.build({"type": "lab"})(inputs(fake, target))
    assert value.item() == pytest.approx(1 / 3, abs=1e-3)  # |ΔL| = 100 of |ΔL|+|Δa|+|Δb| over 3 channels
    value.backward()
    assert torch.isfinite(fake.grad).all()
    same = OBJECTIVES.build({"type": "lab"})(inputs(target, target))
    assert same.item() == 0.0
    assert torch.allclose(srgb_to_lab(torch.ones(3, dtype=torch.float64)), torch.tensor([100.0, 0, 0], dtype=torch.float64), atol=1e-2)


def test_an_old_recipe_with_l1_weight_loads_as_its_objective():
    old = copy.deepcopy(TINY)
    old["train"]["l1_weight"] = 42.0
    old["data"]["num_workers"] = 0
    recipe = recipes.from_dict(old)
    assert recipe.objective == [{"type": "gan", "weight": 1.0}, {"type": "l1", "weight": 42.0}]
    both = copy.deepcopy(old)
    both["objective"] = [{"type": "l1", "weight": 1.0}]
    with pytest.raises(ColorganError, match="train.l1_weight: replaced by objective"):
        recipes.from_dict(both)


@pytest.mark.parametrize("objective, message", [
    ([], "objective: expected at least one term"),
    ([{"type": "l3"}], "objective[0]"),
    ([{"type": "l1", "weight": -1}], "objective[0].weight: expected a finite number >= 0, got -1"),
    ([{"type": "l1"}, {"type": "l1", "weight": 2}], "objective[1]: term 'l1' is listed twice"),
    ([{"type": "l1", "size": 3}], "objective[0]"),
])
def test_bad_objectives_are_one_line(tmp_path, objective, message, write_recipe):
    bad = copy.deepcopy(TINY)
    bad["objective"] = objective
    result = CliRunner().invoke(cli, ["recipe", "check", str(write_recipe(bad))])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


PLUGIN = '''
from colorgan.registry import OBJECTIVES

@OBJECTIVES.register("mean-brightness")
class MeanBrightness:
    """Pull the image's mean towards the target's: a stand-in for a plugin's own term."""

    log_key = "brightness"

    def __call__(self, x):
        return (x.fake.float().mean() - x.target.float().mean()).abs()
'''


def test_a_plugin_term_and_the_built_in_terms_train_and_are_logged(tmp_path, monkeypatch):
    (tmp_path / "brightness_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = copy.deepcopy(TINY)
    recipe.update(plugins=["brightness_plugin"], objective=[
        {"type": "gan", "weight": 1.0}, {"type": "lab", "weight": 10.0}, {"type": "mean-brightness", "weight": 5.0},
        {"type": "region", "weight": 3.0}, {"type": "feature_matching", "weight": 2.0}])
    recipe["train"].update(max_steps=2, log_every=1)
    result = train(recipes.from_dict(recipe), out=tmp_path / "run")
    records = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "d_loss" in r]
    assert logged and all({"g_gan", "lab", "brightness", "region_l1", "fm"} <= set(r) and "l1" not in r for r in logged)
    r = logged[-1]
    assert r["region_l1"] > 0 and r["fm"] > 0
    assert r["g_loss"] == pytest.approx(r["g_gan"] + 10 * r["lab"] + 5 * r["brightness"] + 3 * r["region_l1"]
                                        + 2 * r["fm"], rel=1e-4)


def test_only_an_objective_with_a_region_term_asks_for_the_regions():
    from colorgan.objective import Objective

    assert not Objective.build([{"type": "gan"}, {"type": "l1", "weight": 100.0}]).needs_region
    assert Objective.build([{"type": "l1"}, {"type": "region", "weight": 100.0}]).needs_region


def test_only_an_objective_with_a_term_that_reads_the_discriminator_needs_it():
    assert not Objective.build([{"type": "l1"}, {"type": "region"}, {"type": "l2"}, {"type": "lab"}]).needs_discriminator
    assert Objective.build([{"type": "gan", "weight": 0.0}, {"type": "l1"}]).needs_discriminator
    assert Objective.build([{"type": "l1"}, {"type": "feature_matching"}]).needs_discriminator
    # a plugin term that does not say is assumed to read it (it may use d_fake or features)
    silent = type("SilentTerm", (), {"log_key": "silent"})()
    assert Objective([(OBJECTIVES.build({"type": "l1"}), 1.0), (silent, 1.0)]).needs_discriminator


PIXELS_ONLY = [{"type": "l1", "weight": 100.0}]
WITH_GAN = [{"type": "gan", "weight": 0.0}, {"type": "l1", "weight": 100.0}]


def _recipe(objective, **train_options):
    recipe = copy.deepcopy(TINY)
    recipe["objective"] = objective
    recipe["train"].update(train_options)
    return recipe


def test_without_a_term_that_reads_it_no_discriminator_is_built(tmp_path):
    """The generator learns exactly what it learns beside a `gan` term of weight 0 (whose discriminator
    trains for nothing); no discriminator is saved; no d_loss is logged, g_loss and the term are."""
    from safetensors.torch import load_file

    alone = train(recipes.from_dict(_recipe(PIXELS_ONLY, log_every=1)), out=tmp_path / "alone").run
    beside = train(recipes.from_dict(_recipe(WITH_GAN, log_every=1)), out=tmp_path / "beside").run
    g_alone, g_beside = load_file(str(alone / "model.safetensors")), load_file(str(beside / "model.safetensors"))
    assert g_alone.keys() == g_beside.keys() and all(torch.equal(g_alone[k], g_beside[k]) for k in g_alone)
    for folder, built in ((alone, False), (beside, True)):
        assert (folder / "checkpoints" / "step-000006" / "model_1.safetensors").is_file() == built
        info = CliRunner().invoke(cli, ["info", str(folder / "model.safetensors")]).output
        assert ("none was built or trained" in info) == (not built)
        assert ("the discriminator and loss trained it" in info) == built
    logged = [json.loads(line) for line in (alone / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in logged if "g_loss" in r]
    assert len(losses) == 6 and all("l1" in r and "d_loss" not in r for r in losses)


def test_a_checkpoint_without_a_discriminator_resumes_only_under_an_objective_without_one(tmp_path, write_recipe):
    """Resumed under a `gan` term, a run that built no discriminator is refused in one line naming the
    missing file, and its folder is left as it was; a checkpoint with a discriminator resumes under
    pixel terms alone and finishes."""
    run = tmp_path / "pixels"
    assert train(recipes.from_dict(_recipe(PIXELS_ONLY)), out=run, stop_at=3).model is None
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = CliRunner().invoke(cli, ["train", str(write_recipe(_recipe(WITH_GAN))), "--out", str(run),
                                      "--resume", "latest"])
    assert result.exit_code == 2, result.output
    message = result.output.strip().splitlines()
    assert len(message) == 1 and "step-000003/model_1.safetensors: missing" in message[0], result.output
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before

    run = tmp_path / "gan"
    train(recipes.from_dict(_recipe(WITH_GAN)), out=run, stop_at=3)
    resumed = train(recipes.from_dict(_recipe(PIXELS_ONLY)), out=run, resume="latest")
    assert resumed.step == 6 and resumed.model.is_file()
    assert not (run / "checkpoints" / "step-000006" / "model_1.safetensors").exists()
