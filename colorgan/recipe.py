"""Recipes: YAML in, a typed, validated `Recipe` out.

A recipe says everything a run needs. Sections are dataclasses, so every key has a type and a
default; components (`condition`, `generator`, `discriminator`, `loss`) are `{type: NAME, ...}`
dicts whose options are checked against the component's signature by the registry. Errors name
the key path (`train.epochs: expected an integer, got 'ten'`). `-o key.path=value` overrides any
key; the resolved recipe dumps to YAML and loads back to an equal recipe.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Union

import yaml

from colorgan.errors import ColorganError, RecipeError
from colorgan.registry.core import did_you_mean


@dataclass
class Holdout:
    """Which rows are held out for validation. `auto`: the `split` column if the dataset has one,
    else `combinations`. A plain string (`holdout: none`) is shorthand for `{kind: none}`."""

    kind: Literal["auto", "combinations", "characters", "none"] = "auto"
    fraction: float = 0.2
    count: int = 2


@dataclass
class Icons:
    """How the built-in icon set (`path: builtin:icons`) is drawn."""

    characters: int = 10
    seed: int = 0


@dataclass
class DataConfig:
    path: str = "builtin:icons"
    image_size: int = 64
    sketch_channels: Literal[1, 3] = 1
    keep_alpha: bool = False
    fit: Literal["pad", "resize"] = "pad"
    holdout: Holdout = field(default_factory=Holdout)
    icons: Icons = field(default_factory=Icons)


@dataclass
class OptimizerConfig:
    lr: float = 2e-4
    d_lr: Union[float, None] = None
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    weight_decay: float = 0.0
    fused: Literal["auto", True, False] = "auto"


@dataclass
class TrainConfig:
    epochs: Union[int, None] = 10
    max_steps: Union[int, None] = None
    batch_size: int = 16
    grad_accum: int = 1
    l1_weight: float = 100.0
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    decay_start: float = 0.5
    grad_clip: Union[float, None] = None
    ema: Union[float, None] = None
    compile: Literal[False, True, "reduce-overhead"] = False
    channels_last: Literal["auto", True, False] = "auto"
    sync_batchnorm: bool = False
    skip_nonfinite: bool = False
    log_every: int = 10
    sample_every: int = 100
    eval_every: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    keep_best: Union[str, None] = None
    threads: Union[int, None] = None
    dist_timeout: float = 600.0  # seconds a collective waits for the other processes


@dataclass
class LogConfig:
    with_: list[Literal["jsonl", "wandb", "tensorboard"]] = field(default_factory=lambda: ["jsonl"])
    wandb_mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    project: str = "colorgan"


def _component(type_: str, **options: Any) -> Any:
    return field(default_factory=lambda: {"type": type_, **options})


@dataclass
class Recipe:
    name: str = "colorgan"
    seed: int = 0
    plugins: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    condition: dict[str, Any] = _component("onehot")
    generator: dict[str, Any] = _component("unet", depth=6)
    discriminator: dict[str, Any] = _component("patchgan")
    loss: dict[str, Any] = _component("vanilla")
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


def _describe(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else type(value).__name__


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(a).lower() if isinstance(a, bool) else repr(a) for a in typing.get_args(tp))
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
        raise RecipeError(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, path)
            except RecipeError:
                continue
        raise RecipeError(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and "kind" in {f.name for f in dataclasses.fields(tp)}:
            value = {"kind": value}
        if not isinstance(value, Mapping):
            raise RecipeError(f"{path}: expected a mapping, got {_describe(value)}")
        return _build_dataclass(tp, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(f"{path}: expected a list, got {_describe(value)}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise RecipeError(f"{path}: expected a mapping, got {_describe(value)}")
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
    raise RecipeError(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")


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
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise RecipeError(f"override {override!r}: value is not valid YAML ({err.problem})") from None
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


def from_dict(data: Mapping[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Typed recipe from plain data, after `overrides`; components are checked by `validate`."""
    if not isinstance(data, Mapping):
        raise RecipeError(f"recipe: expected a mapping at the top level, got {_describe(data)}")
    data = _to_plain(dict(data))
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
        data = yaml.safe_load(text)
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


def validate(recipe: Recipe) -> None:
    """Everything that can be checked before any work starts: plugins, components, sizes."""
    from colorgan.registry import CONDITIONS, DISCRIMINATORS, GENERATORS, LOSSES
    from colorgan.registry.plugins import load_recipe_plugins

    load_recipe_plugins(recipe.plugins)
    CONDITIONS.check(recipe.condition, "condition", passed=("schema",))
    GENERATORS.check(recipe.generator, "generator", passed=("in_channels", "out_channels", "cond_dim"))
    DISCRIMINATORS.check(
        recipe.discriminator, "discriminator", passed=("image_channels", "sketch_channels", "cond_dim")
    )
    LOSSES.check(recipe.loss, "loss")
    t = recipe.train
    if t.epochs is None and t.max_steps is None:
        raise RecipeError("train: set train.epochs or train.max_steps")
    for key in ("batch_size", "grad_accum", "log_every", "sample_every", "eval_every",
                "checkpoint_every", "keep_checkpoints"):
        if getattr(t, key) < 1:
            raise RecipeError(f"train.{key}: expected a positive integer, got {getattr(t, key)}")
    if not (math.isfinite(t.dist_timeout) and t.dist_timeout > 0):
        raise RecipeError(f"train.dist_timeout: expected a positive number of seconds, got {t.dist_timeout}")
    o = recipe.optimizer
    for key in ("lr", "d_lr"):
        value = getattr(o, key)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise RecipeError(f"optimizer.{key}: expected a positive number, got {value}")
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        raise RecipeError(f"optimizer.betas: expected two numbers in [0, 1), got {o.betas}")
    if not (math.isfinite(o.weight_decay) and o.weight_decay >= 0):
        raise RecipeError(f"optimizer.weight_decay: expected a number >= 0, got {o.weight_decay}")
    fraction = recipe.data.holdout.fraction
    if not 0 < fraction < 1:
        raise RecipeError(f"data.holdout.fraction: expected a number between 0 and 1, got {fraction}")
    size = recipe.data.image_size
    if not 8 <= size <= 4096:
        raise RecipeError(f"data.image_size: expected 8..4096, got {size}")
    _check_generator_size(recipe)


def _check_generator_size(recipe: Recipe) -> None:
    """Build the generator on the meta device (no memory, no time) to ask which sizes it takes."""
    import torch

    from colorgan.registry import GENERATORS

    with torch.device("meta"):
        generator = GENERATORS.build(recipe.generator, "generator", in_channels=recipe.data.sketch_channels,
                                     out_channels=3, cond_dim=1)
    check_size = getattr(generator, "check_size", None)
    if check_size is not None:
        try:
            check_size(recipe.data.image_size)
        except ValueError as err:
            raise RecipeError(f"data.image_size: {err}") from None


def load_validated(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    recipe = load(path, overrides)
    try:
        validate(recipe)
    except ColorganError as err:
        raise type(err)(f"{path}: {err}") from None
    return recipe
