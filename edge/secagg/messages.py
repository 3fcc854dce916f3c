"""Wire messages of secure aggregation and their deterministic byte format.

One dataclass per message of Bonawitz et al. (CCS 2017), Fig. 4, named for its stage. Every
message encodes to bytes with explicit little-endian fixed-width fields (no pickle, no native
byte order, no floats), so the same message has the same bytes on x86-64 and aarch64, and
:func:`decode_message` parses strictly: unknown type, truncation or trailing bytes raise
:class:`MalformedMessage`.

Layout: ``b"PSA" | version u8 | type u8 | body``. Bodies (``u32`` little-endian, ``[n]`` fixed
bytes, ``list<T>`` = ``u32 count`` then the items):

=====  ======================  ===========================================================
type   message                 body
=====  ======================  ===========================================================
1      AdvertiseKeysRequest    nonce[32] config_digest[32]
2      AdvertiseKeysReply      client u32, nonce[32], c_pk[32], s_pk[32], cert var,
                               signature var
3      ShareKeysRequest        nonce[32] config_digest[32] list<id u32, c_pk[32], s_pk[32]>
                               list<cert var, signature var>
4      ShareKeysReply          client u32, session[32], commitment[32], list<share>
5      MaskedInputRequest      recipient u32, session[32], list<share>
6      MaskedInputReply        client u32, session[32], list<accused u32>, word_bits u8,
                               count u32, words (LE)
7      UnmaskRequest           session[32], list<alive u32>, list<dropped u32>,
                               list<signer u32, signature var>
8      UnmaskReply             client u32, session[32], list<owner u32, b_share[32]>,
                               list<owner u32, sk_share[32]>
9      ConsistencyCheckRequest session[32], list<alive u32>
10     ConsistencyCheckReply   client u32, session[32], signature var
=====  ======================  ===========================================================

``var`` is ``len u32`` then the bytes; ``share`` is ``peer u32, nonce[12], key_commit[32],
seed_commit[32], len u32, ciphertext+tag``. Version 2 (issue 19) added the certificates and
signatures (empty in the semi-honest variant), the per-share commitments, the accusations and
the ConsistencyCheck messages.

Why one file of over 400 lines: the byte format is the protocol between Pis and coordinators
of different versions, so all ten message types and their strict decoders are reviewed in
one place (known-answer vectors in tests/edge/secagg/test_known_answers_wire.py pin them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

import numpy as np

from .errors import MalformedMessage

__all__ = [
    "AdvertiseKeysReply",
    "AdvertiseKeysRequest",
    "ClientMessage",
    "ConsistencyCheckReply",
    "ConsistencyCheckRequest",
    "EncryptedShare",
    "MaskedInputReply",
    "MaskedInputRequest",
    "Message",
    "ServerMessage",
    "ShareKeysReply",
    "ShareKeysRequest",
    "UnmaskReply",
    "UnmaskRequest",
    "decode_message",
]

_MAGIC = b"PSA"
_VERSION = 2
_HASH = 32
_KEY = 32
_NONCE = 12
_SHARE = 32


class _Writer:
    def __init__(self, kind: int) -> None:
        self._parts: list[bytes] = [_MAGIC, struct.pack("<BB", _VERSION, kind)]

    def u8(self, value: int) -> None:
        self._parts.append(struct.pack("<B", value))

    def u32(self, value: int) -> None:
        self._parts.append(struct.pack("<I", value))

    def fixed(self, data: bytes, size: int) -> None:
        if len(data) != size:
            raise MalformedMessage(f"field must be {size} bytes, got {len(data)}")
        self._parts.append(bytes(data))

    def var(self, data: bytes) -> None:
        self.u32(len(data))
        self._parts.append(bytes(data))

    def ids(self, ids: tuple[int, ...]) -> None:
        self.u32(len(ids))
        self._parts.append(struct.pack(f"<{len(ids)}I", *ids))

    def raw(self, data: bytes) -> None:
        self._parts.append(data)

    def done(self) -> bytes:
        return b"".join(self._parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def take(self, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise MalformedMessage(
                f"message truncated: needed {size} bytes at offset {self._pos}, "
                f"{len(self._data) - self._pos} left; resend the whole message"
            )
        out = bytes(self._data[self._pos : end])
        self._pos = end
        return out

    def u8(self) -> int:
        return int(self.take(1)[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def count(self, item_size: int) -> int:
        count = self.u32()
        if count * item_size > len(self._data) - self._pos:
            raise MalformedMessage(f"list of {count} items does not fit in the message")
        return count

    def var(self) -> bytes:
        return self.take(self.count(1))

    def ids(self) -> tuple[int, ...]:
        count = self.count(4)
        return tuple(struct.unpack(f"<{count}I", self.take(4 * count)))

    def done(self) -> None:
        if self._pos != len(self._data):
            raise MalformedMessage(
                f"{len(self._data) - self._pos} trailing bytes after the message; "
                "the sender and receiver disagree on the format version"
            )


def _check_id(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise MalformedMessage(f"client id {value!r} is not a u32")


def _check_bytes(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedMessage(f"{name} must be {size} bytes")


@dataclass(frozen=True)
class EncryptedShare:
    """The AES-GCM-sealed Shamir shares one client sends another, relayed by the server.

    ``peer`` is the recipient in a :class:`ShareKeysReply` and the sender in a
    :class:`MaskedInputRequest`. ``key_commitment`` / ``seed_commitment`` are the sender's
    hashes of the two shares inside (``session.share_commitment``): the recipient checks them
    on opening, the server checks every share revealed at unmasking against them, so a bad
    share is traced to the one who sent it.
    """

    peer: int
    nonce: bytes
    ciphertext: bytes
    key_commitment: bytes = bytes(_HASH)
    seed_commitment: bytes = bytes(_HASH)

    def __post_init__(self) -> None:
        _check_id(self.peer)
        _check_bytes("AEAD nonce", self.nonce, _NONCE)
        _check_bytes("key-share commitment", self.key_commitment, _HASH)
        _check_bytes("seed-share commitment", self.seed_commitment, _HASH)
        if not isinstance(self.ciphertext, bytes):
            raise MalformedMessage("ciphertext must be bytes")


def _write_shares(w: _Writer, shares: tuple[EncryptedShare, ...]) -> None:
    w.u32(len(shares))
    for item in shares:
        w.u32(item.peer)
        w.fixed(item.nonce, _NONCE)
        w.fixed(item.key_commitment, _HASH)
        w.fixed(item.seed_commitment, _HASH)
        w.var(item.ciphertext)


def _read_shares(r: _Reader) -> tuple[EncryptedShare, ...]:
    count = r.count(4 + _NONCE + 2 * _HASH + 4)
    out = []
    for _ in range(count):
        peer, nonce, key_commit, seed_commit = r.u32(), r.take(_NONCE), r.take(_HASH), r.take(_HASH)
        out.append(EncryptedShare(peer, nonce, r.var(), key_commit, seed_commit))
    return tuple(out)


def _check_var(name: str, value: bytes) -> None:
    if not isinstance(value, bytes):
        raise MalformedMessage(f"{name} must be bytes")


class _Message:
    KIND: ClassVar[int]

    def to_bytes(self) -> bytes:
        """Serialise deterministically (little-endian, architecture-independent)."""
        w = _Writer(self.KIND)
        self._write(w)
        return w.done()

    def _write(self, w: _Writer) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class AdvertiseKeysRequest(_Message):
    """Server -> every client: open a session with a fresh round nonce."""

    KIND: ClassVar[int] = 1
    nonce: bytes
    config_digest: bytes

    def __post_init__(self) -> None:
        _check_bytes("nonce", self.nonce, _HASH)
        _check_bytes("config digest", self.config_digest, _HASH)

    def _write(self, w: _Writer) -> None:
        w.fixed(self.nonce, _HASH)
        w.fixed(self.config_digest, _HASH)

    @classmethod
    def _read(cls, r: _Reader) -> AdvertiseKeysRequest:
        return cls(r.take(_HASH), r.take(_HASH))


@dataclass(frozen=True)
class AdvertiseKeysReply(_Message):
    """Client -> server: the client's two fresh X25519 public keys (c for shares, s for masks).

    In the actively secure variant ``certificate`` is the device's
    :class:`~edge.secagg.identity.DeviceCertificate` bytes and ``signature`` its Ed25519
    signature over ``session.advertise_statement`` (both empty in the semi-honest variant).
    """

    KIND: ClassVar[int] = 2
    client_id: int
    nonce: bytes
    c_public: bytes
    s_public: bytes
    certificate: bytes = b""
    signature: bytes = b""

    def __post_init__(self) -> None:
        _check_id(self.client_id)
        _check_bytes("nonce", self.nonce, _HASH)
        _check_bytes("c public key", self.c_public, _KEY)
        _check_bytes("s public key", self.s_public, _KEY)
        _check_var("certificate", self.certificate)
        _check_var("signature", self.signature)

    def _write(self, w: _Writer) -> None:
        w.u32(self.client_id)
        w.fixed(self.nonce, _HASH)
        w.fixed(self.c_public, _KEY)
        w.fixed(self.s_public, _KEY)
        w.var(self.certificate)
        w.var(self.signature)

    @classmethod
    def _read(cls, r: _Reader) -> AdvertiseKeysReply:
        return cls(r.u32(), r.take(_HASH), r.take(_KEY), r.take(_KEY), r.var(), r.var())


@dataclass(frozen=True)
class ShareKeysRequest(_Message):
    """Server -> every advertiser: the advertised keys (U1), sorted by id; fixes the session id.

    ``signed`` holds, per entry of ``keys`` and in its order, the (certificate, signature) the
    client advertised; it is empty in the semi-honest variant.
    """

    KIND: ClassVar[int] = 3
    nonce: bytes
    config_digest: bytes
    keys: tuple[tuple[int, bytes, bytes], ...]
    signed: tuple[tuple[bytes, bytes], ...] = ()

    def __post_init__(self) -> None:
        _check_bytes("nonce", self.nonce, _HASH)
        _check_bytes("config digest", self.config_digest, _HASH)
        for cid, c_pk, s_pk in self.keys:
            _check_id(cid)
            _check_bytes("c public key", c_pk, _KEY)
            _check_bytes("s public key", s_pk, _KEY)
        for cert, sig in self.signed:
            _check_var("certificate", cert)
            _check_var("signature", sig)

    def _write(self, w: _Writer) -> None:
        w.fixed(self.nonce, _HASH)
        w.fixed(self.config_digest, _HASH)
        w.u32(len(self.keys))
        for cid, c_pk, s_pk in self.keys:
            w.u32(cid)
            w.fixed(c_pk, _KEY)
            w.fixed(s_pk, _KEY)
        w.u32(len(self.signed))
        for cert, sig in self.signed:
            w.var(cert)
            w.var(sig)

    @classmethod
    def _read(cls, r: _Reader) -> ShareKeysRequest:
        nonce, digest = r.take(_HASH), r.take(_HASH)
        count = r.count(4 + 2 * _KEY)
        keys = tuple((r.u32(), r.take(_KEY), r.take(_KEY)) for _ in range(count))
        signed_count = r.count(8)
        signed = tuple((r.var(), r.var()) for _ in range(signed_count))
        return cls(nonce, digest, keys, signed)


@dataclass(frozen=True)
class ShareKeysReply(_Message):
    """Client -> server: commitment to b_u and one sealed share pair per other member of U1."""

    KIND: ClassVar[int] = 4
    client_id: int
    session_id: bytes
    commitment: bytes
    shares: tuple[EncryptedShare, ...]

    def __post_init__(self) -> None:
        _check_id(self.client_id)
        _check_bytes("session id", self.session_id, _HASH)
        _check_bytes("commitment", self.commitment, _HASH)

    def _write(self, w: _Writer) -> None:
        w.u32(self.client_id)
        w.fixed(self.session_id, _HASH)
        w.fixed(self.commitment, _HASH)
        _write_shares(w, self.shares)

    @classmethod
    def _read(cls, r: _Reader) -> ShareKeysReply:
        return cls(r.u32(), r.take(_HASH), r.take(_HASH), _read_shares(r))


@dataclass(frozen=True)
class MaskedInputRequest(_Message):
    """Server -> one client of U2: the sealed shares other members of U2 addressed to it."""

    KIND: ClassVar[int] = 5
    recipient: int
    session_id: bytes
    shares: tuple[EncryptedShare, ...]

    def __post_init__(self) -> None:
        _check_id(self.recipient)
        _check_bytes("session id", self.session_id, _HASH)

    def _write(self, w: _Writer) -> None:
        w.u32(self.recipient)
        w.fixed(self.session_id, _HASH)
        _write_shares(w, self.shares)

    @classmethod
    def _read(cls, r: _Reader) -> MaskedInputRequest:
        return cls(r.u32(), r.take(_HASH), _read_shares(r))


@dataclass(frozen=True, eq=False)
class MaskedInputReply(_Message):
    """Client -> server: the double-masked quantised update y_u (unsigned words mod 2^k).

    ``accused`` lists the senders whose sealed shares this client could not open or whose
    shares did not match their commitments: it masked without them.
    """

    KIND: ClassVar[int] = 6
    client_id: int
    session_id: bytes
    vector: np.ndarray
    accused: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check_id(self.client_id)
        _check_bytes("session id", self.session_id, _HASH)
        if not isinstance(self.vector, np.ndarray):
            raise MalformedMessage("vector must be a numpy array")
        for cid in self.accused:
            _check_id(cid)

    def _write(self, w: _Writer) -> None:
        w.u32(self.client_id)
        w.fixed(self.session_id, _HASH)
        w.ids(self.accused)
        vec = self.vector
        if vec.ndim != 1 or vec.dtype.kind != "u":
            raise MalformedMessage(
                f"masked vector must be 1-D unsigned, got {vec.dtype} shape {vec.shape}"
            )
        w.u8(vec.dtype.itemsize * 8)
        w.u32(vec.shape[0])
        w.raw(vec.astype(vec.dtype.newbyteorder("<"), copy=False).tobytes())

    @classmethod
    def _read(cls, r: _Reader) -> MaskedInputReply:
        client, session, accused, bits = r.u32(), r.take(_HASH), r.ids(), r.u8()
        if bits not in (8, 16, 32, 64):
            raise MalformedMessage(f"word width {bits} is not 8, 16, 32 or 64 bits")
        size = bits // 8
        count = r.count(size)
        little = np.dtype(f"<u{size}")
        words = np.frombuffer(r.take(count * size), dtype=little)
        return cls(client, session, words.astype(little.newbyteorder("="), copy=False), accused)


@dataclass(frozen=True)
class UnmaskRequest(_Message):
    """Server -> every client of U3: who survived (reveal b shares) and who dropped (sk shares).

    ``signatures`` (actively secure variant) are the ConsistencyCheck signatures of survivors
    on ``alive``; a client reveals nothing unless at least ``t`` of them verify.
    """

    KIND: ClassVar[int] = 7
    session_id: bytes
    alive: tuple[int, ...]
    dropped: tuple[int, ...]
    signatures: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        _check_bytes("session id", self.session_id, _HASH)
        for cid in (*self.alive, *self.dropped):
            _check_id(cid)
        for cid, sig in self.signatures:
            _check_id(cid)
            _check_var("signature", sig)

    def _write(self, w: _Writer) -> None:
        w.fixed(self.session_id, _HASH)
        w.ids(self.alive)
        w.ids(self.dropped)
        w.u32(len(self.signatures))
        for cid, sig in self.signatures:
            w.u32(cid)
            w.var(sig)

    @classmethod
    def _read(cls, r: _Reader) -> UnmaskRequest:
        session, alive, dropped = r.take(_HASH), r.ids(), r.ids()
        count = r.count(8)
        signatures = tuple((r.u32(), r.var()) for _ in range(count))
        return cls(session, alive, dropped, signatures)


@dataclass(frozen=True)
class UnmaskReply(_Message):
    """Client -> server: its shares of b_u for alive u and of s_u^SK for dropped u."""

    KIND: ClassVar[int] = 8
    client_id: int
    session_id: bytes
    seed_shares: tuple[tuple[int, bytes], ...]
    key_shares: tuple[tuple[int, bytes], ...]

    def __post_init__(self) -> None:
        _check_id(self.client_id)
        _check_bytes("session id", self.session_id, _HASH)
        for owner, share in (*self.seed_shares, *self.key_shares):
            _check_id(owner)
            _check_bytes("share", share, _SHARE)

    def _write(self, w: _Writer) -> None:
        w.u32(self.client_id)
        w.fixed(self.session_id, _HASH)
        for group in (self.seed_shares, self.key_shares):
            w.u32(len(group))
            for owner, share in group:
                w.u32(owner)
                w.fixed(share, _SHARE)

    @classmethod
    def _read(cls, r: _Reader) -> UnmaskReply:
        client, session = r.u32(), r.take(_HASH)
        groups = []
        for _ in range(2):
            count = r.count(4 + _SHARE)
            groups.append(tuple((r.u32(), r.take(_SHARE)) for _ in range(count)))
        return cls(client, session, groups[0], groups[1])


@dataclass(frozen=True)
class ConsistencyCheckRequest(_Message):
    """Server -> every client of U3 (actively secure variant): the survivors it will unmask."""

    KIND: ClassVar[int] = 9
    session_id: bytes
    alive: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_bytes("session id", self.session_id, _HASH)
        for cid in self.alive:
            _check_id(cid)

    def _write(self, w: _Writer) -> None:
        w.fixed(self.session_id, _HASH)
        w.ids(self.alive)

    @classmethod
    def _read(cls, r: _Reader) -> ConsistencyCheckRequest:
        return cls(r.take(_HASH), r.ids())


@dataclass(frozen=True)
class ConsistencyCheckReply(_Message):
    """Client -> server: its signature over ``session.consistency_statement`` of that set."""

    KIND: ClassVar[int] = 10
    client_id: int
    session_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_id(self.client_id)
        _check_bytes("session id", self.session_id, _HASH)
        _check_var("signature", self.signature)

    def _write(self, w: _Writer) -> None:
        w.u32(self.client_id)
        w.fixed(self.session_id, _HASH)
        w.var(self.signature)

    @classmethod
    def _read(cls, r: _Reader) -> ConsistencyCheckReply:
        return cls(r.u32(), r.take(_HASH), r.var())


ServerMessage: TypeAlias = (
    AdvertiseKeysRequest
    | ShareKeysRequest
    | MaskedInputRequest
    | ConsistencyCheckRequest
    | UnmaskRequest
)
ClientMessage: TypeAlias = (
    AdvertiseKeysReply | ShareKeysReply | MaskedInputReply | ConsistencyCheckReply | UnmaskReply
)
Message: TypeAlias = ServerMessage | ClientMessage

_ALL: tuple[type[_Message], ...] = (
    AdvertiseKeysRequest,
    AdvertiseKeysReply,
    ShareKeysRequest,
    ShareKeysReply,
    MaskedInputRequest,
    MaskedInputReply,
    UnmaskRequest,
    UnmaskReply,
    ConsistencyCheckRequest,
    ConsistencyCheckReply,
)
_KINDS: dict[int, Any] = {cls.KIND: cls for cls in _ALL}


def decode_message(data: bytes) -> Message:
    """Parse bytes produced by ``to_bytes``; raises MalformedMessage on any deviation."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage(f"expected bytes, got {type(data).__name__}")
    r = _Reader(bytes(data))
    if r.take(3) != _MAGIC:
        raise MalformedMessage("not a secure-aggregation message (bad magic)")
    version, kind = r.u8(), r.u8()
    if version != _VERSION:
        raise MalformedMessage(
            f"wire version {version} is not supported (this build speaks {_VERSION}); "
            "update the client or the coordinator"
        )
    cls = _KINDS.get(kind)
    if cls is None:
        raise MalformedMessage(f"unknown message type {kind}")
    message: Message = cls._read(r)
    r.done()
    return message
