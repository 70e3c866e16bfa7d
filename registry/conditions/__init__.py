"""Built-in conditions; each module registers its components on import."""

from colorgan.registry.conditions import embedding, onehot, rgb  # noqa: F401
