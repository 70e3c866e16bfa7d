"""Generators: the contract (shapes, range, gradients), the seed's pix2pix layout, timm encoders, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from colorgan.errors import RegistryError
from colorgan.registry import GENERATORS

# Small options for every built-in generator: a new one without an entry here fails the test below.
SMALL = {
    "unet": ({"depth": 5, "base_channels": 8}, 32),  # 32 px at depth 5: the innermost map is 1x1
    "resnet": ({"blocks": 2, "base_channels": 8}, 32),
    "timm-unet": ({"encoder": "resnet18"}, 64),
}


def build(name: str, in_channels: int = 1, out_channels: int = 3, cond_dim: int = 10, **options):
    return GENERATORS.build({"type": name, **options}, in_channels=in_channels, out_channels=out_channels, cond_dim=cond_dim)


def run_and_backprop(gen: nn.Module, size: int, in_channels: int = 1, cond_dim: int = 10, batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    gen.train()
    sketch = torch.rand(batch, in_channels, size, size) * 2 - 1
    cond = torch.rand(batch, cond_dim)
    out = gen(sketch, cond)
    (out * torch.randn_like(out)).mean().backward()
    for name, p in gen.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"no gradient for {name}"
            assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
    return out


def test_every_builtin_generator_has_small_test_options():
    builtin = [n for n, e in GENERATORS.entries().items() if e.origin == "built-in"]
    assert sorted(builtin) == sorted(SMALL)
    for name in builtin:
        assert GENERATORS.entry(name).summary, f"{name} has no one-line summary"


MODULATION = {"concat": None, "film": "FiLM", "spade": "SpatialFiLM"}


def modulations(gen: nn.Module) -> set[str]:
    return {type(m).__name__ for m in gen.modules()} & {"FiLM", "SpatialFiLM"}


@pytest.mark.parametrize("condition", sorted(MODULATION))
@pytest.mark.parametrize("name", sorted(SMALL))
def test_contract_shapes_range_gradients(name, condition):
    options, size = SMALL[name]
    gen = build(name, condition=condition, **options)
    out = run_and_backprop(gen, size)
    assert out.shape == (2, 3, size, size)
    assert out.min() >= -1 and out.max() <= 1
    assert size % gen.size_multiple == 0
    assert modulations(gen) == ({MODULATION[condition]} if MODULATION[condition] else set())
    # the condition actually changes the output
    gen.eval()
    sketch = torch.zeros(1, 1, size, size)
    a = gen(sketch, torch.zeros(1, 10))
    b = gen(sketch, torch.ones(1, 10))
    assert not torch.allclose(a, b)


def test_spade_modulates_each_pixel_by_the_sketch_there_and_film_each_channel_alike():
    """FiLM's shift is one number per channel; SpatialFiLM's follows the sketch's layout (and the
    condition), so the same condition can do one thing to a face and another to a shirt."""
    from colorgan.registry.generators import FiLM, SpatialFiLM

    torch.manual_seed(0)
    sketch = torch.ones(1, 1, 16, 16)
    sketch[..., :, :8] = -1  # lines on the left half
    x = torch.zeros(1, 4, 8, 8)
    cond_a, cond_b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    spade, film = SpatialFiLM(2, 1, 4, scale=2), FiLM(2, 4)
    for m in (spade, film):
        for p in m.parameters():
            nn.init.normal_(p)
    shift = spade(x, cond_a, sketch)
    inner = shift[..., 2:-2, :]  # away from the zero padding at the border
    assert not torch.allclose(inner[..., :3], inner[..., -3:].flip(-1))  # left and right differ
    assert not torch.allclose(spade(x, cond_b, sketch), shift)  # the condition changes it
    flat = film(x, cond_a, sketch)
    assert torch.equal(flat, flat[..., :1, :1].expand_as(flat))  # FiLM: the same at every pixel


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("condition", sorted(MODULATION))
def test_cond_dim_zero(name, condition):
    options, size = SMALL[name]
    gen = build(name, cond_dim=0, condition=condition, **options)
    assert not modulations(gen)
    out = run_and_backprop(gen, size, cond_dim=0)
    assert out.shape == (2, 3, size, size)
    gen.eval()
    assert gen(torch.zeros(1, 1, size, size), None).shape == (1, 3, size, size)


# pix2pix `unet_256` (UnetGenerator(input_nc=13, output_nc=3, num_downs=8, ngf=64, use_dropout=True)):
# its conv layers and dropouts in forward order.
PIX2PIX_UNET_256_13 = [
    ("Conv2d", 13, 64, 4, 2),
    ("Conv2d", 64, 128, 4, 2),
    ("Conv2d", 128, 256, 4, 2),
    ("Conv2d", 256, 512, 4, 2),
    ("Conv2d", 512, 512, 4, 2),
    ("Conv2d", 512, 512, 4, 2),
    ("Conv2d", 512, 512, 4, 2),
    ("Conv2d", 512, 512, 4, 2),  # innermost: 1x1 at 256 px
    ("ConvTranspose2d", 512, 512, 4, 2),
    ("ConvTranspose2d", 1024, 512, 4, 2),
    ("Dropout", 0.5),
    ("ConvTranspose2d", 1024, 512, 4, 2),
    ("Dropout", 0.5),
    ("ConvTranspose2d", 1024, 512, 4, 2),
    ("Dropout", 0.5),
    ("ConvTranspose2d", 1024, 256, 4, 2),
    ("ConvTranspose2d", 512, 128, 4, 2),
    ("ConvTranspose2d", 256, 64, 4, 2),
    ("ConvTranspose2d", 128, 3, 4, 2),
]


def test_seed_unet_is_pix2pix_unet_256():
    with torch.device("meta"):  # shapes only: no memory, no compute
        gen = build("unet", in_channels=3, cond_dim=10, depth=8, base_channels=64, max_channels=512)
        seen = []

        def record(module, args, output):
            if isinstance(module, nn.Dropout):
                seen.append(("Dropout", module.p))
            else:
                seen.append((type(module).__name__, module.in_channels, module.out_channels, module.kernel_size[0], module.stride[0]))

        for m in gen.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Dropout)):
                m.register_forward_hook(record)
        out = gen(torch.zeros(1, 3, 256, 256), torch.zeros(1, 10))
    assert seen == PIX2PIX_UNET_256_13
    assert out.shape == (1, 3, 256, 256)
    assert gen.size_multiple == 256
    assert isinstance(gen.head[-1], nn.Tanh)
    # pix2pix has no norm after the first conv nor after the innermost conv
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gen.down[0].modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gen.down[-1].modules())


@pytest.mark.parametrize("norm", ["instance", "group", "none"])
def test_unet_norms(norm):
    gen = build("unet", depth=4, base_channels=8, norm=norm, dropout=0.0)
    assert run_and_backprop(gen, 16).shape == (2, 3, 16, 16)


# (encoder, size, stage reductions deepest first)
TIMM_FAMILIES = [
    ("resnet18", 64, [16, 8, 4, 2, 1]),
    ("efficientnet_b0", 64, [16, 8, 4, 2, 1]),
    ("convnext_atto", 64, [16, 8, 4, 2, 1]),  # first level at reduction 4: two extra x2 stages
    ("test_mambaout", 64, [16, 8, 4, 2, 1]),  # NHWC features
]


@pytest.mark.parametrize("encoder,size,targets", TIMM_FAMILIES)
def test_timm_unet_families(encoder, size, targets):
    gen = build("timm-unet", encoder=encoder, condition="film")
    assert gen.targets == targets
    assert gen.size_multiple == 32
    out = run_and_backprop(gen, size)
    assert out.shape == (2, 3, size, size)
    assert out.abs().max() <= 1


def test_timm_unet_nhwc_detected_from_the_shapes_too():
    gen = build("timm-unet", encoder="test_mambaout", cond_dim=3)
    assert gen._nhwc  # timm says so (output_fmt)
    gen.eval()
    x, c = torch.zeros(1, 1, 32, 32), torch.zeros(1, 3)
    with torch.no_grad():
        expected = gen(x, c)
        gen._nhwc = False  # an encoder that does not say: the channel dim gives it away
        assert torch.allclose(gen(x, c), expected)


def test_timm_unet_decoder_channels_and_out_indices():
    gen = build("timm-unet", encoder="test_efficientnet", out_indices=[1, 2, 3], decoder_channels=[24, 20, 18, 16])
    assert gen.reductions == [4, 8, 16] and gen.targets == [8, 4, 2, 1] and gen.size_multiple == 16
    assert [stage.norm2.num_features for stage in gen.decoder] == [24, 20, 18, 16]
    assert run_and_backprop(gen, 48).shape == (2, 3, 48, 48)
    with pytest.raises(RegistryError, match="needs 4 positive widths"):
        build("timm-unet", encoder="test_efficientnet", out_indices=[1, 2, 3], decoder_channels=[8, 8])


def test_timm_unet_unknown_encoder_suggests_names():
    with pytest.raises(RegistryError, match="generator: encoder: unknown timm model 'resnt18' .*did you mean 'resnet18'"):
        build("timm-unet", encoder="resnt18")
    with pytest.raises(RegistryError, match="unknown timm model 'hf-hub:"):
        build("timm-unet", encoder="hf-hub:someone/model")


def test_timm_unet_pretrained_from_a_local_file_only(tmp_path):
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("test_resnet", pretrained=False)
    weights = tmp_path / "test_resnet.safetensors"
    save_file(source.state_dict(), str(weights))
    gen = build("timm-unet", encoder="test_resnet", pretrained=str(weights), in_channels=1, cond_dim=2)
    assert torch.equal(gen.encoder.layer4[0].conv1.weight, source.layer4[0].conv1.weight)
    assert gen.encoder.conv1[0].weight.shape[1] == 3  # timm adapted the input conv to 1 + 2 channels

    missing = tmp_path / "nowhere.safetensors"
    with pytest.raises(RegistryError, match="no weights file at .*nowhere.safetensors"):
        build("timm-unet", encoder="test_resnet", pretrained=str(missing))
    pickled = tmp_path / "model.pth"
    pickled.write_bytes(b"not read")
    with pytest.raises(RegistryError, match="not a .safetensors file"):
        build("timm-unet", encoder="test_resnet", pretrained=str(pickled))
    with pytest.raises(RegistryError, match="does not hold timm 'test_efficientnet' weights"):
        build("timm-unet", encoder="test_efficientnet", pretrained=str(weights))


def test_check_size_names_sizes_that_work():
    gen = build("unet", depth=6, base_channels=4)
    assert gen.size_multiple == 64
    gen.check_size(128)
    with pytest.raises(ValueError, match=r"image size 100 does not fit unet depth 6: use a multiple of 64, e\.g\. 64 or 128"):
        gen.check_size(100)
    with pytest.raises(ValueError, match=r"e\.g\. 64$"):
        gen.check_size(32)
    with pytest.raises(ValueError, match="image size 96"):  # forward checks H and W
        gen(torch.zeros(1, 1, 64, 96), torch.zeros(1, 10))
    resnet = build("resnet", blocks=1, base_channels=4)
    with pytest.raises(ValueError, match=r"multiple of 4 of at least 8, e\.g\. 8 or 12"):
        resnet.check_size(10)
    with pytest.raises(ValueError, match=r"e\.g\. 8$"):
        resnet.check_size(4)
    timm_unet = build("timm-unet", encoder="test_efficientnet")
    with pytest.raises(ValueError, match=r"image size 48 .* e\.g\. 32 or 64"):
        timm_unet(torch.zeros(1, 1, 48, 48), torch.zeros(1, 10))


def test_bad_options():
    with pytest.raises(RegistryError, match=r"no option 'depht' \(did you mean 'depth'\?\); its options: depth, base_channels"):
        GENERATORS.build({"type": "unet", "depht": 5}, in_channels=1, out_channels=3, cond_dim=10)
    # bad values: the component's ValueError, reported by the registry as a RegistryError
    with pytest.raises(RegistryError, match="condition: expected one of concat, film, spade"):
        build("resnet", condition="add")
    with pytest.raises(RegistryError, match="depth: expected an integer >= 1"):
        build("unet", depth=0)
    with pytest.raises(RegistryError, match="norm: expected one of"):
        build("unet", depth=2, norm="layer")
    with pytest.raises(RegistryError, match="encoder_options: in_chans"):
        build("timm-unet", encoder="test_resnet", encoder_options={"in_chans": 5})
    with pytest.raises(ValueError, match=r"cond: expected shape \(1, 10\)"):
        build("unet", depth=2, base_channels=4)(torch.zeros(1, 1, 4, 4), torch.zeros(1, 3))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_test_flip_averages_with_the_mirror_in_eval_mode_only(name):
    options, size = SMALL[name]
    torch.manual_seed(0)
    gen = build(name, test_flip=True, **options)
    sketch, cond = torch.rand(2, 1, size, size) * 2 - 1, torch.rand(2, 10)
    raw = gen(sketch, cond)
    assert not torch.allclose(raw, gen(sketch.flip(-1), cond).flip(-1))  # training: the plain network
    gen.eval()
    with torch.no_grad():
        out, mirrored = gen(sketch, cond), gen(sketch.flip(-1), cond)
        drawn = (gen.draw(sketch, cond) + gen.draw(sketch.flip(-1), cond).flip(-1)) / 2
    torch.testing.assert_close(out, drawn)
    torch.testing.assert_close(mirrored, out.flip(-1))  # a mirrored sketch gives the mirrored image
    with pytest.raises(RegistryError, match="test_flip: expected one of false, true, got 'yes'"):
        build(name, test_flip="yes", **options)
