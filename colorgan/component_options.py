"""The built-in components' options: the type and range of each, checked at recipe time.

`Registry.check` knows which option names a component takes; this table knows which values they
may have, so `colorgan recipe check` refuses `generator.depth: 1000000000` in one line without
building anything, and the size estimate (`colorgan.model_size`) only ever computes with values
in range. The constructors keep their own checks for Python callers; plugin components are
checked by their constructors only.

Bounds that are not the component's own: 65536 channels and 12 levels (2**12 = 4096, the largest
`data.image_size`) keep the arithmetic small; the size limits in `model_size` judge what is left.
"""

from __future__ import annotations

from typing import Any, Mapping

from colorgan.errors import RecipeError
from colorgan.registry.conditions.embedding import COMBINES
from colorgan.registry.discriminators.patchgan import D_NORMS
from colorgan.registry.generators.common import CONDITION_MODES, FILL_MODES
from colorgan.registry.layers import NORMS
from colorgan.value_checks import AnyOf, ListOf, MapOf, OneOf, Range, Text, describe_value, integer, maybe, problem

CHANNELS = integer(1, 65536)
LEVELS = integer(1, 12)
PROBABILITY = Range(0, 1, hi_open=True)
# timm keywords (img_size, drop_path_rate, depths...): small numbers, so that timm, which builds
# the encoder to describe it, never loops over millions of blocks.
SMALL_NUMBER = Range(-4096, 4096)
TIMM_KEYWORD = AnyOf((SMALL_NUMBER, OneOf((True, False)), Text(), ListOf(SMALL_NUMBER), None),
                     "a number in [-4096, 4096], true, false, a string, a list of such numbers or null")

_TRUNK = {"layers": LEVELS, "base_channels": CHANNELS, "max_channels": CHANNELS, "norm": OneOf(D_NORMS)}
# every built-in generator's; they act on a finished model's output (GeneratorBase.forward)
_FINISH = {"fill": OneOf(FILL_MODES), "test_flip": OneOf((False, True))}
_GENERATOR = {"norm": OneOf(NORMS), "dropout": PROBABILITY, "condition": OneOf(CONDITION_MODES), **_FINISH}

OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "condition": {
        "onehot": {"dropout": PROBABILITY},
        "rgb": {"dropout": PROBABILITY},
        "embedding": {"dim": AnyOf((CHANNELS, MapOf(CHANNELS))), "combine": OneOf(COMBINES),
                      "dropout": PROBABILITY},
    },
    "generator": {
        "unet": {"depth": LEVELS, "base_channels": CHANNELS, "max_channels": CHANNELS, **_GENERATOR},
        "resnet": {"blocks": integer(1, 1024), "base_channels": CHANNELS, **_GENERATOR},
        "timm-unet": {
            "encoder": Text(1, 200), "decoder_channels": maybe(ListOf(CHANNELS, 1, 32)),
            "out_indices": maybe(ListOf(integer(0, 31), 1, 32)), "pretrained": maybe(Text(1, 4096)),
            "encoder_options": maybe(MapOf(TIMM_KEYWORD)), "norm": OneOf(NORMS),
            "condition": OneOf(CONDITION_MODES), **_FINISH,
        },
    },
    "discriminator": {
        "patchgan": _TRUNK,
        "projection": _TRUNK,
        "multiscale": {"scales": integer(1, 8), **_TRUNK},
    },
    "loss": {},
}


def check_options(section: str, cfg: Mapping[str, Any]) -> None:
    """Refuse an option of a built-in component whose value is out of its range, naming the key.

    Options the component does not take, and components that are not built in, are left to
    `Registry.check` and the component's constructor.
    """
    name = cfg.get("type")
    if not isinstance(name, str) or not name:
        raise RecipeError(f"{section}.type: expected a component name (see `colorgan components`), "
                          f"got {describe_value(name)}")
    table = OPTIONS[section].get(name, {})
    for key, value in cfg.items():
        message = problem(table[key], f"{section}.{key}", value) if key in table else None
        if message:
            raise RecipeError(message)
