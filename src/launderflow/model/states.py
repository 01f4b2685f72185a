"""The two outcome axes every unit of stolen value has at every instant.

*Location* says where the value is; *knowledge* says whether investigators know where it is.
They are stored together as one cell index ``location * 2 + traced`` so that a batch of moves is
one ``bincount``.
"""

from __future__ import annotations

from enum import IntEnum


class Location(IntEnum):
    LAUNDERER = 0  # on-chain in a wallet the launderer controls
    VENUE = 1  # inside a venue: mixer pool, bridge in flight, exchange account, off-ramp queue
    FROZEN = 2  # frozen by an issuer or exchange
    SEIZED = 3  # seized by law enforcement
    CASHED_OUT = 4  # left the chain through an off-ramp
    FEES = 5  # spent on network fees, venue fees, haircuts and slippage


class Knowledge(IntEnum):
    DARK = 0
    TRACED = 1


LOCATIONS: tuple[str, ...] = tuple(loc.name.lower() for loc in Location)
KNOWLEDGE: tuple[str, ...] = tuple(k.name.lower() for k in Knowledge)
N_CELLS = len(Location) * len(Knowledge)


def cell(location: int, traced: int) -> int:
    return int(location) * 2 + int(traced)
