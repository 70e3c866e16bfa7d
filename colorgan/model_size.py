"""How big a recipe's networks are, computed from the options alone: never by building them.

A typo such as `base_channels: 10000000` would otherwise make training try to allocate hundreds
of terabytes, and a huge `depth` would loop for hours. `estimate_size` counts the parameters of
the built-in conditions, generators and discriminators with the layer arithmetic of their
constructors (tests/test_model_size.py holds the counts to the built networks, exactly), and the
activations one training step keeps for backward. `check_model_size` refuses what is over the
limits. It is also how a model file's embedded recipe is judged before anything is allocated.

timm-unet's encoder is timm's architecture, so timm describes it on the meta device (no memory,
options bounded first by `component_options`). Plugin components are not estimated.

The limits come from the environment only (`COLORGAN_MAX_PARAMETERS`, default 2e9;
`COLORGAN_MAX_ACTIVATION_GB`, default 64), so a model file cannot raise its own.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from colorgan.data.images import image_channels
from colorgan.data.schema import ConditionSchema
from colorgan.errors import ColorganError, RecipeError
from colorgan.objective import reads_discriminator
from colorgan.recipe import Recipe
from colorgan.registry.conditions.embedding import EmbeddingCondition
from colorgan.registry.conditions.onehot import OneHotCondition
from colorgan.registry.conditions.rgb import RGBCondition
from colorgan.registry.discriminators.multiscale import MultiScaleDiscriminator
from colorgan.registry.discriminators.patchgan import PatchGAN, min_size
from colorgan.registry.discriminators.projection import ProjectionDiscriminator
from colorgan.registry.generators.common import SPADE_HIDDEN, size_problem
from colorgan.registry.generators.resnet import ResnetGenerator
from colorgan.registry.generators.timm_unet import TimmUNet, decoder_plan, describe_encoder
from colorgan.registry.generators.unet import UNet

LIMITS = {"COLORGAN_MAX_PARAMETERS": 2e9, "COLORGAN_MAX_ACTIVATION_GB": 64.0}
KEPT = 3  # tensors kept for backward per conv output: the conv's, the norm's, the activation's
# A timm encoder keeps 7 (resnet18) to 67 (efficientnet_b0) times its feature maps, measured
# with saved-tensor hooks; within such a factor is enough to refuse what no machine could hold.
TIMM_KEPT = 16
D_PASSES = 3  # the discriminator sees the real pair, the detached fake and the fake again for G
BYTES = 4  # fp32


@dataclass(frozen=True)
class Net:
    """One built-in component, as arithmetic: parameters and activations per image."""

    parameters: int
    activations: int = 0  # elements kept for backward, per image
    size_multiple: int = 1
    min_size: int = 1
    describe: str = ""


@dataclass(frozen=True)
class SizeEstimate:
    """What a recipe would allocate; None where a plugin component cannot be estimated."""

    generator_parameters: int | None  # condition encoder + generator (what a model file holds)
    discriminator_parameters: int | None  # 0 when the objective reads none (none is built)
    activation_bytes: int | None  # kept for backward by one training step at train.batch_size

    @property
    def parameters(self) -> int | None:
        parts = (self.generator_parameters, self.discriminator_parameters)
        return None if None in parts else sum(parts)


# --- layer arithmetic -------------------------------------------------------------------------


def _conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    """Conv2d, ConvTranspose2d and (k=1) Linear have the same count."""
    return cin * cout * k * k + (cout if bias else 0)


def _norm(kind: str, channels: int) -> int:
    if kind == "group" and channels > 32 and channels % 32:
        raise ValueError(f"norm: group norm needs channel counts below 32 or multiples of 32, got {channels}")
    return 0 if kind in ("none", "spectral") else 2 * channels


def _modulation(o: Mapping[str, Any], in_ch: int, cond: int, channels: int, area: int) -> tuple[int, int]:
    """(parameters, activations kept per image) of what conditions a decoder level of `channels`
    and `area` pixels (`common.modulation`): nothing for `concat`, FiLM's Linear, or SpatialFiLM's
    two convolutions over the sketch and the condition maps."""
    if not cond or o["condition"] == "concat":
        return 0, 0
    if o["condition"] == "spade":
        params = _conv(in_ch + cond, SPADE_HIDDEN, 3) + _conv(SPADE_HIDDEN, 2 * channels, 3)
        return params, (in_ch + cond + 2 * SPADE_HIDDEN + 2 * channels) * area
    return _conv(cond, 2 * channels, 1), 0


def _out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def _first(o: Mapping[str, Any], in_ch: int, cond: int) -> int:
    """Input channels of a generator: the sketch's, and the condition maps' when concatenated."""
    return in_ch + cond if o["condition"] == "concat" else in_ch


# --- generators -----------------------------------------------------------------------------


def _unet(o: Mapping[str, Any], in_ch: int, out_ch: int, cond: int, size: int) -> Net:
    depth, norm = o["depth"], o["norm"]
    chans = [min(o["base_channels"] << i, o["max_channels"]) for i in range(depth)]
    first = _first(o, in_ch, cond)
    params, maps, modulation_maps = 0, 0, 0
    for i in range(depth):
        normed = 0 < i < depth - 1
        params += _conv(first if i == 0 else chans[i - 1], chans[i], 4, not normed or norm == "none")
        params += _norm(norm, chans[i]) if normed else 0
        maps += 2 * chans[i] * (size >> (i + 1)) ** 2  # the level and the decoder's mirror of it
    for i in range(1, depth):
        cin = chans[i] if i == depth - 1 else 2 * chans[i]
        modulation = _modulation(o, in_ch, cond, chans[i - 1], (size >> i) ** 2)
        params += _conv(cin, chans[i - 1], 4, norm == "none") + _norm(norm, chans[i - 1]) + modulation[0]
        modulation_maps += modulation[1]
    params += _conv(chans[0] if depth == 1 else 2 * chans[0], out_ch, 4)
    kept = KEPT * maps + modulation_maps + (first + out_ch) * size * size
    return Net(params, kept, 2**depth, 2**depth, f"unet depth {depth}")


def _resnet(o: Mapping[str, Any], in_ch: int, out_ch: int, cond: int, size: int) -> Net:
    c, blocks, norm = o["base_channels"], o["blocks"], o["norm"]
    first = _first(o, in_ch, cond)
    bias = norm == "none"
    half = _out(size, 3, 2, 1)
    quarter = _out(half, 3, 2, 1)
    modulations = [_modulation(o, in_ch, cond, 4 * c, quarter**2)] * blocks
    modulations += [_modulation(o, in_ch, cond, 2 * c, half**2), _modulation(o, in_ch, cond, c, size**2)]
    params = _conv(first, c, 7, bias) + _norm(norm, c) + _conv(c, 2 * c, 3, bias) + _norm(norm, 2 * c)
    params += _conv(2 * c, 4 * c, 3, bias) + _norm(norm, 4 * c)
    params += blocks * 2 * (_conv(4 * c, 4 * c, 3, bias) + _norm(norm, 4 * c))
    for m in (4 * c, 2 * c):
        params += _conv(m, m // 2, 3, bias) + _norm(norm, m // 2)
    params += _conv(c, out_ch, 7) + sum(p for p, _ in modulations)
    maps = 2 * c * size**2 + 2 * 2 * c * half**2 + (1 + 2 * blocks) * 4 * c * quarter**2
    kept = KEPT * maps + sum(k for _, k in modulations) + (first + out_ch) * size * size
    return Net(params, kept, 4, 8, f"resnet ({blocks} blocks)")


def _timm_unet(o: Mapping[str, Any], in_ch: int, out_ch: int, cond: int, size: int) -> Net:
    first = _first(o, in_ch, cond)
    params, widths, reductions = describe_encoder(o["encoder"], first, o["out_indices"], o["encoder_options"])
    skips, targets, decoder = decoder_plan(o["encoder"], widths, reductions, first, o["decoder_channels"])
    bias = o["norm"] == "none"
    maps = TIMM_KEPT * sum(w * (size // r) ** 2 for w, r in zip(widths, reductions))
    cin = widths[-1]
    for skip, reduction, cout in zip(skips, targets, decoder):
        params += _conv(cin + skip, cout, 3, bias) + _conv(cout, cout, 3, bias)
        modulation = _modulation(o, in_ch, cond, cout, (size // reduction) ** 2)
        params += 2 * _norm(o["norm"], cout) + modulation[0]
        maps += KEPT * 2 * cout * (size // reduction) ** 2 + modulation[1]
        cin = cout
    params += _conv(cin, out_ch, 3)
    multiple = math.lcm(*reductions)
    described = f"timm-unet encoder {o['encoder']!r} (reductions {', '.join(map(str, reductions))})"
    return Net(params, maps + (first + out_ch) * size * size, multiple, multiple, described)


# --- discriminators -------------------------------------------------------------------------


def _trunk(o: Mapping[str, Any], in_ch: int, size: int) -> tuple[int, int, int, int]:
    """patchgan.patch_trunk as arithmetic: (parameters, activations, channels, map side)."""
    layers, norm = o["layers"], o["norm"]

    def width(n: int) -> int:
        return min(o["base_channels"] << n, o["max_channels"])

    side = _out(max(size, min_size(layers)), 4, 2, 1)
    params, maps = _conv(in_ch, width(0), 4), width(0) * side**2
    has_norm = norm not in ("none", "spectral")
    for n in range(1, layers + 1):
        params += _conv(width(n - 1), width(n), 4, not has_norm) + (_norm(norm, width(n)) if has_norm else 0)
        side = _out(side, 4, 2 if n < layers else 1, 1)
        maps += width(n) * side**2
    return params, in_ch * size * size + KEPT * maps, width(layers), side


def _patchgan(o: Mapping[str, Any], image: int, sketch: int, cond: int, size: int) -> Net:
    params, maps, channels, side = _trunk(o, image + sketch + cond, size)
    return Net(params + _conv(channels, 1, 4), maps + _out(side, 4, 1, 1) ** 2)


def _multiscale(o: Mapping[str, Any], image: int, sketch: int, cond: int, size: int) -> Net:
    scales = [_patchgan(o, image, sketch, cond, -(-size // 2**k)) for k in range(o["scales"])]
    return Net(sum(s.parameters for s in scales), sum(s.activations for s in scales))


def _projection(o: Mapping[str, Any], image: int, sketch: int, cond: int, size: int) -> Net:
    params, maps, channels, side = _trunk(o, image + sketch, size)
    return Net(params + _conv(channels, 1, 1) + channels * cond, maps + side**2)


# --- conditions ---------------------------------------------------------------------------
# (dim, parameters) of a condition encoder for a schema.


def _onehot(o: Mapping[str, Any], schema: ConditionSchema) -> tuple[int, int]:
    return sum(len(values) for _, values in schema.attributes), 0


def _rgb(o: Mapping[str, Any], schema: ConditionSchema) -> tuple[int, int]:
    return (4 if o["dropout"] > 0 else 3) * len(schema.attributes), 0


def _embedding(o: Mapping[str, Any], schema: ConditionSchema) -> tuple[int, int]:
    dim = o["dim"]
    widths = [dim.get(a, 16) if isinstance(dim, Mapping) else dim for a in schema.names]
    extra = 1 if o["dropout"] > 0 else 0
    out = (sum(widths) if o["combine"] == "concat" else widths[0]) if widths else 0
    return out, sum((len(values) + extra) * w for (_, values), w in zip(schema.attributes, widths))


def _least_schema(cfg: Mapping[str, Any]) -> ConditionSchema:
    """Before the data is read: the smallest schema the recipe allows (one value per attribute,
    the attributes an embedding's `dim` names, else one), so the estimate is a lower bound."""
    dim = cfg.get("dim")
    named = dim if cfg.get("type") == "embedding" and isinstance(dim, Mapping) and dim else ["?"]
    return ConditionSchema.from_mapping({a: ["?"] for a in named})


# --- the estimate and the limits ------------------------------------------------------------

FORMULAS: dict[str, dict[str, tuple[type, Callable[..., Any]]]] = {
    "condition": {"onehot": (OneHotCondition, _onehot), "rgb": (RGBCondition, _rgb),
                  "embedding": (EmbeddingCondition, _embedding)},
    "generator": {"unet": (UNet, _unet), "resnet": (ResnetGenerator, _resnet), "timm-unet": (TimmUNet, _timm_unet)},
    "discriminator": {"patchgan": (PatchGAN, _patchgan), "multiscale": (MultiScaleDiscriminator, _multiscale),
                      "projection": (ProjectionDiscriminator, _projection)},
}


def _apply(section: str, cfg: Mapping[str, Any], *args: Any) -> Any:
    """The section's formula on its options (the constructor's defaults filled in), or None for
    a plugin component; an option the arithmetic cannot take is a RecipeError naming it."""
    found = FORMULAS[section].get(cfg.get("type"))
    if found is None:
        return None
    cls, formula = found
    defaults = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
                if p.default is not inspect.Parameter.empty}
    try:
        return formula({**defaults, **{k: v for k, v in cfg.items() if k != "type"}}, *args)
    except ValueError as err:  # "option: what is wrong" (group norm widths, timm's encoder)
        raise RecipeError(f"{section}.{err}") from None


