"""The fleet's task and reply messages, typed: what the coordinator asks a Pi and what it answers.

Both sides build and read these classes instead of header dicts, so a field is named, typed and
checked in one place. On the wire each message is a frame (``edge.wire``): the control fields in
the JSON header, the bulk bytes (weights, a secure-aggregation message) in the payload. The header
keys and their meaning are the protocol between a Pi and a coordinator of another version, and
known-answer tests pin their bytes (tests/edge/test_tasks.py): renaming a key, changing a type or
dropping a field breaks an old Pi and must fail a test.

Decoding is strict: a missing field or one of the wrong type raises ``WireError`` naming it.
Unknown extra header keys are ignored, so a newer coordinator may add optional fields.

TensorFlow-free; imported by ``edge.fleet_client`` and ``federated.broker``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from edge.secagg import SecAggConfig
from edge.wire import Frame, WireError
from model.metrics import DEVICE_REPORT_FIELDS

# Task kinds, in the order a round uses them; "idle" means "nothing now, poll again".
IDLE, TRAIN, SECAGG, EVALUATE, DEPLOY = "idle", "train", "secagg", "evaluate", "deploy"
TASK_KINDS = (IDLE, TRAIN, SECAGG, EVALUATE, DEPLOY)
STATUS_OK, STATUS_ERROR = "ok", "error"


def _files(frame: Frame, key: str) -> dict[str, str]:
    """A ``{file name: sha256}`` map, every entry a string."""
    files = frame.get(key, dict)
    for name, digest in files.items():
        if not isinstance(name, str) or not isinstance(digest, str):
            raise WireError(f"header field {key!r} must map file names to sha256 strings")
    return dict(files)


def _number(frame: Frame, key: str) -> float:
    """A numeric field (JSON has one number type: an integral rate may arrive as int)."""
    value = frame.header.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"header field {key!r} must be a number, got {type(value).__name__}")
    return float(value)


# What a poll may say of the Pi's platform, each value at most PLATFORM_CHARS characters.
PLATFORM_FIELDS = ("machine", "python", "os", "trainer")
PLATFORM_CHARS = 64


# -- tasks: coordinator -> Pi ---------------------------------------------------------------------
@dataclass(frozen=True)
class PollRequest:
    """A Pi's long-poll: which version it has deployed (None: none yet); the sha256 of the
    device certificate it holds, so the coordinator refuses a Pi holding another device's
    certificate when it connects, not at its first round; and, for the operator's fleet view,
    its platform (``PLATFORM_FIELDS``: architecture, Python, OS, the trainer it last used).
    Nothing about its data."""

    deployed: int | None
    certificate: str | None = None
    platform: Mapping[str, str] | None = None

    def header(self) -> dict[str, Any]:
        """The frame header."""
        head: dict[str, Any] = {"kind": "poll", "deployed": self.deployed}
        if self.platform is not None:
            head["platform"] = dict(self.platform)
        if self.certificate is not None:
            head["certificate"] = self.certificate
        return head

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> PollRequest:
        """Read a poll; a malformed ``deployed`` counts as none (the Pi is sent the deployed
        version again, which is always safe), a malformed certificate digest as none; a
        malformed platform is dropped (it is shown, never acted on), and only the known fields,
        cut short, are kept."""
        deployed = header.get("deployed")
        ok = isinstance(deployed, int) and not isinstance(deployed, bool)
        cert = header.get("certificate")
        raw = header.get("platform")
        platform = None
        if isinstance(raw, Mapping):
            platform = {
                k: raw[k][:PLATFORM_CHARS] for k in PLATFORM_FIELDS if isinstance(raw.get(k), str)
            }
        return cls(deployed if ok else None, cert if isinstance(cert, str) else None, platform)


@dataclass(frozen=True)
class Heartbeat:
    """A Pi busy with a task says it is alive, every few seconds, so a Pi that dies mid-task is
    known to be gone within seconds instead of at the stage's deadline."""

    task: str

    def header(self) -> dict[str, Any]:
        """The frame header."""
        return {"kind": "heartbeat", "task": self.task}

    @classmethod
    def from_header(cls, header: Mapping[str, Any]) -> Heartbeat:
        """Read a heartbeat (the task id is for the log; liveness is the call itself)."""
        task = header.get("task")
        return cls(task if isinstance(task, str) else "")


