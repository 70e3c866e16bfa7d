"""Discriminators: registry build, output shapes, gradients, the seed's layer list, options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from colorgan.errors import RegistryError
from colorgan.registry import DISCRIMINATORS

NAMES = ["patchgan", "multiscale", "projection"]


def inputs(size=32, sketch_channels=1, cond_dim=10, batch=2):
    torch.manual_seed(0)
    return (
        torch.randn(batch, 3, size, size),
        torch.randn(batch, sketch_channels, size, size),
        torch.randn(batch, cond_dim),
    )


def build(name, sketch_channels=1, cond_dim=10, **options):
    return DISCRIMINATORS.build(
        {"type": name, **options}, image_channels=3, sketch_channels=sketch_channels, cond_dim=cond_dim
    )


def as_list(out):
    return out if isinstance(out, list) else [out]


def test_registered_with_summaries():
    assert set(NAMES) <= set(DISCRIMINATORS.names())
    assert all(DISCRIMINATORS.entry(n).summary for n in NAMES)


@pytest.mark.parametrize(
    "name,options",
    [
        ("patchgan", {}),
        ("patchgan", {"layers": 2, "norm": "instance"}),
        ("patchgan", {"norm": "spectral", "base_channels": 16}),
        ("multiscale", {"base_channels": 16}),
        ("multiscale", {"scales": 2, "layers": 2, "norm": "group", "base_channels": 32}),
        ("projection", {}),
        ("projection", {"norm": "batch", "base_channels": 16, "max_channels": 64}),
    ],
)
def test_forward_shape_and_gradients(name, options):
    D = build(name, **options)
    out = D(*inputs())
    maps = as_list(out)
    if name == "multiscale":
        assert isinstance(out, list) and len(out) == options.get("scales", 3)
    else:
        assert isinstance(out, torch.Tensor)
    for m in maps:
        assert m.dim() == 4 and m.shape[:2] == (2, 1) and m.shape[2] >= 1 and m.shape[3] >= 1
    sum(m.mean() for m in maps).backward()
    for pname, p in D.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname


def test_patchgan_map_sizes():
    assert build("patchgan", base_channels=8)(*inputs(32)).shape == (2, 1, 2, 2)
    assert build("patchgan", base_channels=8)(*inputs(64)).shape == (2, 1, 6, 6)
    assert build("patchgan", base_channels=8, layers=2)(*inputs(32)).shape == (2, 1, 6, 6)
    # Deeper than the image allows: padded up so the map stays >= 1x1.
    assert build("patchgan", base_channels=8, layers=4)(*inputs(32)).shape == (2, 1, 1, 1)
    sizes = [m.shape[-1] for m in build("multiscale", base_channels=8)(*inputs(64))]
    assert sizes == [6, 2, 1]


def test_seed_discriminator_layers():
    D = build("patchgan", sketch_channels=3, cond_dim=10)
    convs = [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [
        (16, 64, (4, 4), (2, 2)),
        (64, 128, (4, 4), (2, 2)),
        (128, 256, (4, 4), (2, 2)),
        (256, 512, (4, 4), (1, 1)),
        (512, 1, (4, 4), (1, 1)),
    ]
    assert all(m.padding == (1, 1) for m in D.modules() if isinstance(m, nn.Conv2d))
    layers = list(D.model)
    # No norm after the first conv; batch norm after the middle ones; LeakyReLU(0.2) after all but the last.
    assert isinstance(layers[1], nn.LeakyReLU) and layers[1].negative_slope == 0.2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 3
    assert sum(isinstance(m, nn.LeakyReLU) for m in D.modules()) == 4
    assert isinstance(layers[-1], nn.Conv2d)
    weights = torch.cat([m.weight.flatten() for m in D.modules() if isinstance(m, nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.002  # init_weights: N(0, 0.02)


def test_spectral_norm_on_every_conv():
    for D in (build("patchgan", norm="spectral", base_channels=8), build("projection", base_channels=8)):
        convs = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert convs and all(hasattr(m, "parametrizations") for m in convs)
        assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) for m in D.modules())


def test_projection_uses_the_condition_by_inner_product():
    D = build("projection", base_channels=8, norm="none").eval()
    image, sketch, cond = inputs()
    features = D.trunk(torch.cat([image, sketch], 1))
    expected = D.linear(features) + (features * D.projection(cond)[:, :, None, None]).sum(1, keepdim=True)
    assert torch.allclose(D(image, sketch, cond), expected, atol=1e-6)
    assert not torch.allclose(D(image, sketch, cond), D(image, sketch, -cond))
    assert D.projection.in_features == 10 and D.projection.bias is None


def test_bad_options():
    with pytest.raises(ValueError, match="norm"):
        DISCRIMINATORS.get("patchgan")(3, 1, 10, norm="layer")
    with pytest.raises(ValueError, match="layers"):
        DISCRIMINATORS.get("projection")(3, 1, 10, layers=0)
    with pytest.raises(ValueError, match="scales"):
        DISCRIMINATORS.get("multiscale")(3, 1, 10, scales=0)
    with pytest.raises(RegistryError) as err:
        build("multiscale", n_layers=4)
    message = str(err.value)
    assert "n_layers" in message
    for option in ("scales", "layers", "base_channels", "max_channels", "norm"):
        assert option in message
