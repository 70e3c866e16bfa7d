"""The description a model file carries, written once and checked before anything is built.

A model file may come from a stranger (shared online, or loaded by `colorgan serve`), and its
metadata decides which modules are built and how large. So `validate_model_file` checks all of it
before one tensor is allocated: the safetensors header's size, the JSON's size and nesting depth
(`json.loads` recurses), the shape and range of every value, the embedded recipe through the same
checks as a recipe file (`recipe.check_values`, `model_size`), that the file holds the weights the
recipe describes, and what the model would cost against a memory budget. It is the one gate:
`checkpoint.load` calls it, so `Colorizer.load`, `sample`, `evaluate`, `export --onnx` and `serve`
pass through it; `colorgan info` uses `read_description`, the same checks less the budget and the
installed components, so a file can be inspected before it is trusted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import struct
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any, Mapping

from colorgan.data.images import image_channels
from colorgan.data.schema import ConditionSchema
from colorgan.errors import ColorganError, ModelFileError, RegistryError, shown
from colorgan.model_size import BYTES, SizeEstimate, check_model_size
from colorgan.recipe import Recipe, check_values, from_dict

FORMAT_VERSION = 1
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".ckpt")
MAX_HEADER_BYTES = 16 << 20
"""A safetensors header (tensor index + metadata) larger than this is refused before it is parsed;
a real model's is a few KB plus ~100 bytes per tensor."""
MAX_METADATA_BYTES = 1 << 20
"""All `colorgan.*` metadata values together; a real model's are about 2 KB plus its schema."""
MAX_JSON_DEPTH = 8
"""Nesting of the metadata JSON: a recipe nests 3 deep (`data.holdout.kind`), options' lists 4."""
MAX_MODEL_GB_ENV = "COLORGAN_MAX_MODEL_GB"
DEFAULT_MAX_MODEL_GB = 4.0
"""Memory one model may need by default (weights, and activations for one image): the seed's 54M
parameters at 256 px need about 0.3 GB."""
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


def describe(recipe: Recipe, schema: ConditionSchema) -> dict[str, str]:
    """The `colorgan.*` metadata of a model file (and of its ONNX export): JSON strings."""
    return {
        "colorgan.format_version": json.dumps(FORMAT_VERSION),
        "colorgan.recipe": json.dumps(recipe.to_dict()),
        "colorgan.schema": json.dumps(schema.to_dict()),
        "colorgan.image_size": json.dumps(recipe.data.image_size),
        "colorgan.channels": json.dumps({"sketch": recipe.data.sketch_channels,
                                         "image": image_channels(recipe.data.keep_alpha)}),
    }


@dataclass(frozen=True)
class ModelFile:
    """A model file whose description passed every check: what may be built from it."""

    path: Path
    meta: dict[str, Any]       # the decoded `colorgan.*` values
    recipe: Recipe
    schema: ConditionSchema
    tensor_values: int         # numbers in the file's tensors (generator + condition encoder)
    estimate: SizeEstimate     # what the recipe's networks take, by arithmetic


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The decoded `colorgan.*` metadata of a model file (bounded in size and depth), or a
    ModelFileError saying why not. Nothing but the header is read."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelFileError(
            f"{shown(path)}: pickle-based model files are refused (they can run code); use a colorgan .safetensors file"
        )
    try:
        if path.is_dir():
            raise ModelFileError(f"{shown(path)}: is a folder, not a model file (expected a .safetensors file)")
        if not path.is_file():
            raise ModelFileError(f"{shown(path)}: model file not found")
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as err:
        raise ModelFileError(f"{shown(path)}: cannot read model file ({err.strerror or err})") from None
    if len(head) == 8 and struct.unpack("<Q", head)[0] > MAX_HEADER_BYTES:
        raise ModelFileError(f"{shown(path)}: not a readable safetensors file (its header claims "
                             f"{struct.unpack('<Q', head)[0]:,} bytes; a colorgan model's is under {MAX_HEADER_BYTES:,})")
    raw = _safetensors_metadata(path)
    if "colorgan.format_version" not in raw:
        raise ModelFileError(f"{shown(path)}: a safetensors file, but not a colorgan model (no colorgan.* metadata)")
    texts = {k.removeprefix("colorgan."): v for k, v in raw.items() if k.startswith("colorgan.")}
    size = sum(len(v) for v in texts.values())
    if size > MAX_METADATA_BYTES:
        raise _damaged(path, f"{size:,} bytes of colorgan metadata, more than the {MAX_METADATA_BYTES:,} allowed")
    meta = {key: _decode(path, key, text) for key, text in texts.items()}
    version = meta["format_version"]
    if not _is_int(version) or version < 1:
        raise _damaged(path, f"format_version is {_show(version)}, expected a positive integer")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{shown(path)}: model format version {version} is newer than this colorgan reads "
                             f"({FORMAT_VERSION}); upgrade colorgan")
    return meta