@dataclass(frozen=True)
class IdleTask:
    """Nothing to do: poll again."""

    kind: ClassVar[str] = IDLE
    round: ClassVar[int | None] = None

    def header(self) -> dict[str, Any]:
        """The frame header."""
        return {"kind": IDLE}

    @classmethod
    def from_frame(cls, frame: Frame) -> IdleTask:
        """Decode (an idle task has no fields)."""
        return cls()


@dataclass(frozen=True)
class TrainTask:
    """Train the global model locally, then take part in the round's secure aggregation.

    The payload is the global weights (float32 bytes); the Pi checks them against
    ``weights_sha256``. ``train_files`` names the train program and manifest by sha256.
    """

    kind: ClassVar[str] = TRAIN
    round: int
    version: int
    weights_sha256: str
    train_files: dict[str, str]
    epochs: int
    local_steps: int | None
    lr: float
    client_id: int
    secagg: SecAggConfig

    def header(self) -> dict[str, Any]:
        """The frame header."""
        return {
            "kind": TRAIN,
            "round": self.round,
            "version": self.version,
            "weights_sha256": self.weights_sha256,
            "train_files": dict(self.train_files),
            "epochs": self.epochs,
            "local_steps": self.local_steps,
            "lr": float(self.lr),  # a previous Pi reads it as a float only
            "client_id": self.client_id,
            # The resolved threshold, never null: a Pi of the previous version reads it with
            # int(), and the session digest binds t, not how it was chosen.
            "secagg": {**self.secagg.to_dict(), "threshold": self.secagg.t},
        }

    @classmethod
    def from_frame(cls, frame: Frame) -> TrainTask:
        """Decode and check every field."""
        try:
            secagg = SecAggConfig.from_dict(frame.get("secagg", dict))
        except ValueError as e:  # ConfigError: name the header field it came in
            raise WireError(f"header field 'secagg': {e}") from e
        return cls(
            round=frame.get("round", int),
            version=frame.get("version", int),
            weights_sha256=frame.get("weights_sha256", str),
            train_files=_files(frame, "train_files"),
            epochs=frame.get("epochs", int),
            local_steps=frame.opt("local_steps", int),
            lr=_number(frame, "lr"),
            client_id=frame.get("client_id", int),
            secagg=secagg,
        )


@dataclass(frozen=True)
class SecAggTask:
    """One secure-aggregation stage: the payload is the server's message (``edge.secagg``)."""

    kind: ClassVar[str] = SECAGG
    round: int

    def header(self) -> dict[str, Any]:
        """The frame header."""
        return {"kind": SECAGG, "round": self.round}

    @classmethod
    def from_frame(cls, frame: Frame) -> SecAggTask:
        """Decode."""
        return cls(round=frame.get("round", int))


@dataclass(frozen=True)
class EvaluateTask:
    """Evaluate this exact deployable file on the Pi's held-out names; only metrics return.

    ``client_id`` and ``quality`` (both or neither; issue 22) ask the Pi to join the round's
    quality session: its confusion counts (true x predicted language) leave it only as its
    input to that secure-aggregation session, never in the evaluate reply. A Pi of a version
    before them ignores both (unknown header keys) and is dropped from that session alone.
    """

    kind: ClassVar[str] = EVALUATE
    round: int
    version: int
    files: dict[str, str]
    client_id: int | None = None
    quality: SecAggConfig | None = None

    def __post_init__(self) -> None:
        if (self.client_id is None) != (self.quality is None):
            raise WireError(
                "an evaluate task names both a quality client id and session, or neither"
            )

    def header(self) -> dict[str, Any]:
        """The frame header (the quality fields only when set, so a plain task keeps its bytes)."""
        head: dict[str, Any] = {
            "kind": EVALUATE,
            "round": self.round,
            "version": self.version,
            "files": self.files,
        }
        if self.quality is not None:
            head["client_id"] = self.client_id
            head["quality"] = {**self.quality.to_dict(), "threshold": self.quality.t}
        return head

    @classmethod
    def from_frame(cls, frame: Frame) -> EvaluateTask:
        """Decode."""
        quality = None
        raw = frame.opt("quality", dict)
        if raw is not None:
            try:
                quality = SecAggConfig.from_dict(raw)
            except ValueError as e:
                raise WireError(f"header field 'quality': {e}") from e
        return cls(
            frame.get("round", int),
            frame.get("version", int),
            _files(frame, "files"),
            frame.opt("client_id", int),
            quality,
        )


