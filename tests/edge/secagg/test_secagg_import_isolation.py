"""edge.secagg runs on a Pi: it imports no TensorFlow, no gRPC and nothing from federated."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts TensorFlow, TFF or real processes

REPO = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = {"tensorflow", "tensorflow_federated", "grpc", "keras", "federated"}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {name}")
            return None

    sys.meta_path.insert(0, Block())
    import numpy as np
    import edge.secagg as sa

    # The server half may import edge.secagg, never the other way round.
    BLOCKED.discard("federated")
    from federated.secagg_server import ServerProtocol

    config = sa.SecAggConfig(client_ids=(1, 2, 3), vector_lengths=(4,))
    authority = sa.SigningKey.generate(sa.DeterministicRandom(b"authority"))

    def identity(cid):
        key = sa.SigningKey.generate(sa.DeterministicRandom(b"device %d" % cid))
        cert = sa.issue_certificate(authority, cid, "pi-%d" % cid, key.public)
        return sa.Identity(key, cert, authority.public)

    server = ServerProtocol(
        config, sa.DeterministicRandom(b"s"), lambda: 0.0, authority=authority.public
    )
    clients = {
        cid: sa.ClientProtocol(
            cid, config, sa.DeterministicRandom(bytes([cid])), lambda: 0.0, identity=identity(cid)
        )
        for cid in config.client_ids
    }
    updates = {cid: np.full(4, 0.25 * cid) for cid in clients}
    outbox = server.start()
    while not server.finished:
        for cid, message in outbox.items():
            reply = clients[cid].respond(message.to_bytes(), [updates[cid]], 1)
            server.receive(reply.to_bytes())
        outbox = server.poll()
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED | {"tensorflow", "grpc"})
    assert not leaked, leaked
    print(server.result.weight_sum, round(float(server.result.weighted_sum[0][0]), 6))
    """
)


def test_edge_secagg_runs_a_round_with_tensorflow_and_grpc_blocked() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "1.5"]
