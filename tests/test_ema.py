"""`train.ema`: the average follows decay * average + (1 - decay) * weights, buffers included, and
goes through a checkpoint folder as `ema.safetensors`."""

import pytest
import torch
from torch import nn

from colorgan.ema import EMA, FILE
from colorgan.errors import ColorganError


def test_the_average_is_the_exponential_moving_average_of_weights_and_buffers(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    ema = EMA(model, decay=0.75)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    expect = {k: v.clone().float() for k, v in start.items() if v.is_floating_point()}
    for _ in range(3):
        model(torch.randn(4, 1, 8, 8))          # moves BatchNorm's running statistics
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update()
        for k, v in model.state_dict().items():
            if k in expect:
                expect[k] = 0.75 * expect[k] + 0.25 * v
    got = ema.module.state_dict()
    for k, v in expect.items():
        assert torch.allclose(got[k], v, atol=1e-6), k
    assert got["1.num_batches_tracked"] == model.state_dict()["1.num_batches_tracked"] == 3
    assert not any(p.requires_grad for p in ema.module.parameters())

    ema.save(tmp_path)
    again = EMA(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), decay=0.75)
    again.load(tmp_path)
    assert (tmp_path / FILE).is_file()
    assert all(torch.equal(a, b) for a, b in zip(again.module.state_dict().values(), got.values()))

    (tmp_path / FILE).unlink()
    with pytest.raises(ColorganError, match="no ema.safetensors: this checkpoint was saved without train.ema"):
        again.load(tmp_path)


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
