"""A plugin whose import fails: colorgan must name it and keep the built-ins working."""

raise ImportError("this plugin needs a package that is not installed")
