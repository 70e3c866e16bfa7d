"""The models a server holds: each a `Colorizer` with its lock, its examples and its description.

Model files come only from the command line, through `Colorizer.load` (which validates them);
a request names a loaded model, never a file. Requests share one generator per model: the lock
makes them take turns, so concurrent requests cannot interleave inside it; the requests that wait
for it are coloured together when it is free (`batching`), with about one large request's worth
of image work in memory at a time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from colorgan.errors import ColorganError
from colorgan.inference import Colorizer
from colorgan.registry.conditions.rgb import RGBCondition
from colorgan.serve.batching import Batcher
from colorgan.serve.examples import Examples, find_examples

FORM_FIELDS = ("sketch", "example", "model", "sweep")
"""Form fields with a meaning of their own; every other field is an attribute."""


@dataclass
class ServedModel:
    name: str
    path: Path
    colorizer: Colorizer
    examples: Examples
    lock: threading.Lock = field(default_factory=threading.Lock)
    batcher: Batcher = field(init=False)

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.colorizer, self.lock)

    def describe(self) -> dict[str, Any]:
        """What the page needs to draw this model's controls, and what `colorgan info` would say."""
        c = self.colorizer
        free_colour = isinstance(c.generator.condition, RGBCondition)
        recipe = c.recipe.to_dict()
        return {
            "name": self.name,
            "file": self.path.name,
            "size_bytes": self.path.stat().st_size,
            "parameters": sum(p.numel() for p in c.generator.parameters()),
            "image_size": c.image_size,
            "attributes": [{"name": a, "values": list(c.schema.values(a)),
                            "control": "colour" if free_colour else "choice",
                            "optional": c.supports_unspecified} for a in c.attributes],
            "components": {k: recipe[k] for k in ("condition", "generator")},
        }


def load_models(paths: list[Path], device: str | None = None,
                max_model_gb: float | None = None) -> dict[str, ServedModel]:
    """Load every model file (named by its file stem, numbered where stems repeat), each checked
    by `Colorizer.load` against its memory budget."""
    stems = [Path(p).stem for p in paths]
    models = {}
    for i, (path, stem) in enumerate(zip(paths, stems)):
        name = stem if stems.count(stem) == 1 else f"{stem}-{i + 1}"
        colorizer = Colorizer.load(path, device, max_model_gb)
        clash = [a for a in colorizer.attributes if a in FORM_FIELDS]
        if clash:
            raise ColorganError(f"{path}: attribute {clash[0]!r} has the name of a form field "
                                f"({', '.join(FORM_FIELDS)}); colorgan serve cannot offer it")
        models[name] = ServedModel(name, Path(path), colorizer, find_examples(colorizer.recipe.data))
    return models


def pick(models: Mapping[str, ServedModel], name: str | None) -> ServedModel:
    """The model a request names; with one model served, naming it is optional."""
    if name is None and len(models) == 1:
        return next(iter(models.values()))
    if name not in models:
        said = "no model named" if name is None else f"unknown model {name!r}"
        raise ColorganError(f"{said}; models: {', '.join(models)}")
    return models[name]
