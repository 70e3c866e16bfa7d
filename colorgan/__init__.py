"""colorgan: colour colourless character art with a conditional GAN.

Parts are named components in `colorgan.registry`; recipes (YAML) say which to build.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("colorgan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
