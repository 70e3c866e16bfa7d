"""A U-Net decoder over any timm `features_only` encoder; weights only ever from a local file."""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from colorgan.registry import GENERATORS
from colorgan.registry.generators.common import (
    GeneratorBase,
    GeneratorOptionError,
    modulation,
)
from colorgan.registry.layers import init_weights, norm_layer

# create_model keywords the generator sets itself; `encoder_options` may not override them.
_RESERVED = ("pretrained", "features_only", "in_chans", "out_indices", "pretrained_cfg_overlay", "pretrained_cfg")


class _DecoderStage(nn.Module):
    """Upsample to the skip's size, concatenate the skip, (conv3x3, norm, ReLU) x 2, FiLM or
    SpatialFiLM on the 2nd."""

    def __init__(self, cin: int, skip: int, cout: int, norm: str, film: nn.Module | None) -> None:
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Sequential(nn.Conv2d(cin + skip, cout, 3, 1, 1, bias=bias), norm_layer(norm, cout), nn.ReLU())
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=bias)
        self.norm2 = norm_layer(norm, cout)
        self.film = film

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int], cond: torch.Tensor | None,
                sketch: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        x = self.norm2(self.conv2(self.conv1(x)))
        if self.film is not None:
            x = self.film(x, cond, sketch)
        return torch.relu(x)


def _create_encoder(name: str, in_chans: int, out_indices: Any, pretrained: str | None, options: dict) -> nn.Module:
    import timm

    if not isinstance(name, str) or not timm.is_model(name):
        close = difflib.get_close_matches(str(name), timm.list_models(), n=5, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise GeneratorOptionError(
            f"encoder: unknown timm model {name!r}{hint}; timm.list_models() lists the names"
        )
    taken = sorted(set(options) & set(_RESERVED))
    if taken:
        raise GeneratorOptionError(f"encoder_options: {', '.join(taken)} are set by timm-unet itself")
    kwargs = dict(options, features_only=True, in_chans=in_chans)
    if out_indices is not None:
        kwargs["out_indices"] = tuple(out_indices)
    if pretrained is not None:
        # timm loads a state dict handed to it, then adapts the input conv to in_chans and drops
        # the classifier; with `state_dict` set it never looks at the hub or a URL.
        state = _load_local_weights(name, pretrained, options)
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"state_dict": state, "file": None, "url": None, "hf_hub_id": None})
    else:
        kwargs["pretrained"] = False
    if out_indices is not None:
        # Some feature wrappers (EfficientNetFeatures) keep the blocks past the last level asked
        # for: parameters without gradients, which DDP rejects. timm's 'getter' wrapper prunes them.
        try:
            return timm.create_model(name, feature_cls="getter", **kwargs)
        except Exception:  # no forward_intermediates: the default wrapper below
            pass
    try:
        return timm.create_model(name, **kwargs)
    except Exception as err:  # timm's own code on the user's options: any failure is a bad option
        raise GeneratorOptionError(f"encoder {name!r} cannot be built as a features_only encoder: {err}") from None


def _load_local_weights(name: str, path: str, options: dict) -> dict[str, torch.Tensor]:
    """A timm-format state dict from a local .safetensors file, checked against the model's keys."""
    import timm
    from safetensors.torch import load_file

    file = Path(path).expanduser()
    if not file.is_file():
        raise GeneratorOptionError(f"pretrained: no weights file at {str(file)!r} (only local files are read)")
    if file.suffix != ".safetensors":
        raise GeneratorOptionError(f"pretrained: {str(file)!r} is not a .safetensors file (pickles are never loaded)")
    try:
        state = load_file(str(file))
    except Exception as err:  # safetensors raises its own error types for a broken header
        raise GeneratorOptionError(f"pretrained: cannot read {str(file)!r}: {err}") from None
    with torch.device("meta"):  # the key list without allocating or initialising anything
        reference = timm.create_model(name, pretrained=False, **options)
    heads = reference.pretrained_cfg.get("classifier") or ()
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    missing = [
        k for k in reference.state_dict()
        if k not in state and not k.endswith("num_batches_tracked") and not any(k.startswith(h + ".") for h in heads)
    ]  # fmt: skip
    if missing:
        raise GeneratorOptionError(
            f"pretrained: {str(file)!r} does not hold timm {name!r} weights: {len(missing)} missing, "
            f"e.g. {', '.join(missing[:3])}"
        )
    return state


