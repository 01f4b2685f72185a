"""Venues: the places stolen value passes through, one kind per module.

Every venue has a name, an index, a jurisdiction and one on-chain address; a venue hop offers it
lots (``refuses``), it takes them in (``enter``) and later releases them (``release``), charging its
fees through the world's primitives so that conservation holds through every venue.
"""

from __future__ import annotations

from typing import Any

from .base import VenueModel
from .bridge import Bridge
from .custodial_mixer import CustodialMixer
from .dex import Dex
from .exchange import Exchange
from .issuer import Issuer
from .otc import OtcDesk
from .pool_mixer import PoolMixer

KINDS: dict[str, type[VenueModel]] = {
    "otc": OtcDesk,
    "dex": Dex,
    "bridge": Bridge,
    "exchange": Exchange,
    "issuer": Issuer,
    "custodial_mixer": CustodialMixer,
    "pool_mixer": PoolMixer,
}


def build_venues(world: Any) -> list[VenueModel]:
    """Instantiate the scenario's venues in the order they are written."""
    return [KINDS[spec.kind](world, index, name, spec) for index, (name, spec) in enumerate(world.scenario.venues.items())]


__all__ = ["VenueModel", "build_venues", "KINDS", *[cls.__name__ for cls in KINDS.values()]]
