"""Venues: the places stolen value passes through, one kind per module.

Every venue has a name, an index, a jurisdiction and one on-chain address; it receives lots from
a playbook step (``accept``) and later releases them (``settle``), charging its fees through the
world's primitives so that conservation holds through every venue.
"""

from __future__ import annotations

from typing import Any

from .base import VenueModel
from .otc import OtcDesk

KINDS: dict[str, type[VenueModel]] = {"otc": OtcDesk}


def build_venues(world: Any) -> list[VenueModel]:
    """Instantiate the scenario's venues in the order they are written."""
    venues = []
    for index, (name, spec) in enumerate(world.scenario.venues.items()):
        venues.append(KINDS[spec.kind](world, index, name, spec))
    return venues


__all__ = ["VenueModel", "OtcDesk", "build_venues", "KINDS"]
