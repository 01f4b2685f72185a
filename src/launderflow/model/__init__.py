"""The simulation model: lots of value, the ledger, the outcome book, the launderer and venues.

Nothing in this package prints, reads files or knows about the CLI; a run is driven by
:func:`launderflow.model.world.simulate` from a validated scenario and an explicit generator.
"""
