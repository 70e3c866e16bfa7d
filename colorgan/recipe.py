"""Recipes: YAML in, a typed, validated `Recipe` out.

A recipe says everything a run needs. Sections are dataclasses, so every key has a type, a default
and (as `Annotated` metadata, see `colorgan.value_checks`) its range; components (`condition`,
`generator`, `discriminator`, `loss`) are `{type: NAME, ...}` dicts whose option names are checked
against the component's signature by the registry and, for built-ins, whose values are checked by
`colorgan.component_options`. Errors name the key path (`train.epochs: expected an integer, got
'ten'`). `-o key.path=value` overrides any key; the resolved recipe dumps to YAML and loads back to
an equal recipe.

Checking happens in stages, each before anything is written: `load` (YAML and types), then
`validate` (`check_values`: every range; plugins and component names; `model_size`: image size
and size limits), then `check_against_schema` once the data's condition schema is known.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Mapping, Union

import yaml

from colorgan import objective
from colorgan.errors import ColorganError, RecipeError
from colorgan.objective import DEFAULT as OBJECTIVE_DEFAULT
from colorgan.recipe_yaml import parse_yaml
from colorgan.registry.core import did_you_mean
from colorgan.value_checks import ListOf, Range, Rule, Text, describe_value, integer, problem, yaml_repr

if TYPE_CHECKING:
    from colorgan.data.schema import ConditionSchema

COUNT = integer(1)
SEED = integer(0, 2**32 - 1)
FRACTION = Range(0, 1)
POSITIVE = Range(0, lo_open=True)
NON_NEGATIVE = Range(0)
METRIC = re.compile(r"val_(l1|psnr|ssim|condition_(error|accuracy)_(?P<attribute>.+))")
KEEP_BEST = Rule(lambda v: bool(METRIC.fullmatch(v)), (
    "a metric validation logs: val_l1, val_psnr, val_ssim, val_condition_error_<attribute> "
    "or val_condition_accuracy_<attribute>"))
RUN_NAME = Rule(
    lambda v: 0 < len(v) <= 100 and v not in (".", "..") and v.isprintable() and not set(v) & set("/\\"),
    "one folder name: 1 to 100 printable characters, no / or \\, not . or ..")


@dataclass
class Holdout:
    """Which rows are held out for validation. `auto`: the `split` column if the dataset has one,
    else `combinations`. A plain string (`holdout: none`) is shorthand for `{kind: none}`."""

    kind: Literal["auto", "combinations", "characters", "none"] = "auto"
    fraction: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 0.2
    count: Annotated[int, COUNT] = 2


@dataclass
class Icons:
    """How the built-in icon set (`path: builtin:icons`) is drawn."""

    characters: Annotated[int, COUNT] = 10
    seed: Annotated[int, SEED] = 0


@dataclass
class Augment:
    """Training-time changes that keep every condition true (a flipped character keeps its colours)."""

    hflip: bool = False  # mirror each training image (sketch and target together) with probability 1/2
    warp: Annotated[float, Range(0, 16)] = 0.0  # px: bend half the training pairs by a smooth random warp; 0 = off
    rotate: Annotated[float, Range(0, 45)] = 0.0  # degrees: turn the bent half by up to this much about the centre


@dataclass
class DataConfig:
    path: Annotated[str, Text(1, 4096)] = "builtin:icons"
    image_size: Annotated[int, integer(8, 4096)] = 64
    sketch_channels: Literal[1, 3] = 1
    keep_alpha: bool = False
    fit: Literal["pad", "resize"] = "pad"
    holdout: Holdout = field(default_factory=Holdout)
    icons: Icons = field(default_factory=Icons)
    augment: Augment = field(default_factory=Augment)


@dataclass
class OptimizerConfig:
    lr: Annotated[float, POSITIVE] = 2e-4
    d_lr: Annotated[Union[float, None], POSITIVE] = None
    betas: Annotated[list[float], ListOf(Range(0, 1, hi_open=True), 2, 2)] = field(
        default_factory=lambda: [0.5, 0.999])
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.0
    fused: Literal["auto", True, False] = "auto"


@dataclass
class TrainConfig:
    epochs: Annotated[Union[int, None], COUNT] = 10
    max_steps: Annotated[Union[int, None], COUNT] = None
    # a wall-clock budget (Lightning's max_time): the run ends with it, its schedule fitted to end there
    max_minutes: Annotated[Union[float, None], POSITIVE] = None
    batch_size: Annotated[int, COUNT] = 16
    grad_accum: Annotated[int, COUNT] = 1
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    decay_start: Annotated[float, FRACTION] = 0.5
    # 0 would scale every gradient to nothing: null is "no clipping"
    grad_clip: Annotated[Union[float, None], POSITIVE] = None
    ema: Annotated[Union[float, None], Range(0, 1, lo_open=True, hi_open=True)] = None
    compile: Literal[False, True, "reduce-overhead", "graph", "auto"] = False
    channels_last: Literal["auto", True, False] = "auto"
    sync_batchnorm: bool = False
    skip_nonfinite: bool = False
    log_every: Annotated[int, COUNT] = 10
    sample_every: Annotated[int, COUNT] = 100
    eval_every: Annotated[int, COUNT] = 100
    checkpoint_every: Annotated[int, COUNT] = 500
    keep_checkpoints: Annotated[int, COUNT] = 2
    keep_best: Annotated[Union[str, None], KEEP_BEST] = None
    threads: Annotated[Union[int, None], integer(1, 4096)] = None
    # seconds a collective waits for the other processes (a week at most: timedelta's range)
    dist_timeout: Annotated[float, Range(0, 604800, lo_open=True)] = 600.0


@dataclass
class LogConfig:
    with_: list[Literal["jsonl", "wandb", "tensorboard"]] = field(default_factory=lambda: ["jsonl"])
    wandb_mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    project: Annotated[str, Text(1, 128)] = "colorgan"


def _component(type_: str, **options: Any) -> Any:
    return field(default_factory=lambda: {"type": type_, **options})


@dataclass
class Recipe:
    name: Annotated[str, RUN_NAME] = "colorgan"
    seed: Annotated[int, SEED] = 0
    plugins: Annotated[list[str], ListOf(Text(1, 200))] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    condition: dict[str, Any] = _component("onehot")
    generator: dict[str, Any] = _component("unet", depth=6)
    discriminator: dict[str, Any] = _component("patchgan")
    loss: dict[str, Any] = _component("vanilla")
    # The generator's objective: weighted terms from OBJECTIVES (colorgan/objective.py).
    objective: list[dict[str, Any]] = field(default_factory=lambda: [dict(t) for t in OBJECTIVE_DEFAULT])
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


COMPONENT_SECTIONS = ("condition", "generator", "discriminator", "loss")


# --- turning plain data into the typed recipe -------------------------------------------------


def _yaml_key(f: dataclasses.Field) -> str:
    """`with_` is spelled `with` in YAML (a Python keyword cannot be a field name)."""
    return f.name.rstrip("_")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(yaml_repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value is False and "no" in typing.get_args(tp):
            value = "no"  # YAML reads an unquoted `no` as false: `mixed_precision: no` means "no"
        if any(value == a and type(value) is type(a) for a in typing.get_args(tp)):
            return value
        raise RecipeError(f"{path}: expected {_type_name(tp)}, got {describe_value(value)}")
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, path)
            except RecipeError:
                continue
        raise RecipeError(f"{path}: expected {_type_name(tp)}, got {describe_value(value)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and "kind" in {f.name for f in dataclasses.fields(tp)}:
            value = {"kind": value}
        if not isinstance(value, Mapping):
            raise RecipeError(f"{path}: expected a mapping, got {describe_value(value)}")
        return _build_dataclass(tp, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(f"{path}: expected a list, got {describe_value(value)}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise RecipeError(f"{path}: expected a mapping, got {describe_value(value)}")
        return dict(value)
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"recipe field {path} has unsupported type {tp!r}")
    raise RecipeError(f"{path}: expected {_type_name(tp)}, got {describe_value(value)}")


def _build_dataclass(cls: type, data: Mapping[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {_yaml_key(f): f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise RecipeError(
                f"{where}: unknown key{did_you_mean(str(key), list(fields))}; "
                f"valid keys: {', '.join(fields)}"
            )
        f = fields[key]
        kwargs[f.name] = _coerce(value, hints[f.name], where)
    return cls(**kwargs)


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {_yaml_key(f): _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


# --- overrides, loading, validation -----------------------------------------------------------


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one `key.path=value` to plain recipe data; the value is parsed as YAML."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {override!r}: expected key.path=value, e.g. train.epochs=5")
    try:
        value = parse_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise RecipeError(f"override {override!r}: value is not valid YAML ({getattr(err, 'problem', err)})") from None
    parts = key.strip().split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if isinstance(child, str) and part == "holdout":  # shorthand `holdout: none` then a field
            child = node[part] = {"kind": child}
        if not isinstance(child, dict):
            raise RecipeError(f"override {override!r}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Recipes written before a key changed still load: run folders and model files embed them.

    `train.l1_weight: w` became `objective: [{type: gan, weight: 1}, {type: l1, weight: w}]`;
    `data.num_workers` went (batches are gathered on the device); `mixed_precision: fp16` went
    (bf16 or fp32; `auto` picks).
    """
    train, data_cfg = data.get("train"), data.get("data")
    if isinstance(train, dict) and "l1_weight" in train:
        weight = train.pop("l1_weight")
        if "objective" in data:
            raise RecipeError("train.l1_weight: replaced by objective; give the l1 term's weight there")
        data["objective"] = [{"type": "gan", "weight": 1.0}, {"type": "l1", "weight": weight}]
    if isinstance(train, dict) and train.get("mixed_precision") == "fp16":
        train["mixed_precision"] = "auto"
    if isinstance(data_cfg, dict):
        data_cfg.pop("num_workers", None)
    return data


