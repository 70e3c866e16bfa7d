"""The component catalogue: `GENERATORS`, `DISCRIMINATORS`, `CONDITIONS`, `LOSSES`, `OBJECTIVES`.

    from colorgan.registry import GENERATORS
    G = GENERATORS.build({"type": "unet", "depth": 6}, in_channels=1, out_channels=3, cond_dim=10)

Built-in components and installed plugins are imported on the first lookup, not on import.
"""

from __future__ import annotations

import importlib

from colorgan.registry.core import Entry, Registry, registering_as

_BUILTIN_PACKAGES = (
    "colorgan.registry.conditions",
    "colorgan.registry.generators",
    "colorgan.registry.discriminators",
    "colorgan.registry.losses",
    "colorgan.registry.objectives",
)
_loaded = False


def _load_everything() -> None:
    """Import built-ins, then plugins (so a plugin may build on a built-in), exactly once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package in _BUILTIN_PACKAGES:
        importlib.import_module(package)
    from colorgan.registry.plugins import load_entry_point_plugins

    load_entry_point_plugins()


CONDITIONS = Registry("condition", loader=_load_everything)
GENERATORS = Registry("generator", loader=_load_everything)
DISCRIMINATORS = Registry("discriminator", loader=_load_everything)
LOSSES = Registry("loss", loader=_load_everything)
OBJECTIVES = Registry("objective term", loader=_load_everything)

REGISTRIES: dict[str, Registry] = {
    "conditions": CONDITIONS,
    "generators": GENERATORS,
    "discriminators": DISCRIMINATORS,
    "losses": LOSSES,
    "objectives": OBJECTIVES,
}

__all__ = [
    "CONDITIONS",
    "DISCRIMINATORS",
    "Entry",
    "GENERATORS",
    "LOSSES",
    "OBJECTIVES",
    "REGISTRIES",
    "Registry",
    "registering_as",
]