def _estimate(recipe: Recipe, schema: ConditionSchema | None) -> tuple[SizeEstimate, Net | None]:
    condition = _apply("condition", recipe.condition, schema or _least_schema(recipe.condition))
    cond_dim = condition[0] if condition else 0
    size, sketch, image = recipe.data.image_size, recipe.data.sketch_channels, image_channels(recipe.data.keep_alpha)
    generator = _apply("generator", recipe.generator, sketch, image, cond_dim, size)
    # An objective that reads no discriminator trains with none (`build_parts`): nothing to count.
    discriminator = (_apply("discriminator", recipe.discriminator, image, sketch, cond_dim, size)
                     if reads_discriminator(recipe.objective) else Net(0))
    per_image = sum(n.activations * k for n, k in ((generator, 1), (discriminator, D_PASSES)) if n is not None)
    estimate = SizeEstimate(
        None if condition is None or generator is None else condition[1] + generator.parameters,
        None if discriminator is None else discriminator.parameters,
        per_image * recipe.train.batch_size * BYTES,
    )
    return estimate, generator


def estimate_size(recipe: Recipe, schema: ConditionSchema | None = None) -> SizeEstimate:
    """Parameters and training activation bytes of `recipe`, without building anything.

    With the data's `schema` the condition encoder is counted exactly; without it (before the data
    is read) the estimate is a lower bound. Option values must have passed `recipe.check_values`.
    """
    return _estimate(recipe, schema)[0]