@dataclass(frozen=True)
class DeployTask:
    """Install this promoted (or rolled-back) version; it is not tied to a round."""

    kind: ClassVar[str] = DEPLOY
    round: ClassVar[int | None] = None
    version: int
    files: dict[str, str]

    def header(self) -> dict[str, Any]:
        """The frame header."""
        return {"kind": DEPLOY, "version": self.version, "files": self.files}

    @classmethod
    def from_frame(cls, frame: Frame) -> DeployTask:
        """Decode."""
        return cls(frame.get("version", int), _files(frame, "files"))


Task = IdleTask | TrainTask | SecAggTask | EvaluateTask | DeployTask
_TASKS: dict[str, type[IdleTask | TrainTask | SecAggTask | EvaluateTask | DeployTask]] = {
    IDLE: IdleTask,
    TRAIN: TrainTask,
    SECAGG: SecAggTask,
    EVALUATE: EvaluateTask,
    DEPLOY: DeployTask,
}


def decode_task(frame: Frame) -> Task:
    """The typed task a frame carries; an unknown kind is a ``WireError`` naming it."""
    kind = frame.get("kind", str)
    cls = _TASKS.get(kind)
    if cls is None:
        raise WireError(f"unknown task kind {kind!r}; this Pi knows {', '.join(TASK_KINDS)}")
    return cls.from_frame(frame)


# -- replies: Pi -> coordinator --------------------------------------------------------------
@dataclass(frozen=True)
class TrainReply:
    """Training finished: the loss and what the update is weighted by; never the update."""

    loss: float
    train_seconds: float
    lr: float
    local_steps: int | None
    examples: int
    trainer: str | None = None

    def header(self) -> dict[str, Any]:
        """The reply's header fields (the task id and status are added by :func:`reply_frame`)."""
        head: dict[str, Any] = {
            "loss": self.loss,
            "train_seconds": self.train_seconds,
            "lr": float(self.lr),  # a previous Pi reads it as a float only
            "local_steps": self.local_steps,
            "examples": self.examples,
        }
        if self.trainer is not None:
            head["trainer"] = self.trainer
        return head


@dataclass(frozen=True)
class SecAggReply:
    """The Pi's answer to a secure-aggregation stage; the payload is its message."""

    stage: str
    message: bytes = field(repr=False)

    def header(self) -> dict[str, Any]:
        """The reply's header fields."""
        return {"stage": self.stage}


@dataclass(frozen=True)
class EvaluateReply:
    """On-device metrics of one version (``model.metrics.DEVICE_REPORT_FIELDS``)."""

    version: int
    metrics: dict[str, Any]

    def header(self) -> dict[str, Any]:
        """The reply's header fields."""
        return {
            "metrics": {k: self.metrics[k] for k in DEVICE_REPORT_FIELDS},
            "version": self.version,
        }


@dataclass(frozen=True)
class DeployReply:
    """The version now installed."""

    deployed: int

    def header(self) -> dict[str, Any]:
        """The reply's header fields."""
        return {"deployed": self.deployed}


@dataclass(frozen=True)
class ErrorReply:
    """The task failed on the Pi; ``error`` says why (type and message)."""

    error: str

    def header(self) -> dict[str, Any]:
        """The reply's header fields."""
        return {"error": self.error}


Reply = TrainReply | SecAggReply | EvaluateReply | DeployReply | ErrorReply


def reply_frame(task_id: str, reply: Reply) -> tuple[dict[str, Any], bytes]:
    """Header and payload of a reply to task ``task_id``."""
    status = STATUS_ERROR if isinstance(reply, ErrorReply) else STATUS_OK
    payload = reply.message if isinstance(reply, SecAggReply) else b""
    return {"task": task_id, "status": status, **reply.header()}, payload


def decode_reply(kind: str, frame: Frame) -> Reply:
    """The typed reply to a task of ``kind``; strict like :func:`decode_task`."""
    if frame.get("status", str) == STATUS_ERROR:
        return ErrorReply(str(frame.header.get("error", "no reason given"))[:2000])
    if kind == TRAIN:
        return TrainReply(
            loss=_number(frame, "loss"),
            train_seconds=_number(frame, "train_seconds"),
            lr=_number(frame, "lr"),
            local_steps=frame.opt("local_steps", int),
            examples=frame.get("examples", int),
            trainer=frame.opt("trainer", str),
        )
    if kind == SECAGG:
        return SecAggReply(frame.get("stage", str), frame.payload)
    if kind == EVALUATE:
        return EvaluateReply(frame.get("version", int), frame.get("metrics", dict))
    if kind == DEPLOY:
        return DeployReply(frame.get("deployed", int))
    raise WireError(f"no reply is expected to a task of kind {kind!r}")
