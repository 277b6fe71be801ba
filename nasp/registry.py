"""One small generic registry for ops, spaces, algorithms and datasets (timm style)."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

from nasp.errors import RegistryError

T = TypeVar("T")


def did_you_mean(name: str, known: list[str]) -> str:
    """A ' Did you mean X?' suffix when a known name is close to ``name``, else ''."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """Maps names to objects; ``register`` is a decorator, unknown names list the known ones."""

    _all: ClassVar[list[Registry[Any]]] = []  # every registry, for snapshot/restore around a plugin's import

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}
        Registry._all.append(self)

    @classmethod
    def snapshot(cls) -> list[tuple[Registry[Any], dict[str, Any], dict[str, str]]]:
        """The contents of every registry (``restore`` puts them back: a failed plugin's names go)."""
        return [(r, dict(r._items), dict(r._docs)) for r in cls._all]

    @classmethod
    def restore(cls, snapshot: list[tuple[Registry[Any], dict[str, Any], dict[str, str]]]) -> None:
        for registry, items, docs in snapshot:
            registry._items, registry._docs = dict(items), dict(docs)

    def register(self, name: str, *, doc: str | None = None, overwrite: bool = False) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj, doc=doc, overwrite=overwrite)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, doc: str | None = None, overwrite: bool = False) -> None:
        if name in self._items and not overwrite and self._items[name] is not obj:
            raise RegistryError(f"{self.kind} '{name}' is already registered{self.origin(name)}; pass overwrite=True "
                                f"to replace it")
        self._items[name] = obj
        self._docs[name] = doc if doc is not None else _first_line(getattr(obj, "__doc__", None))

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = sorted(self._items)
            raise RegistryError(
                f"unknown {self.kind} '{name}'.{did_you_mean(name, known)} Known: {', '.join(known)}"
            ) from None

    def origin(self, name: str) -> str:
        """' (built in)' or ' (by module M)' for a registered name: who registered it."""
        obj = self._items.get(name)
        made_by = getattr(obj, "factory", obj)  # an op's spec: its factory
        module = getattr(made_by, "__module__", None)
        if not module:
            return ""
        if module == "nasp" or module.startswith("nasp."):
            return " (built in)"
        file = getattr(sys.modules.get(module), "__file__", None)
        return f" (by {file or module})"

    def names(self) -> list[str]:
        return sorted(self._items)

    def doc(self, name: str) -> str:
        self.get(name)
        return self._docs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""
