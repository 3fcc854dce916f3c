"""What one client holds for one session of secure aggregation, kept together so it can be
dropped wholesale.

Bonawitz et al. (CCS 2017), Fig. 4: between AdvertiseKeys and Unmasking a client keeps its two
key pairs, its self-mask seed, the Shamir shares its peers sealed to it and its views of who
took part (U1, U2, the senders it accused, the survivor set it signed). Whoever holds all of it
could answer for both shares of a peer, so the state machine in :mod:`edge.secagg.client` keeps
exactly one :class:`SessionState` and drops the whole object on any session fault or once it
has answered. Data only, no I/O and no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .identity import VerifyingKey
from .keys import X25519KeyPair

__all__ = ["SessionState"]


# repr=False: the default repr would print the seed and the held shares into logs and tracebacks.
@dataclass(repr=False, eq=False)
class SessionState:
    """Secrets and views of one session; dropped wholesale on abort or completion."""

    nonce: bytes
    c_keys: X25519KeyPair
    s_keys: X25519KeyPair
    session_id: bytes = b""
    # id -> (c_pk, s_pk) of every client in the checked advertised key list
    u1: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    self_seed: bytes = b""
    # owner id -> (share of owner's s^SK, share of owner's b) held by this client
    held: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    u2: frozenset[int] = frozenset()
    # senders whose shares did not open or verify (this client masked without them)
    accused: frozenset[int] = frozenset()
    # device signing key of every member of U1 (actively secure variant)
    signers: dict[int, VerifyingKey] = field(default_factory=dict)
    # the survivor set this client signed in ConsistencyCheck
    signed_alive: tuple[int, ...] | None = None
