"""Built-in generators; each module registers its components on import."""

from colorgan.registry.generators import resnet, timm_unet, unet  # noqa: F401  (registers them)
from colorgan.registry.generators.common import (
    CONDITION_MODES,
    FiLM,
    GeneratorBase,
    GeneratorOptionError,
    SpatialFiLM,
)

__all__ = ["CONDITION_MODES", "FiLM", "GeneratorBase", "GeneratorOptionError", "SpatialFiLM"]