def _safetensors_metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"{shown(path)}: not a readable safetensors file ({err})") from None


def _decode(path: Path, key: str, text: str) -> Any:
    """One metadata value, refused before parsing when nested deeper than MAX_JSON_DEPTH."""
    brackets = [1 if c in "[{" else -1 for c in re.sub(r"[^\[\]{}]", "", _STRINGS.sub("", text))]
    depth = max(accumulate(brackets), default=0)
    if depth > MAX_JSON_DEPTH:
        raise _damaged(path, f"colorgan.{key} is JSON nested {depth} deep, more than the {MAX_JSON_DEPTH} allowed")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _damaged(path, f"colorgan.{key} is not valid JSON ({err})") from None


def validate_model_file(path: str | Path, max_model_gb: float | None = None) -> ModelFile:
    """Check everything a model file says before anything is built from it; a ModelFileError names
    the first problem. Reads only the header: no weights, no plugin imports, no modules built.

    On top of `read_description`: the components it names are installed here, and loading the
    model and colouring one image fits the memory budget `max_model_gb` (see `memory_budget`).
    """
    limit = memory_budget(max_model_gb)
    model = read_description(path)
    _components(model.path, model.recipe, installed=True)
    parameters, activations = model.estimate.generator_parameters, model.estimate.activation_bytes
    if parameters is None:  # a plugin component: code the user installed, trusted like it
        return model
    need = (parameters * BYTES + (activations or 0)) / 1e9
    if need > limit:
        raise ModelFileError(
            f"{shown(model.path)}: the model needs about {need:.3g} GB to load and colour one "
            f"{model.recipe.data.image_size} px image ({parameters:,} parameters), more than the {limit:g} GB "
            f"allowed; for a file you trust, raise the limit (--max-model-gb, or {MAX_MODEL_GB_ENV})")
    return model


def read_description(path: str | Path) -> ModelFile:
    """A model file's description, every value checked (what `colorgan info` shows): its
    components need not be installed here, but those that are must take the options given, and
    the model they describe must be the one whose weights the file holds."""
    path = Path(path)
    meta = read_metadata(path)
    recipe = _recipe(path, meta.get("recipe"))
    schema = _schema(path, meta.get("schema"))
    _sizes(path, meta, recipe)
    _components(path, recipe, installed=False)
    values = _tensor_values(path)
    return ModelFile(path, meta, recipe, schema, values, _estimate(path, recipe, schema, values))


def memory_budget(max_model_gb: float | None = None) -> float:
    """GB one model may need to load and colour an image: `max_model_gb`, else the environment's
    COLORGAN_MAX_MODEL_GB, else DEFAULT_MAX_MODEL_GB. A stranger's file can describe a model of any
    size; this is what stops its allocation, and the one number to raise for a file you trust."""
    if max_model_gb is None:
        text = os.environ.get(MAX_MODEL_GB_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_MODEL_GB
        try:
            max_model_gb = float(text)
        except ValueError:
            raise ColorganError(f"{MAX_MODEL_GB_ENV}={text!r}: expected a number of gigabytes, e.g. 16") from None
    if not max_model_gb > 0:  # NaN too
        raise ColorganError(f"maximum model memory: expected a positive number of gigabytes, got {max_model_gb}")
    return max_model_gb


def _estimate(path: Path, recipe: Recipe, schema: ConditionSchema, values: int) -> SizeEstimate:
    """What loading the model and colouring one image takes, by arithmetic (`model_size`): the
    same size checks as a recipe's, at batch 1. A 1 KB file cannot describe a large model: the
    weights would be missing from it.

    The activations are those of a one-image training step, an upper bound on what inference
    keeps. Plugin components cannot be estimated (None).
    """
    one = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, batch_size=1))
    try:
        estimate = check_model_size(one, schema)
    except ColorganError as err:
        raise ModelFileError(f"{shown(path)}: refused before loading: the embedded recipe: {err}") from None
    parameters = estimate.generator_parameters
    if parameters is not None and parameters > values:
        raise _damaged(path, f"the embedded recipe describes a model of {parameters:,} parameters, but the "
                             f"file holds only {values:,} values")
    return estimate


