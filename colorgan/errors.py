"""Errors that mean "the user gave us something wrong".

The CLI turns any `ColorganError` into one line on stderr and exit code 2, with no traceback;
everything else is a bug and keeps its traceback. Subclasses say which input was wrong.
"""


class ColorganError(Exception):
    """Bad input from the user: a recipe, a dataset, a model file, a CLI argument."""


class RegistryError(ColorganError, KeyError):
    """Unknown component name, duplicate registration, bad component options, broken plugin."""

    def __str__(self) -> str:  # KeyError would repr() the message; we want it verbatim.
        return str(self.args[0]) if self.args else ""


class RecipeError(ColorganError):
    """A recipe key that is unknown, missing or of the wrong type."""


class DataError(ColorganError):
    """A dataset folder, Metadata.csv row or image that cannot be used."""


class ConditionError(ColorganError):
    """A condition attribute or value the model does not know."""


class ModelFileError(ColorganError):
    """A model file that is not a colorgan model, is damaged, or needs a missing component."""
