"""The registry: register, duplicates, lookup errors with suggestions, option checks, globbing."""

import pytest

from colorgan.errors import RegistryError
from colorgan.registry import CONDITIONS, DISCRIMINATORS, GENERATORS, LOSSES
from colorgan.registry.core import Registry, registering_as


@pytest.fixture
def reg():
    reg = Registry("widget")

    @reg.register("unet")
    class UNet:
        """A widget called unet.

        More text that is not the summary.
        """

        def __init__(self, in_channels, depth=8, width=64):
            self.in_channels, self.depth, self.width = in_channels, depth, width

    @reg.register("unet-small")
    def small(in_channels, **options):
        """Takes anything."""
        return ("small", in_channels, options)

    @reg.register("resnet")
    class ResNet:
        def __init__(self, blocks=9):
            self.blocks = blocks

    return reg


def test_build_passes_defaults_and_options(reg):
    built = reg.build({"type": "unet", "depth": 6}, in_channels=1)
    assert (built.in_channels, built.depth, built.width) == (1, 6, 64)


def test_duplicate_name_is_an_error_unless_forced(reg):
    with pytest.raises(RegistryError, match="'unet' is already registered"):
        reg.register("unet")(object)
    reg.register("unet", force=True)(dict)
    assert reg.get("unet") is dict


def test_unknown_name_suggests_close_matches_and_lists_all(reg):
    with pytest.raises(RegistryError) as info:
        reg.get("unett")
    msg = str(info.value)
    assert "unknown widget 'unett'" in msg
    assert "did you mean 'unet'" in msg
    assert "available: resnet, unet, unet-small" in msg


def test_unknown_option_lists_accepted_options(reg):
    with pytest.raises(RegistryError) as info:
        reg.build({"type": "unet", "dept": 3}, in_channels=1)
    msg = str(info.value)
    assert "has no option 'dept'" in msg and "did you mean 'depth'" in msg
    assert "its options: depth, width" in msg  # in_channels is passed by colorgan, not listed


def test_var_keyword_component_takes_any_option(reg):
    assert reg.build({"type": "unet-small", "anything": 3}, in_channels=2) == ("small", 2, {"anything": 3})


def test_framework_keywords_cannot_come_from_the_recipe(reg):
    with pytest.raises(RegistryError, match="in_channels: set by colorgan itself"):
        reg.build({"type": "unet", "in_channels": 4}, in_channels=1)


def test_missing_type_is_an_error(reg):
    with pytest.raises(RegistryError, match="expected a mapping with a 'type' key"):
        reg.build({"depth": 3}, where="generator")


def test_glob_listing(reg):
    assert reg.names() == ["resnet", "unet", "unet-small"]
    assert reg.names("unet*") == ["unet", "unet-small"]
    assert reg.names("nothing*") == []


def test_summary_and_origin(reg):
    entry = reg.entry("unet")
    assert entry.summary == "A widget called unet."
    assert reg.entry("resnet").summary == ""
    assert entry.origin == "module test_registry" or entry.origin.startswith("module ")

    with registering_as("plugin demo (demo.mod)"):
        reg.register("from-plugin")(dict)
    assert reg.entry("from-plugin").origin == "plugin demo (demo.mod)"


def test_builtin_registries_hold_builtin_components():
    for registry, name in ((GENERATORS, "unet"), (DISCRIMINATORS, "patchgan"),
                           (CONDITIONS, "onehot"), (LOSSES, "vanilla")):
        assert name in registry.names()
        assert registry.entry(name).origin == "built-in"
