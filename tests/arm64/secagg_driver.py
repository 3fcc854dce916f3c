"""Seeded secure-aggregation rounds whose every wire byte must be the same on every architecture.

Usage: python [-P] secagg_driver.py OUT.json

Runs, with DeterministicRandom seeds and fixed inputs (built from integers, so the inputs are
bit-identical everywhere before the protocol touches them):

* ``kat``: the known-answer round of tests/federated/test_secagg_server.py (3 clients, one
  vector of 3, weights 10/20/30, a float32 input and one clipped coordinate), message for
  message; its digest is the KAT_SHA256 there;
* ``dropouts``: 7 clients, vectors of 1000/250/7 floats (float64 and float32, some beyond the
  clip bound, non-dyadic values that need stochastic rounding), client 3 silent when masked
  inputs are collected (its mask key is rebuilt from Shamir shares) and client 6 silent when
  unmasking;
* ``ring64``: 4 clients, a 64-bit ring, client 4 silent at key sharing.

For each round it records the SHA-256 of every message in transcript order, the digest over
the length-prefixed messages (the KAT's scheme) and the server's result. Nothing here depends on
the machine: x86 and aarch64 must write the same JSON apart from the "platform" entry.
Standard library, numpy, pycryptodome and the pifed wheel only: no pytest. The round itself is
``federated.secagg_local.LocalRound``, the same relay the server tests and the benchmark use.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable

import numpy as np

from edge.secagg import DeterministicRandom, ManualClock, SecAggConfig, Stage
from federated.secagg_local import LocalRound, seeded_parties


def digest(wire: list[bytes]) -> str:
    """The KAT's digest: sha256 over each message's 4-byte little-endian length and bytes."""
    return hashlib.sha256(b"".join(len(d).to_bytes(4, "little") + d for d in wire)).hexdigest()


def run_round(
    config: SecAggConfig,
    server_seed: bytes,
    client_seed: Callable[[int], bytes],
    updates: dict[int, list[np.ndarray]],
    examples: dict[int, int],
    silent: dict[Stage, set[int]] | None = None,
) -> dict:
    """Drive one round over bytes; clients in ``silent[stage]`` never answer that stage."""
    clock = ManualClock()
    server, clients = seeded_parties(config, server_seed, client_seed, clock)
    rnd = LocalRound(server, clients, clock, updates, examples)
    for stage, cids in (silent or {}).items():
        rnd.silent[stage] = set(cids)
    rnd.run()
    wire = rnd.transcript
    result = server.result
    return {
        "messages": len(wire),
        "digest": digest(wire),
        "message_sha256": [hashlib.sha256(d).hexdigest()[:16] for d in wire],
        "result": {
            "survivors": list(result.survivors),
            "dropped": {str(c): Stage(s).name for c, s in sorted(result.dropped.items())},
            "weight_sum": result.weight_sum,
            "clip_count": result.clip_count,
            "ring_sum_sha256": hashlib.sha256(
                np.ascontiguousarray(result.ring_sum, dtype="<u8").tobytes()
            ).hexdigest(),
            "weighted_sum_sha256": hashlib.sha256(
                b"".join(
                    np.ascontiguousarray(v, dtype="<f8").tobytes() for v in result.weighted_sum
                )
            ).hexdigest(),
        },
    }


def kat_round() -> dict:
    """Exactly test_known_answer_vector_of_a_three_client_round's round."""
    config = SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(3,))
    updates = {
        1: [np.array([0.5, -0.25, 0.1])],
        2: [np.array([-1.5, 0.75, 0.2], dtype=np.float32)],
        3: [np.array([0.0, 0.3333, -0.9])],
    }
    return run_round(
        config,
        b"kat-server",
        lambda c: b"kat-client-%d" % c,
        updates,
        {c: 10 * c for c in (1, 2, 3)},
    )


def fixed_vector(label: bytes, length: int, dtype: type) -> np.ndarray:
    """Values in about [-1.27, 1.27], most not dyadic, from integers only (no float RNG)."""
    words = np.frombuffer(DeterministicRandom(label)(4 * length), dtype="<i4").astype(np.float64)
    return (words / 3.0 * 2.0**-29 * 0.95).astype(dtype)  # about 1 in 5 beyond the clip bound


def big_round(n: int, lengths: tuple[int, ...], bit_width: int, silent: dict, tag: bytes) -> dict:
    config = SecAggConfig(
        client_ids=tuple(range(1, n + 1)), vector_lengths=lengths, bit_width=bit_width
    )
    updates = {
        c: [
            fixed_vector(b"%s/x/%d/%d" % (tag, c, i), length, (np.float64, np.float32)[i % 2])
            for i, length in enumerate(lengths)
        ]
        for c in config.client_ids
    }
    examples = {c: 1 + 199 * c for c in config.client_ids}  # clients 6, 7 exceed max_weight 1000
    return run_round(
        config, tag + b"/server", lambda c: b"%s/client/%d" % (tag, c), updates, examples, silent
    )


def main() -> None:
    out = sys.argv[1]
    t0 = time.perf_counter()
    rounds = {
        "kat": kat_round(),
        "dropouts": big_round(
            7,
            (1000, 250, 7),
            32,
            {Stage.MASKED_INPUT_COLLECTION: {3}, Stage.UNMASKING: {6}},
            b"dropouts",
        ),
        "ring64": big_round(4, (300,), 64, {Stage.SHARE_KEYS: {4}}, b"ring64"),
    }
    report = {
        "rounds": rounds,
        "platform": {"machine": platform.machine(), "seconds": time.perf_counter() - t0},
    }
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps({k: v["digest"] for k, v in rounds.items()}))


if __name__ == "__main__":
    main()
