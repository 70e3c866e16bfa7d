"""Errors that mean "the user gave us something wrong".

The CLI turns any `ColorganError` into one line on stderr and exit code 2, with no traceback;
everything else is a bug and keeps its traceback. Subclasses say which input was wrong.
"""

import re


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


def shown(path: object) -> str:
    """A path as a message shows it: whole, unless so long it would drown the line (a 100,000-character
    name from a script gone wrong is still recognisable by its two ends)."""
    text = str(path)
    return text if len(text) <= 240 else f"{text[:100]}...{text[-100:]} ({len(text):,} characters)"


def os_error_line(err: OSError, path: object = None) -> str:
    """`PATH: reason` for an OSError: the file it names (else `path`), and the system's words.

    Writes report no file name (a full disk fails `write`, not `open`), so callers pass the path
    they were writing; a second file name (a rename's target) is added when the error has one.
    """
    where = err.filename if err.filename is not None else path
    reason = err.strerror or str(err) or type(err).__name__
    if err.filename2 is not None:
        reason += f" (to {shown(err.filename2)})"
    return f"{shown(where)}: {reason}" if where is not None else reason


def one_line(message: str) -> str:
    """A message as the one line the CLI promises: control characters that came in with a user's
    data (a newline in a recipe key, a NUL in a value) are shown escaped."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], message)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