def decoder_plan(encoder: str, feature_channels: list[int], reductions: list[int], first: int,
                 decoder_channels: list[int] | None) -> tuple[list[int], list[int], list[int]]:
    """The decoder's stages, deepest first: (skip widths, reductions, widths).

    One stage per shallower encoder level, then x2 stages down to reduction 1; the full-resolution
    stage also sees the network input (`first` channels: the sketch and condition maps). Default
    widths: each skip level's, then halving (at least 16). Shared by the constructor and the size
    estimate (`colorgan.model_size`), which must agree layer for layer.
    """
    skips = feature_channels[-2::-1]
    targets = reductions[-2::-1]
    r = reductions[0]
    while r > 1:
        r = max(1, r // 2)
        targets.append(r)
        skips.append(0)
    if targets and targets[-1] == 1:
        skips[-1] += first
    if decoder_channels is None:
        decoder_channels = list(feature_channels[-2::-1])
        while len(decoder_channels) < len(targets):
            previous = decoder_channels[-1] if decoder_channels else feature_channels[0]
            decoder_channels.append(max(16, previous // 2))
    decoder_channels = list(decoder_channels)
    if len(decoder_channels) != len(targets) or not all(isinstance(c, int) and c > 0 for c in decoder_channels):
        raise GeneratorOptionError(
            f"decoder_channels: {encoder!r} needs {len(targets)} positive widths, one per decoder "
            f"stage (at reductions {', '.join(map(str, targets))}), got {decoder_channels!r}"
        )
    return skips, targets, decoder_channels


def describe_encoder(encoder: str, in_chans: int, out_indices: Any, options: dict | None) -> tuple[int, list[int], list[int]]:
    """(parameters, feature widths, reductions) of a timm encoder, from timm on the meta device.

    The encoder's architecture is timm's, so only timm can say how big it is; on the meta device
    it allocates nothing. Pretrained weights do not change the shapes and are not read.
    """
    with torch.device("meta"):
        net = _create_encoder(encoder, in_chans, out_indices, None, dict(options or {}))
    info = net.feature_info
    return sum(p.numel() for p in net.parameters()), list(info.channels()), [int(r) for r in info.reduction()]


@GENERATORS.register("timm-unet")
class TimmUNet(GeneratorBase):
    """U-Net decoder over any timm features_only encoder (resnet, efficientnet, convnext, ...).

    The encoder is `timm.create_model(encoder, features_only=True, pretrained=False, in_chans=...)`
    (timm's own initialisation); the decoder climbs its feature levels with skip connections, then
    as many extra x2 stages as the shallowest level's reduction needs (2 for resnet/efficientnet,
    4 for convnext), the last one also seeing the network's input. NHWC encoders are permuted.
    Image sizes must be multiples of the deepest reduction (32 for most models).

    Options:
      encoder (str, resnet18): any name from `timm.list_models()` that supports features_only.
      decoder_channels (list[int] | None): one width per decoder stage, deepest first; by default
        each stage takes its skip level's width, the extra stages halve it (at least 16).
      norm (batch|instance|group|none, batch): decoder normalisation.
      condition (concat|film|spade, concat): condition maps concatenated to the encoder input, or
        FiLM (per channel) or SpatialFiLM (per pixel, from the sketch and the condition:
        SPADE-style) on every decoder stage.
      fill (none|regions|auto, none): `regions`: in eval mode every closed region of the sketch takes
        one colour, the median of the network's output there (flat-coloured art; region_fill);
        `auto`: training chooses from its training set whether its art suits that.
      test_flip (bool, false): in eval mode, average the output with that of the mirrored sketch
        (mirrored back): test-time augmentation for a model trained with `data.augment.hflip`.
      out_indices (list[int] | None): which encoder levels to use (timm's default: all).
      pretrained (str | None): a LOCAL .safetensors file holding the timm model's state dict (as
        timm's Hugging Face repos ship it); the input conv is adapted to the input channels. Never
        downloads.
      encoder_options (dict | None): further timm.create_model keywords (img_size, drop_path_rate).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cond_dim: int,
        encoder: str = "resnet18",
        decoder_channels: list[int] | None = None,
        norm: str = "batch",
        condition: str = "concat",
        fill: str = "none",
        test_flip: bool = False,
        out_indices: list[int] | None = None,
        pretrained: str | None = None,
        encoder_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(condition, fill, test_flip)
        self.in_channels, self.out_channels, self.cond_dim = in_channels, out_channels, cond_dim
        self.encoder_name = encoder
        first = in_channels + (cond_dim if condition == "concat" else 0)
        norm_layer(norm, 16)  # an unknown norm fails here, before the encoder is built

        self.encoder = _create_encoder(encoder, first, out_indices, pretrained, dict(encoder_options or {}))
        info = self.encoder.feature_info
        self.feature_channels = list(info.channels())
        self.reductions = [int(r) for r in info.reduction()]
        fmt = getattr(self.encoder, "output_fmt", None)
        self._nhwc = str(getattr(fmt, "value", fmt)) == "NHWC"
        self.size_multiple = self.min_size = math.lcm(*self.reductions)

        skips, self.targets, decoder_channels = decoder_plan(
            encoder, self.feature_channels, self.reductions, first, decoder_channels)
        self.decoder = nn.ModuleList()
        cin = self.feature_channels[-1]
        for skip, cout, reduction in zip(skips, decoder_channels, self.targets):
            film = modulation(condition, cond_dim, in_channels, cout, reduction)
            self.decoder.append(_DecoderStage(cin, skip, cout, norm, film))
            cin = cout
        self.head = nn.Sequential(nn.Conv2d(cin, out_channels, 3, 1, 1), nn.Tanh())
        init_weights(self.decoder)
        init_weights(self.head)

    def describe(self) -> str:
        return f"timm-unet encoder {self.encoder_name!r} (reductions {', '.join(map(str, self.reductions))})"

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.encoder(x)
        feats = list(feats.values()) if isinstance(feats, dict) else list(feats)
        out = []
        for f, c in zip(feats, self.feature_channels):
            if self._nhwc or (f.shape[1] != c and f.shape[-1] == c):
                f = f.permute(0, 3, 1, 2)
            out.append(f)
        return out

    def draw(self, sketch: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x, cond = self._inputs(sketch, cond)
        height, width = x.shape[-2:]
        feats = self._features(x)
        y = feats[-1]
        shallower = feats[-2::-1]
        for k, stage in enumerate(self.decoder):
            if k < len(shallower):
                skip = shallower[k]
                size = (skip.shape[-2], skip.shape[-1])
            else:
                skip, r = None, self.targets[k]
                size = (height // r, width // r)
            if self.targets[k] == 1:
                skip = x if skip is None else torch.cat([skip, x], dim=1)
            y = stage(y, skip, size, cond, sketch)
        return self.head(y)
