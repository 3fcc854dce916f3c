"""Named protocol stages of secure aggregation (Bonawitz et al., CCS 2017, Fig. 4).

The numeric values are part of the wire format (they are bound into AEAD associated data and
signed statements); protocol version 2 inserted CONSISTENCY_CHECK before UNMASKING.
"""

from __future__ import annotations

import enum

__all__ = ["Stage"]


class Stage(enum.IntEnum):
    """The rounds of the protocol, in order. CONSISTENCY_CHECK runs only in the actively secure
    variant (``SecAggConfig.active``); the semi-honest variant goes straight to UNMASKING."""

    ADVERTISE_KEYS = 0
    SHARE_KEYS = 1
    MASKED_INPUT_COLLECTION = 2
    CONSISTENCY_CHECK = 3
    UNMASKING = 4
