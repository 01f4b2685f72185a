"""What every venue shares: identity, jurisdiction and one deposit address."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..addresses import Role


class VenueModel:
    kind = "venue"

    def __init__(self, world: Any, index: int, name: str, spec: Any):
        self.world = world
        self.index = index
        self.name = name
        self.spec = spec
        self.jurisdiction: str = spec.jurisdiction
        self.address = int(world.addresses.new(1, -1, Role.VENUE)[0])

    def accept(self, world: Any, ids: np.ndarray, now: float) -> None:
        """Lots have just arrived (location VENUE): decide when they come out."""
        raise NotImplementedError

    def settle(self, world: Any, ids: np.ndarray, now: float) -> None:
        """Lots are due to leave the venue."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.jurisdiction})"
