"""This Pi's part in one round's secure aggregation: who it is, its update, when it leaves.

The same member answers the training session (its update) and the evaluate stage's quality
session (its confusion counts, :func:`quality_input`). Three rules, kept in one place so the
fleet client and the in-process test devices run the same code:

- **binding**: the session's client id is the coordinator's id for the authenticated device,
  and it must be this Pi's certificate's device id; a :class:`~edge.tasks.TrainTask` for any
  other id is refused (``CertificateError``), since signing as another client is what the
  actively secure protocol forbids;
- **the update lives for one session**: kept in memory from training to the unmasking request,
  then forgotten;
- **a Pi whose own side fails leaves at once**: any ``SecAggError`` (or ``ValueError``) raised
  while answering -- a non-finite update, a weight out of range, a message it refuses --
  ends its session here; the caller reports the error to the coordinator, which drops the Pi
  from the round at once instead of waiting out the stage.
"""

from __future__ import annotations

import numpy as np

from edge.secagg import (
    CertificateError,
    ClientProtocol,
    SecAggConfig,
    SecAggError,
    UnmaskRequest,
    decode_message,
)
from edge.secagg.identity import Identity
from edge.tasks import EvaluateTask, SecAggReply, TrainTask
from edge.wire import WireError


def check_binding(client_id: int, identity: Identity) -> None:
    """Refuse a session id that is not this Pi's certified device id (raises
    ``CertificateError``)."""
    mine = identity.certificate.device_id
    if client_id != mine:
        raise CertificateError(
            f"the coordinator asked this Pi to take part as client {client_id}, but its "
            f"certificate is for device {mine} ({identity.certificate.device_name!r}); refusing. "
            "If this Pi was re-enrolled, copy its new device.cert and token together"
        )


def _new_secagg_client(client_id: int, config: SecAggConfig, identity: Identity) -> ClientProtocol:
    """The secure-aggregation client for one session (the one place the library is built)."""
    check_binding(client_id, identity)
    return ClientProtocol(client_id, config, identity=identity)


def quality_input(counts: np.ndarray, config: SecAggConfig) -> np.ndarray:
    """The confusion counts as the quality session's input vector (float64, row-major).

    The session sums them exactly only if every count is a level of its own: ``scale`` 1 and
    ``max_weight`` 1 (the weight, 1 per Pi, is then the number of Pis summed) and no count above
    ``clip_bound`` (``edge.secagg.quantize``: stochastic rounding leaves an integral level as it
    is). A config that would round, weight or clip a count is refused (``ValueError``) rather
    than summed inexactly.
    """
    flat = np.asarray(counts, dtype=np.int64).reshape(-1)
    q = config.quantisation
    if config.vector_lengths != (flat.size,):
        raise ValueError(
            f"the quality session sums {config.vector_lengths} values, this model's confusion "
            f"matrix has {flat.size}; the coordinator and the Pi disagree on the languages"
        )
    if q.scale != 1.0 or q.max_weight != 1:
        raise ValueError(
            f"a quality session needs scale 1 and max_weight 1 to sum counts exactly, got scale "
            f"{q.scale} and max_weight {q.max_weight}; update the coordinator"
        )
    if flat.size and (flat.min() < 0 or flat.max() > q.clip_bound):
        raise ValueError(
            f"a confusion count of {int(flat.max())} exceeds the quality session's clip bound "
            f"{q.clip_bound}; the coordinator must raise it (federated.quality) for this Pi's "
            "held-out set"
        )
    return flat.astype(np.float64)


class SecAggMember:
    """One session's client and update; :meth:`leave` forgets both."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._client: ClientProtocol | None = None
        self._update: tuple[np.ndarray, int] | None = None

    @property
    def active(self) -> bool:
        """Whether this Pi is in a session (trained and not yet done or gone)."""
        return self._client is not None

    def begin(self, task: TrainTask | EvaluateTask, update: np.ndarray, examples: int) -> None:
        """Join the session ``task`` opens with this input (``CertificateError`` if the task's
        client id is not this Pi's): a training update, or an evaluate task's confusion counts
        (its quality session, issue 22)."""
        self.leave()
        if isinstance(task, TrainTask):
            client_id, config = task.client_id, task.secagg
        elif task.quality is None or task.client_id is None:
            raise WireError("this evaluate task opens no quality session; nothing to join")
        else:
            client_id, config = task.client_id, task.quality
        self._client = _new_secagg_client(client_id, config, self.identity)
        self._update = (update, examples)

    def join_quality(self, task: EvaluateTask, counts: np.ndarray) -> None:
        """Join the evaluate task's quality session with this Pi's confusion counts (weight 1;
        ``ValueError`` or ``SecAggError`` if they cannot be summed exactly or the id is not
        this Pi's: the caller logs it and stays out, which costs only the fleet figure)."""
        if task.quality is None:
            raise WireError("this evaluate task opens no quality session; nothing to join")
        self.begin(task, quality_input(counts, task.quality), 1)

    def answer(self, payload: bytes) -> SecAggReply:
        """The reply to one stage's request; on any failure of this Pi's own side the session
        is left (and the error raised for the caller to report)."""
        if self._client is None or self._update is None:
            raise WireError(
                "secure-aggregation request without a task that opened a session on this Pi"
            )
        try:
            msg = decode_message(payload)
            delta, n = self._update
            reply = self._client.respond(msg, [delta], n)
        except SecAggError:
            self.leave()
            raise
        except (ValueError, TypeError) as e:  # the library's own input checks, pre issue 19
            self.leave()
            raise SecAggError(f"{type(e).__name__}: {e}") from e
        if isinstance(msg, UnmaskRequest):
            self._update = None  # the update is no longer needed: forget it
        return SecAggReply(type(msg).__name__, reply.to_bytes())

    def leave(self) -> None:
        """End this Pi's part in the session: forget the client state and the update."""
        if self._client is not None:
            self._client.abort()
        self._client = None
        self._update = None
