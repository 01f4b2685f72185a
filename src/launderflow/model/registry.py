"""One extension protocol: runtime classes registered under the scenario schema's discriminator.

Venues (``kind``), playbook steps (``hop``), interventions (``kind``) and delay distributions
(``dist``) are each a :class:`Registry`: a module defines a class and registers it under the tag
its schema model carries (``@VENUES.register("otc")``); the world builds each spec with
:meth:`Registry.build`. ``tests/test_extensions.py`` fails when a tag of the schema has no class,
a class no tag, or a kind no documentation — so a new kind is: a schema model, one module, one
registry entry, its docs and its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes keyed by the value of a schema discriminator field."""

    instances: list[Registry[Any]] = []  # every registry (the executors ask whether a script registered a class)

    def __init__(self, what: str, discriminator: str):
        Registry.instances.append(self)
        self.what = what
        self.discriminator = discriminator
        self._classes: dict[str, type[T]] = {}

    def register(self, *tags: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: ``cls`` handles specs whose discriminator is one of ``tags``."""

        def add(cls: type[T]) -> type[T]:
            for tag in tags:
                if tag in self._classes:
                    raise ValueError(f"{self.what} {tag!r} is already registered ({self._classes[tag].__name__})")
                self._classes[tag] = cls
            return cls

        return add

    def class_for(self, spec: Any) -> type[T]:
        tag = getattr(spec, self.discriminator)
        try:
            return self._classes[tag]
        except KeyError:
            raise KeyError(f"no {self.what} is registered for {self.discriminator} {tag!r}") from None

    def build(self, spec: Any, *args: Any) -> T:
        """An instance for ``spec``: its class's ``from_spec(spec, *args)``."""
        return self.class_for(spec).from_spec(spec, *args)  # type: ignore[attr-defined]

    def classes(self) -> list[type[T]]:
        return list(self._classes.values())

    def tags(self) -> list[str]:
        return list(self._classes)

    def __contains__(self, tag: str) -> bool:
        return tag in self._classes
