"""Named protocol stages of secure aggregation (Bonawitz et al., CCS 2017, Fig. 4).

The numeric values are part of the wire format (they are bound into AEAD associated data), so
they never change.
"""

from __future__ import annotations

import enum

__all__ = ["Stage"]


class Stage(enum.IntEnum):
    """The four rounds of the protocol, in order (ConsistencyCheck is not implemented)."""

    ADVERTISE_KEYS = 0
    SHARE_KEYS = 1
    MASKED_INPUT_COLLECTION = 2
    UNMASKING = 3
