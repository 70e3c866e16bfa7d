"""A small registry of named components, in the spirit of timm's `_registry.py`.

One `Registry` per kind of component (generators, discriminators, ...). Components register
under a name with a decorator; recipes name them; `build` makes one from a recipe dict. Every
entry remembers where it came from so `colorgan components` can tell built-ins from plugins.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import fnmatch
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from colorgan.errors import RegistryError

# Who is registering right now: set while a plugin module is imported, so entries it registers
# say "plugin ..." without the plugin author having to say so.
_ORIGIN: contextvars.ContextVar[str | None] = contextvars.ContextVar("colorgan_origin", default=None)


@contextlib.contextmanager
def registering_as(origin: str) -> Iterator[None]:
    """Mark every registration made inside the block as coming from `origin`."""
    token = _ORIGIN.set(origin)
    try:
        yield
    finally:
        _ORIGIN.reset(token)


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Callable[..., Any]
    origin: str

    @property
    def summary(self) -> str:
        """First line of the component's docstring: the one-line answer to "what is it"."""
        doc = inspect.getdoc(self.obj) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def accepted_options(self) -> tuple[list[str], bool]:
        """Keyword names the constructor takes, and whether it also takes **kwargs."""
        target = self.obj.__init__ if inspect.isclass(self.obj) else self.obj
        params = list(inspect.signature(target).parameters.values())
        if inspect.isclass(self.obj) and params and params[0].name == "self":
            params = params[1:]
        names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return names, any(p.kind == p.VAR_KEYWORD for p in params)


def _default_origin(obj: Any) -> str:
    module = getattr(obj, "__module__", "") or ""
    return "built-in" if module.startswith("colorgan.") else f"module {module}"


def did_you_mean(word: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' for the closest choices, or '' when nothing is close."""
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


class Registry:
    """Named components of one kind.

    `loader` is called once before the first lookup: it imports the built-in modules and the
    installed plugins, so importing `colorgan.registry` stays cheap (no timm, no torch models).
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._loader = loader

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

    def register(self, name: str, *, force: bool = False) -> Callable[[Any], Any]:
        """Decorator: `@GENERATORS.register("unet")`. A name taken twice is an error unless `force`."""

        def decorator(obj: Any) -> Any:
            if name in self._entries and not force:
                raise RegistryError(
                    f"{self.kind} {name!r} is already registered (from {self._entries[name].origin}); "
                    "pass force=True to replace it"
                )
            origin = _ORIGIN.get() or _default_origin(obj)
            self._entries[name] = Entry(name, obj, origin)
            return obj

        return decorator

    def _ensure_loaded(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def entries(self) -> dict[str, Entry]:
        self._ensure_loaded()
        return dict(self._entries)

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a glob pattern (`"unet*"`)."""
        self._ensure_loaded()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def entry(self, name: str) -> Entry:
        self._ensure_loaded()
        if name not in self._entries:
            available = sorted(self._entries)
            raise RegistryError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, available)}; "
                f"available: {', '.join(available) or '(none)'}"
            )
        return self._entries[name]

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def check(self, cfg: Mapping[str, Any], where: str | None = None, passed: tuple[str, ...] = ()) -> None:
        """Validate a component dict without building it: the type exists and takes every option.

        `passed` lists the keywords the framework itself passes (they may not come from the recipe).
        """
        where = where or self.kind
        if not isinstance(cfg, Mapping) or "type" not in cfg:
            raise RegistryError(f"{where}: expected a mapping with a 'type' key, got {cfg!r}")
        name = cfg["type"]
        if not isinstance(name, str):
            raise RegistryError(f"{where}.type: expected a component name, got {name!r}")
        try:
            entry = self.entry(name)
        except RegistryError as err:
            raise RegistryError(f"{where}.type: {err}") from None
        accepted, takes_any = entry.accepted_options()
        options = [k for k in cfg if k != "type"]
        for key in options:
            if key in passed:
                raise RegistryError(
                    f"{where}.{key}: set by colorgan itself and cannot be given in the recipe"
                )
            if not takes_any and key not in accepted:
                valid = [a for a in accepted if a not in passed]
                raise RegistryError(
                    f"{where}.{key}: {self.kind} {name!r} has no option {key!r}{did_you_mean(key, valid)}; "
                    f"its options: {', '.join(valid) or '(none)'}"
                )

    def build(self, cfg: Mapping[str, Any], where: str | None = None, **defaults: Any) -> Any:
        """Build `{"type": name, **options}`; `defaults` are the keywords colorgan passes."""
        self.check(cfg, where, passed=tuple(defaults))
        options = {k: v for k, v in cfg.items() if k != "type"}
        try:
            return self.get(cfg["type"])(**defaults, **options)
        except ValueError as err:  # components reject bad option values with ValueError
            raise RegistryError(f"{where or self.kind}: {err}") from None
