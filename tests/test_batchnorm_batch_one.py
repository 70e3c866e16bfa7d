"""BatchNorm trained at batch 1 (the seed's pix2pix design) fails on held-out images in eval mode.

The issue, reproduced at 32 px with the real U-Net, the built-in icons and the seed's dropout: a
BatchNorm generator trained at batch 1 scores far worse in eval mode (running statistics) than the
same weights with per-image statistics; pix2pix's way out, train-mode BatchNorm at test time, makes
outputs depend on the rest of the batch. The same training with `norm: instance` gives per-image
quality in eval mode at any batch size. Then the warning the training loop gives for BatchNorm at
batch 1, and the seed recipe, which must not trigger it.
"""

import copy
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from colorgan import recipe as recipes
from colorgan.build import BatchNormAtBatchOneWarning, build_generator, build_parts, warn_batchnorm_at_batch_one
from colorgan.data import load_dataset
from colorgan.metrics import psnr
from conftest import TINY

STEPS = 600  # plain Adam + L1 at batch 1: a few seconds per network, enough for a 3 dB gap
SEED_RECIPE = Path(__file__).parent.parent / "recipes" / "seed-unet256.yaml"


def recipe(generator_norm: str = "batch", discriminator_norm: str = "batch", batch_size: int = 1) -> recipes.Recipe:
    data = copy.deepcopy(TINY)
    data["generator"].update(norm=generator_norm, dropout=0.5)  # the seed's dropout
    data["discriminator"]["norm"] = discriminator_norm
    data["train"]["batch_size"] = batch_size
    return recipes.from_dict(data)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """At 32 px and batch 1 a second thread only adds synchronisation (10x slower on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def icons():
    return load_dataset(recipe().data, seed=0)


def stack(dataset, generator):
    """A whole split as (sketches, encoded conditions, targets)."""
    items = [dataset[i] for i in range(len(dataset))]
    return (torch.stack([item["sketch"] for item in items]), generator.encode([item["conditions"] for item in items]),
            torch.stack([item["target"] for item in items]))


def train_at_batch_one(norm: str, data) -> nn.Module:
    torch.manual_seed(0)
    generator = build_generator(recipe(norm), data.schema).train()
    sketch, cond, target = stack(data.train, generator)
    optimizer = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for i in torch.randint(len(sketch), (STEPS, 1)):
        loss = (generator(sketch[i], cond[i])[0] - target[i]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return generator


@pytest.fixture(scope="module")
def trained(icons):
    """Both norms trained identically (same seed, same draws); tests score copies."""
    return {norm: train_at_batch_one(norm, icons) for norm in ("batch", "instance")}


def generate(generator, sketch, cond, batch: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([generator(sketch[i:i + batch], cond[i:i + batch])[0] for i in range(0, len(sketch), batch)])


def mean_psnr(images, targets) -> float:
    return sum(psnr(p, t) for p, t in zip(images, targets)) / len(targets)


def per_image_statistics(generator):
    """Eval mode (no dropout), but BatchNorm normalises with the batch's statistics: at batch 1, the image's."""
    generator.eval()
    for m in generator.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train()
    return generator


def test_batchnorm_trained_at_batch_one_fails_with_running_statistics(icons, trained):
    bn = copy.deepcopy(trained["batch"])
    sketch, cond, target = stack(icons.test, bn)
    running = mean_psnr(generate(bn.eval(), sketch, cond, 1), target)
    per_image = generate(per_image_statistics(bn), sketch, cond, 1)
    assert mean_psnr(per_image, target) > running + 1.0, (running, mean_psnr(per_image, target))
    # pix2pix's test-time remedy: the same image comes out differently next to three others.
    assert (generate(bn, sketch, cond, 4) - per_image).abs().max() > 0.1


def test_instance_norm_gives_per_image_quality_in_eval_mode_at_any_batch_size(icons, trained):
    instance = trained["instance"].eval()
    sketch, cond, target = stack(icons.test, instance)
    one, four = generate(instance, sketch, cond, 1), generate(instance, sketch, cond, 4)
    torch.testing.assert_close(four, one, rtol=0, atol=1e-5)
    per_image = generate(per_image_statistics(copy.deepcopy(trained["batch"])), sketch, cond, 1)
    assert mean_psnr(one, target) == pytest.approx(mean_psnr(per_image, target), abs=0.1)


@pytest.mark.parametrize("generator_norm, discriminator_norm, named", [
    ("batch", "batch", "generator and discriminator"),
    ("instance", "batch", "discriminator"),
    ("batch", "instance", "generator"),
])
def test_warning_names_the_batchnorm_components_at_batch_one(icons, generator_norm, discriminator_norm, named):
    parts = build_parts(recipe(generator_norm, discriminator_norm), icons.schema)
    with pytest.warns(BatchNormAtBatchOneWarning) as record:
        message = warn_batchnorm_at_batch_one(parts, batch_size=1)
    assert [str(w.message) for w in record] == [message]
    assert f"(in the {named})" in message and "\n" not in message
    assert "-o generator.norm=instance -o discriminator.norm=instance" in message


@pytest.mark.parametrize("norm, batch_size", [("batch", 2), ("instance", 1)])
def test_no_warning_for_larger_batches_or_instance_norm(icons, norm, batch_size):
    parts = build_parts(recipe(norm, norm), icons.schema)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_batchnorm_at_batch_one(parts, batch_size) is None


def test_seed_recipe_trains_at_batch_one_without_batchnorm(icons):
    small = ["generator.depth=5", "generator.base_channels=8", "discriminator.base_channels=8"]
    seed = recipes.load(SEED_RECIPE, small)
    assert seed.train.batch_size == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_batchnorm_at_batch_one(build_parts(seed, icons.schema), seed.train.batch_size) is None
    as_seeded = recipes.load(SEED_RECIPE, [*small, "generator.norm=batch", "discriminator.norm=batch"])
    with pytest.warns(BatchNormAtBatchOneWarning):
        warn_batchnorm_at_batch_one(build_parts(as_seeded, icons.schema), as_seeded.train.batch_size)


def test_sync_batchnorm_counts_as_batchnorm(icons):
    parts = build_parts(recipe("instance", "batch"), icons.schema)
    parts.discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(parts.discriminator)
    with pytest.warns(BatchNormAtBatchOneWarning, match=r"\(in the discriminator\)"):
        warn_batchnorm_at_batch_one(parts, batch_size=1)