def from_dict(data: Mapping[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Typed recipe from plain data, after `overrides`; components are checked by `validate`."""
    if not isinstance(data, Mapping):
        raise RecipeError(f"recipe: expected a mapping at the top level, got {describe_value(data)}")
    data = upgrade(_to_plain(dict(data)))
    for override in overrides:
        apply_override(data, override)
    # A component section given as a new `type` replaces the default's options wholesale.
    recipe = _build_dataclass(Recipe, data, "")
    for section in COMPONENT_SECTIONS:
        cfg = getattr(recipe, section)
        if "type" not in cfg:
            raise RecipeError(f"{section}.type: missing; name a component (see `colorgan components`)")
    return recipe


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file (safe YAML only), apply overrides, type-check it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(f"{path}: cannot read recipe ({err})") from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RecipeError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if data is None:
        data = {}
    try:
        return from_dict(data, overrides)
    except RecipeError as err:
        raise RecipeError(f"{path}: {err}") from None


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _check_plain(value: Any, path: str) -> None:
    """NUL bytes (no file name or tracker takes them) and NaN/infinity (no setting means them)
    are refused anywhere, component options and their keys included."""
    if isinstance(value, str) and "\0" in value:
        raise RecipeError(f"{path}: expected text without NUL bytes, got {describe_value(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecipeError(f"{path}: expected a finite number, got {describe_value(value)}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_plain(key, path)
            _check_plain(item, _join(path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{path}[{i}]")


def _check_ranges(section: Any, path: str) -> None:
    """Each field's `Annotated` checks (null, where allowed, has none to pass)."""
    hints = typing.get_type_hints(type(section), include_extras=True)
    for f in dataclasses.fields(section):
        where, value = _join(path, _yaml_key(f)), getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            _check_ranges(value, where)
        for check in getattr(hints[f.name], "__metadata__", ()):
            message = None if value is None else problem(check, where, value)
            if message:
                raise RecipeError(message)


def check_values(recipe: Recipe) -> None:
    """Every range check that needs no plugins, data or networks, so that a model file's embedded
    recipe can go through it too: NUL bytes and non-finite numbers anywhere, each key's range, the
    built-in components' option values, and the rules that span keys."""
    from colorgan.component_options import check_options

    _check_plain(recipe.to_dict(), "")
    _check_ranges(recipe, "")
    for section in COMPONENT_SECTIONS:
        check_options(section, getattr(recipe, section))
    t = recipe.train
    if t.epochs is None and t.max_steps is None:
        raise RecipeError("train: set train.epochs or train.max_steps")
    if t.keep_best is not None and recipe.data.holdout.kind == "none":
        raise RecipeError("train.keep_best: there is no validation to pick the best by (data.holdout is none)")


def validate(recipe: Recipe) -> None:
    """Everything that can be checked before the data is read: values, plugins, components, and
    sizes by arithmetic (`model_size`), never by building a network."""
    from colorgan.model_size import check_model_size
    from colorgan.registry import CONDITIONS, DISCRIMINATORS, GENERATORS, LOSSES
    from colorgan.registry.plugins import load_recipe_plugins

    check_values(recipe)
    load_recipe_plugins(recipe.plugins)
    CONDITIONS.check(recipe.condition, "condition", passed=("schema",))
    GENERATORS.check(recipe.generator, "generator", passed=("in_channels", "out_channels", "cond_dim"))
    DISCRIMINATORS.check(
        recipe.discriminator, "discriminator", passed=("image_channels", "sketch_channels", "cond_dim")
    )
    LOSSES.check(recipe.loss, "loss")
    objective.check(recipe.objective)
    check_model_size(recipe)


def check_against_schema(recipe: Recipe, schema: ConditionSchema) -> None:
    """What needs the data's condition schema, to be called as soon as it is read (before the run
    folder is made): the attribute `train.keep_best` names, and the sizes with the real condition
    width (a dataset with a million attribute values makes a wide one-hot input)."""
    from colorgan.model_size import check_model_size

    metric = METRIC.fullmatch(recipe.train.keep_best or "")
    attribute = metric and metric.group("attribute")
    if attribute and attribute not in schema.names:
        raise RecipeError(
            f"train.keep_best: the data has no attribute {attribute!r}{did_you_mean(attribute, schema.names)}; "
            f"attributes: {', '.join(schema.names)}")
    check_model_size(recipe, schema)


def load_validated(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    recipe = load(path, overrides)
    try:
        validate(recipe)
    except ColorganError as err:
        raise type(err)(f"{path}: {err}") from None
    return recipe
