"""`train.ema`: the average follows decay * average + (1 - decay) * weights, its BatchNorm
statistics are recomputed for the averaged weights (never averaged), and it goes through a
checkpoint folder as `ema.safetensors`."""

import pytest
import torch
from torch import nn

from colorgan.ema import EMA, FILE
from colorgan.errors import ColorganError


class Drawing(nn.Module):
    """A generator-shaped module: (sketch, cond) -> image, with a BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)

    def forward(self, sketch, cond):
        return self.norm(self.conv(sketch)) * cond[:, :1, None, None]


def test_the_average_is_the_exponential_moving_average_of_the_weights(tmp_path):
    torch.manual_seed(0)
    model = Drawing()
    ema = EMA(model, decay=0.75)
    expect = {k: v.clone() for k, v in model.named_parameters()}
    for _ in range(3):
        model(torch.randn(4, 1, 8, 8), torch.ones(4, 1))  # moves BatchNorm's running statistics
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update()
        for k, v in model.named_parameters():
            expect[k] = 0.75 * expect[k] + 0.25 * v.detach()
    got = dict(ema.module.named_parameters())
    for k, v in expect.items():
        assert torch.allclose(got[k], v, atol=1e-6), k
    assert not any(p.requires_grad for p in ema.module.parameters())
    # the live model's statistics are not averaged in: they belong to other weights
    assert torch.equal(ema.module.norm.running_mean, torch.zeros(2))

    ema.save(tmp_path)
    again = EMA(Drawing(), decay=0.75)
    again.load(tmp_path)
    assert (tmp_path / FILE).is_file()
    assert all(torch.equal(a, b) for a, b in zip(again.module.state_dict().values(), ema.module.state_dict().values()))

    (tmp_path / FILE).unlink()
    with pytest.raises(ColorganError, match="no ema.safetensors: this checkpoint was saved without train.ema"):
        again.load(tmp_path)


def test_the_averages_batchnorm_statistics_are_those_of_its_own_weights():
    torch.manual_seed(0)
    model = Drawing()
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    ema.update()
    sketches = [torch.randn(4, 1, 8, 8) for _ in range(3)]
    batches = lambda: ({"sketch": s, "cond": torch.ones(4, 1)} for s in sketches)  # noqa: E731
    ema.fit_norm_statistics(step=7, batches=batches)
    activations = ema.module.conv(torch.cat(sketches))
    assert torch.allclose(ema.module.norm.running_mean, activations.mean(dim=(0, 2, 3)), atol=1e-5)
    fitted = ema.module.norm.running_mean.clone()
    ema.fit_norm_statistics(step=7, batches=lambda: pytest.fail("fitted twice at one step"))
    ema.update()  # new weights: the next use fits again
    ema.fit_norm_statistics(step=8, batches=batches)
    assert not torch.equal(ema.module.norm.running_mean, fitted)


def test_resuming_a_checkpoint_without_an_average_with_train_ema_is_one_line(tmp_path):
    import copy

    from colorgan import recipe as recipes
    from colorgan.train import train
    from conftest import TINY

    tiny = copy.deepcopy(TINY)
    tiny["train"].update(max_steps=4, checkpoint_every=100)
    train(recipes.from_dict(tiny), out=tmp_path / "run", stop_at=2)
    tiny["train"]["ema"] = 0.9
    with pytest.raises(ColorganError, match=r"step-000002: no ema.safetensors"):
        train(recipes.from_dict(tiny), out=tmp_path / "run", resume="latest")
    assert "ema: null" in (tmp_path / "run" / "recipe.yaml").read_text()  # a failed resume changes nothing


def test_a_trained_averages_batchnorm_statistics_fit_its_weights(tmp_path, tiny_recipe):
    """Through `train`: the model file of a BatchNorm generator trained with `train.ema` holds, as
    running mean, the mean its own weights give over the training rows (averaged statistics were
    those of other weights: 11.8 dB where the fitted ones give 18.9 on the Twemoji set)."""
    from torch.utils.data import DataLoader

    from colorgan import checkpoint
    from colorgan import recipe as recipes
    from colorgan.data import load_dataset, make_collate
    from colorgan.train import train

    tiny_recipe["generator"]["norm"] = "batch"
    tiny_recipe["optimizer"] = {"lr": 0.01}
    tiny_recipe["train"].update(max_steps=12, ema=0.8)
    recipe = recipes.from_dict(tiny_recipe)
    result = train(recipe, out=tmp_path / "run")
    generator, _, _ = checkpoint.load(result.model)
    norm = next(m for m in generator.modules() if isinstance(m, nn.BatchNorm2d))
    stored = norm.running_mean.clone()
    seen = []
    norm.register_forward_hook(lambda module, args, out: seen.append(args[0].mean(dim=(0, 2, 3))))
    data = load_dataset(recipe.data, recipe.seed).train
    assert len(data) % recipe.train.batch_size == 0  # every row is in the fitted statistics
    batch = next(iter(DataLoader(data, batch_size=len(data), collate_fn=make_collate(generator.encode))))
    generator.train()(batch["sketch"], batch["cond"])
    assert torch.allclose(stored, seen[0], atol=1e-4), (stored, seen[0])
