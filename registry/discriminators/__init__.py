"""Built-in discriminators; each module registers its components on import."""

from colorgan.registry.discriminators import multiscale, patchgan, projection  # noqa: F401
