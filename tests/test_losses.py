"""GAN losses: known values on hand-made logits, lists averaged, float32 out of bf16 in."""

from __future__ import annotations

import math

import pytest
import torch

from colorgan.errors import RegistryError
from colorgan.registry import LOSSES

NAMES = ["vanilla", "lsgan", "hinge"]
BIG = torch.full((2, 1, 3, 3), 30.0)


def loss(name):
    return LOSSES.build({"type": name})


def test_registered_with_summaries():
    assert set(NAMES) <= set(LOSSES.names())
    assert all(LOSSES.entry(n).summary for n in NAMES)


def test_vanilla_values():
    L = loss("vanilla")
    assert L.d_loss(BIG, -BIG).item() == pytest.approx(0.0, abs=1e-6)
    assert L.d_loss(-BIG, BIG).item() == pytest.approx(60.0, rel=1e-3)
    zeros = torch.zeros(2, 1, 4, 4)
    assert L.d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert L.g_loss(zeros).item() == pytest.approx(math.log(2))
    assert L.g_loss(BIG).item() == pytest.approx(0.0, abs=1e-6)


def test_lsgan_values():
    L = loss("lsgan")
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert L.d_loss(ones, zeros).item() == 0.0
    assert L.d_loss(zeros, ones).item() == pytest.approx(2.0)
    assert L.g_loss(ones).item() == 0.0
    assert L.g_loss(torch.tensor([3.0, -1.0])).item() == pytest.approx((4.0 + 4.0) / 2)


def test_hinge_values():
    L = loss("hinge")
    real = torch.tensor([2.0, 0.5, -1.0, 0.0])  # relu(1 - r) = 0, 0.5, 2, 1 -> mean 0.875
    fake = torch.tensor([-2.0, 0.0, 1.0, -0.5])  # relu(1 + f) = 0, 1, 2, 0.5 -> mean 0.875
    assert L.d_loss(real, fake).item() == pytest.approx(1.75)
    assert L.g_loss(fake).item() == pytest.approx(0.375)  # -mean(fake) = -(-1.5 / 4)


@pytest.mark.parametrize("name", NAMES)
def test_list_is_averaged(name):
    L = loss(name)
    torch.manual_seed(0)
    real = [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)]
    fake = [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)]
    d = L.d_loss(real, fake)
    assert d.item() == pytest.approx((L.d_loss(real[0], fake[0]) + L.d_loss(real[1], fake[1])).item() / 2)
    g = L.g_loss(fake)
    assert g.item() == pytest.approx((L.g_loss(fake[0]) + L.g_loss(fake[1])).item() / 2)
    with pytest.raises(ValueError):
        L.d_loss(real, fake[:1])


@pytest.mark.parametrize("name", NAMES)
def test_float32_and_gradients(name):
    L = loss(name)
    real = torch.randn(2, 1, 4, 4).bfloat16().requires_grad_()
    fake = torch.randn(2, 1, 4, 4).bfloat16().requires_grad_()
    d, g = L.d_loss(real, fake), L.g_loss(fake)
    assert d.dtype == g.dtype == torch.float32 and d.dim() == g.dim() == 0
    (d + g).backward()
    assert torch.isfinite(real.grad.float()).all() and torch.isfinite(fake.grad.float()).all()


def test_unknown_option_lists_options():
    with pytest.raises(RegistryError, match=r"no option 'smoothing'.*\(none\)"):
        LOSSES.build({"type": "hinge", "smoothing": 0.1})
