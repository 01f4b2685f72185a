"""Venues: the places stolen value passes through, one kind per module.

Every venue has a name, an index, a jurisdiction and one on-chain address; a venue hop offers it
lots (``refuses``), it takes them in (``enter``) and later releases them (``release``), charging its
fees through the world's primitives so that conservation holds through every venue. Each kind
registers under its schema ``kind`` in :data:`VENUES` (``base.py``); the hooks a kind may override,
and their defaults, are listed on :class:`VenueModel`.
"""

from __future__ import annotations

from ..ops import World
from . import bridge, custodial_mixer, dex, exchange, issuer, otc, pool_mixer  # noqa: F401  (each registers its kind)
from .base import VENUES, VenueModel


def build_venues(world: World) -> list[VenueModel]:
    """Instantiate the scenario's venues in the order they are written."""
    return [VENUES.build(spec, world, index, name) for index, (name, spec) in enumerate(world.scenario.venues.items())]


__all__ = ["VENUES", "VenueModel", "build_venues"]
