"""The channels-last instance norm: ATen's results in values and gradients, taken only where it pays
(large channels-last maps), and a run trained through it is the run trained through ATen."""

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from colorgan.cli import cli
from colorgan.registry import instance_norm
from colorgan.registry.instance_norm import CHANNELS_LAST_FROM, InstanceNorm2d, instance_norm_channels_last


def affine_pair(channels: int) -> tuple[torch.nn.InstanceNorm2d, InstanceNorm2d]:
    aten = torch.nn.InstanceNorm2d(channels, affine=True)
    torch.nn.init.normal_(aten.weight, 1.0, 0.3)
    torch.nn.init.normal_(aten.bias, 0.0, 0.3)
    ours = InstanceNorm2d(channels)
    ours.load_state_dict(aten.state_dict())
    return aten, ours


def channels_last_map(*shape: int, dtype=torch.float32) -> torch.Tensor:
    # An offset mean: E[x^2] - E[x]^2 must not lose the variance to cancellation.
    return (torch.randn(*shape) * 2 + 3).to(dtype).contiguous(memory_format=torch.channels_last)


def test_the_channels_last_path_gives_atens_values_and_gradients():
    torch.manual_seed(0)
    aten, ours = affine_pair(8)
    x = channels_last_map(3, 8, 16, 12)
    upstream = torch.randn(3, 8, 16, 12)
    results = []
    for norm in (aten, ours):
        xx = x.clone().requires_grad_()
        y = norm(xx) if norm is aten else instance_norm_channels_last(xx, norm.weight, norm.bias, norm.eps)
        (y * upstream).sum().backward()
        results.append((y, xx.grad, norm.weight.grad, norm.bias.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=2e-5)
    assert results[1][0].is_contiguous(memory_format=torch.channels_last) and not results[0][0].is_contiguous(
        memory_format=torch.channels_last)


def test_the_closed_form_backward_passes_gradcheck():
    torch.manual_seed(1)
    x = channels_last_map(2, 3, 5, 4, dtype=torch.float64).requires_grad_()
    weight = torch.randn(3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(instance_norm_channels_last, (x, weight, bias))


def test_bf16_under_autocast_stays_bf16_and_near_fp32():
    torch.manual_seed(2)
    aten, ours = affine_pair(16)
    x = channels_last_map(2, 16, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = instance_norm_channels_last(x.bfloat16(), ours.weight, ours.bias, ours.eps)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y.float(), aten(x), rtol=0.02, atol=0.05)


@pytest.mark.parametrize("shape, layout, takes_path", [
    ((1, 64, 128, 128), torch.channels_last, True),        # 2**20 elements: the seed net's first norms
    ((1, 64, 128, 128), torch.contiguous_format, False),   # NCHW, what the CPU trains in
    ((4, 64, 8, 8), torch.channels_last, False),           # a small map: launch-bound on a GPU
])
def test_the_module_takes_the_channels_last_path_only_for_large_channels_last_maps(shape, layout, takes_path):
    torch.manual_seed(3)
    aten, ours = affine_pair(shape[1])
    x = torch.randn(*shape).contiguous(memory_format=layout)
    assert (x.numel() >= CHANNELS_LAST_FROM) == (shape[0] == 1)
    with torch.no_grad():
        expected, got = aten(x), ours(x)
    assert got.is_contiguous(memory_format=torch.channels_last) == takes_path
    if takes_path:
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    else:
        assert torch.equal(got, expected)  # ATen's own path, to the bit
    assert list(ours.state_dict()) == list(aten.state_dict()) == ["weight", "bias"]


def trained_weights(tmp_path, tiny_recipe, write_recipe, name):
    tiny_recipe["train"]["channels_last"] = True
    run = tmp_path / name
    result = CliRunner().invoke(cli, ["train", str(write_recipe(tiny_recipe, f"{name}.yaml")), "--out", str(run)])
    assert result.exit_code == 0, result.output
    return load_file(str(run / "model.safetensors"))


def test_a_run_through_the_channels_last_path_trains_the_weights_atens_path_trains(
        tmp_path, tiny_recipe, write_recipe, monkeypatch):
    """The tiny recipe (instance norm in both networks), channels-last on the CPU, every norm sent
    through the new path: its six steps end where ATen's end, to fp32 rounding."""
    through_aten = trained_weights(tmp_path, tiny_recipe, write_recipe, "aten")
    calls = []
    monkeypatch.setattr(instance_norm, "CHANNELS_LAST_FROM", 0)
    monkeypatch.setattr(instance_norm, "instance_norm_channels_last",
                        lambda *a: calls.append(1) or instance_norm_channels_last(*a))
    through_ours = trained_weights(tmp_path, tiny_recipe, write_recipe, "ours")
    assert calls, "no norm took the channels-last path"
    assert through_ours.keys() == through_aten.keys()
    for key, value in through_aten.items():
        torch.testing.assert_close(through_ours[key], value, rtol=1e-3, atol=1e-4, msg=key)


def test_a_second_derivative_through_the_path_raises_instead_of_missing_terms():
    """A gradient penalty (double backward) through the path would need the statistics' own
    derivatives, which its closed-form backward does not carry."""
    x = channels_last_map(2, 3, 8, 8).requires_grad_()
    norm = InstanceNorm2d(3)
    (grad,) = torch.autograd.grad((instance_norm_channels_last(x, norm.weight, norm.bias) ** 3).sum(), x,
                                  create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()