def _tensor_values(path: Path) -> int:
    """How many numbers the file's tensors hold, from the safetensors header alone."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118 - not a dict


def _recipe(path: Path, value: Any) -> Recipe:
    if not isinstance(value, dict):
        raise _damaged(path, f"colorgan.recipe is {_show(value)}, expected a JSON object of recipe sections")
    try:
        recipe = from_dict(value)
        check_values(recipe)
    except ColorganError as err:
        raise _damaged(path, f"the embedded recipe: {err}") from None
    return recipe


def _schema(path: Path, value: Any) -> ConditionSchema:
    """Attributes (non-empty names) each with a non-empty list of distinct non-empty string values."""
    if not isinstance(value, dict) or not value:
        raise _damaged(path, f"colorgan.schema is {_show(value)}, expected a JSON object of attribute -> values")
    for attr, values in value.items():
        where = f"colorgan.schema.{attr}"
        if not attr.strip() or "\0" in attr:
            raise _damaged(path, f"colorgan.schema has the attribute name {_show(attr)}, expected a non-empty "
                                 "string without NUL bytes")
        if not isinstance(values, list) or not values:
            raise _damaged(path, f"{where} is {_show(values)}, expected a non-empty list of values")
        bad = [v for v in values if not isinstance(v, str) or not v.strip() or "\0" in v]
        if bad:
            raise _damaged(path, f"{where} holds {_show(bad[0])}, expected non-empty strings without NUL bytes")
        if len(set(values)) != len(values):
            raise _damaged(path, f"{where} lists a value twice")
    return ConditionSchema.from_mapping(value)


def _sizes(path: Path, meta: Mapping[str, Any], recipe: Recipe) -> None:
    """`image_size` and `channels` repeat the recipe for readers without it: they must agree with it."""
    data = recipe.data
    expected = {"image_size": data.image_size,
                "channels": {"sketch": data.sketch_channels, "image": image_channels(data.keep_alpha)}}
    for key, value in expected.items():
        if meta.get(key) != value or not _same_types(meta.get(key), value):
            raise _damaged(path, f"colorgan.{key} is {_show(meta.get(key))}, but the embedded recipe makes it "
                                 f"{json.dumps(value)}")


def _components(path: Path, recipe: Recipe, installed: bool) -> None:
    """The encoder and generator the recipe names take its options; with `installed`, they must
    also be registered here.

    An unknown name is a plugin this process lacks; model files never import plugins (that would
    run code a stranger named), so the user is told which and how to install it.
    """
    from colorgan.registry import CONDITIONS, GENERATORS

    for registry, section, passed in ((CONDITIONS, "condition", ("schema",)),
                                      (GENERATORS, "generator", ("in_channels", "out_channels", "cond_dim"))):
        config = getattr(recipe, section)
        if isinstance(config.get("type"), str) and config["type"] not in registry:
            if not installed:
                continue
            listed = f"; its recipe lists plugins: {', '.join(recipe.plugins)}" if recipe.plugins else ""
            raise ModelFileError(
                f"{shown(path)}: unknown {registry.kind} {config['type']!r}: the model needs a component "
                f"that is not installed{listed} (model files never import plugins; "
                "install the package that provides it, or import the module yourself if you trust it)")
        try:
            registry.check(config, section, passed=passed)
        except RegistryError as err:
            raise _damaged(path, f"the embedded recipe: {err}") from None


def _damaged(path: Path, what: str) -> ModelFileError:
    return ModelFileError(f"{shown(path)}: damaged colorgan metadata: {what}")


def _show(value: Any) -> str:
    """A metadata value in a message: short JSON, or its type when long."""
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__} of {len(text):,} characters"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _same_types(a: Any, b: Any) -> bool:
    """`true == 1` in Python: metadata must match the recipe in type too."""
    if isinstance(a, dict) and isinstance(b, dict):
        return all(_same_types(a[k], b[k]) for k in b)
    return type(a) is type(b)
