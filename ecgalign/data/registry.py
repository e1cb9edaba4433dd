"""The one registry mechanism of the package (DESIGN.md convention 2), for every component kind (encoders,
readers, tasks, evaluation protocols, ...): ``@register("name")`` on a builder, ``variant(name, cls, **defaults)``
for a named variant of a shared class, ``create(name, **overrides)``, ``names()``. Duplicate names raise; an
unknown name says what exists. It lives at the bottom layer so that every layer can use it."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ecgalign.data.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = builder
            return builder

        return decorator

    def variant(self, name: str, cls: Callable[..., T], doc: str = "", **defaults: Any) -> Callable[..., T]:
        """Register ``name`` as ``cls`` with ``defaults`` (timm's ``_create_*`` pattern): overrides win."""

        def builder(*args: Any, **overrides: Any) -> T:
            return cls(*args, **{**defaults, **overrides})

        builder.__name__, builder.__doc__ = name, doc or f"{getattr(cls, '__name__', cls)} with {defaults}"
        return self.register(name)(builder)

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._builders:
            close = difflib.get_close_matches(name, self._builders, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._builders))})")
        return self._builders[name]

    def create(self, name: str, **overrides: Any) -> T:
        return self.get(name)(**overrides)

    def names(self) -> list[str]:
        return sorted(self._builders)

    def in_order(self) -> list[str]:
        """Names in the order they were registered."""
        return list(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders
