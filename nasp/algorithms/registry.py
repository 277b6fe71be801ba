"""The algorithm registry: ``@register_algorithm("name")`` on a SearchAlgorithm subclass."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nasp.registry import Registry

if TYPE_CHECKING:
    from nasp.algorithms.base import SearchAlgorithm

ALGORITHMS: Registry[type[SearchAlgorithm]] = Registry("algorithm")


def register_algorithm(name: str, *, overwrite: bool = False) -> Callable[[type[SearchAlgorithm]], type[SearchAlgorithm]]:
    def decorator(cls: type[SearchAlgorithm]) -> type[SearchAlgorithm]:
        cls.name = name
        ALGORITHMS.add(name, cls, overwrite=overwrite)
        return cls

    return decorator


def list_algorithms() -> list[str]:
    return ALGORITHMS.names()