def limits() -> dict[str, float]:
    """The limits in force: each from its environment variable, else the default."""
    found = {}
    for name, default in LIMITS.items():
        raw = os.environ.get(name, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise ColorganError(f"{name}={raw!r}: expected a positive number (default {default:g})")
        found[name] = value
    return found


def _settings(cfg: Mapping[str, Any]) -> str:
    """`resnet, base_channels 65536`: a component section as a message names it."""
    return ", ".join([str(cfg.get("type"))] + [f"{k} {v!r}" for k, v in cfg.items() if k != "type"])


def _networks(recipe: Recipe) -> str:
    """`generator: unet, ...; discriminator: patchgan, ...`: the networks a training step runs."""
    named = ["generator"] + (["discriminator"] if reads_discriminator(recipe.objective) else [])
    return "; ".join(f"{name}: {_settings(getattr(recipe, name))}" for name in named)


def check_model_size(recipe: Recipe, schema: ConditionSchema | None = None) -> SizeEstimate:
    """`estimate_size`, then refuse an image size the generator cannot take and anything over the
    limits, in one line naming the keys, the limit and how to raise it."""
    estimate, generator = _estimate(recipe, schema)
    if generator is not None:
        problem = size_problem(recipe.data.image_size, generator.size_multiple, generator.min_size, generator.describe)
        if problem:
            raise RecipeError(f"data.image_size: {problem}")
    limit = limits()
    parts = {"generator": estimate.generator_parameters or 0, "discriminator": estimate.discriminator_parameters or 0}
    if sum(parts.values()) > limit["COLORGAN_MAX_PARAMETERS"]:
        section = max(parts, key=parts.get)
        raise RecipeError(
            f"{section} ({_settings(getattr(recipe, section))}): the networks would have about "
            f"{sum(parts.values()):.3g} parameters, more than the {limit['COLORGAN_MAX_PARAMETERS']:.3g} allowed; "
            "use fewer channels or levels, or raise COLORGAN_MAX_PARAMETERS")
    gb = (estimate.activation_bytes or 0) / 1e9
    if gb > limit["COLORGAN_MAX_ACTIVATION_GB"]:
        raise RecipeError(
            f"train.batch_size {recipe.train.batch_size} at data.image_size {recipe.data.image_size}: a training step "
            f"would keep about {gb:.3g} GB of activations ({_networks(recipe)}), more than the "
            f"{limit['COLORGAN_MAX_ACTIVATION_GB']:g} GB allowed; "
            "lower them, or raise COLORGAN_MAX_ACTIVATION_GB")
    return estimate
