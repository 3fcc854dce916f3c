"""The fleet's task and reply messages: known answers, the previous version's bytes, strictness.

What a Pi and a coordinator of different versions must agree on is the header of every frame.
Each vector below is the exact header text (the frame is ``PFW1 | u32 length | this text |
payload``); a change to a key, a type or a field breaks a Pi in the field and must fail here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge.secagg import SecAggConfig, StageTimeouts
from edge.tasks import (
    DeployReply,
    DeployTask,
    ErrorReply,
    EvaluateReply,
    EvaluateTask,
    Heartbeat,
    IdleTask,
    PollRequest,
    SecAggReply,
    SecAggTask,
    TrainReply,
    TrainTask,
    decode_reply,
    decode_task,
    reply_frame,
)
from edge.wire import MAGIC, Frame, WireError, decode, encode

CFG = SecAggConfig(
    client_ids=(3, 1, 2),
    vector_lengths=(12,),
    threshold=None,
    bit_width=32,
    clip_bound=1.0,
    max_weight=1000,
    timeouts=StageTimeouts(600.0, 60.0, 60.0, 60.0),
)
FILES = {"manifest.json": "0303", "model_float.tflite": "0404"}
SECAGG_JSON = (
    '{"bit_width":32,"client_ids":[1,2,3],"clip_bound":1.0,"max_weight":1000,"threshold":3,'
    '"timeouts":[600.0,60.0,60.0,60.0],"vector_lengths":[12]}'
)
TRAIN = TrainTask(
    round=4,
    version=3,
    weights_sha256="ab",
    train_files={"manifest.json": "01", "train.tflite": "02"},
    epochs=1,
    local_steps=None,
    lr=0.3,
    client_id=2,
    secagg=CFG,
)
METRICS = {"n": 20, "accuracy": 0.75, "balanced_accuracy": 0.5, "macro_f1": 0.25}

# (name, header the code builds, its exact canonical text).
VECTORS: list[tuple[str, dict[str, Any], str]] = [
    ("idle", IdleTask().header(), '{"kind":"idle"}'),
    ("heartbeat", Heartbeat("t1").header(), '{"kind":"heartbeat","task":"t1"}'),
    ("poll", PollRequest(5).header(), '{"deployed":5,"kind":"poll"}'),
    ("poll-first", PollRequest(None).header(), '{"deployed":null,"kind":"poll"}'),
    (
        "train",
        TRAIN.header(),
        '{"client_id":2,"epochs":1,"kind":"train","local_steps":null,"lr":0.3,"round":4,'
        f'"secagg":{SECAGG_JSON},"train_files":{{"manifest.json":"01","train.tflite":"02"}},'
        '"version":3,"weights_sha256":"ab"}',
    ),
    (
        # An integral rate is still sent as a float: the previous Pi accepts floats only.
        "train-steps",
        TrainTask(4, 3, "ab", {"train.tflite": "02"}, 2, 30, 1, 1, CFG).header(),
        '{"client_id":1,"epochs":2,"kind":"train","local_steps":30,"lr":1.0,"round":4,'
        f'"secagg":{SECAGG_JSON},"train_files":{{"train.tflite":"02"}},"version":3,'
        '"weights_sha256":"ab"}',
    ),
    ("secagg", SecAggTask(4).header(), '{"kind":"secagg","round":4}'),
    (
        "evaluate",
        EvaluateTask(4, 5, FILES).header(),
        '{"files":{"manifest.json":"0303","model_float.tflite":"0404"},"kind":"evaluate",'
        '"round":4,"version":5}',
    ),
    (
        "deploy",
        DeployTask(5, FILES).header(),
        '{"files":{"manifest.json":"0303","model_float.tflite":"0404"},"kind":"deploy",'
        '"version":5}',
    ),
    (
        "train-reply",
        reply_frame("t1", TrainReply(1.25, 2.5, 0.3, None, 96))[0],
        '{"examples":96,"local_steps":null,"loss":1.25,"lr":0.3,"status":"ok","task":"t1",'
        '"train_seconds":2.5}',
    ),
    (
        "secagg-reply",
        reply_frame("t1", SecAggReply("ShareKeysRequest", b"xy"))[0],
        '{"stage":"ShareKeysRequest","status":"ok","task":"t1"}',
    ),
    (
        # Only the report fields leave the Pi, whatever else the evaluator computed.
        "evaluate-reply",
        reply_frame("t1", EvaluateReply(5, {**METRICS, "per_class_recall": [1.0]}))[0],
        '{"metrics":{"accuracy":0.75,"balanced_accuracy":0.5,"macro_f1":0.25,"n":20},'
        '"status":"ok","task":"t1","version":5}',
    ),
    (
        "deploy-reply",
        reply_frame("t1", DeployReply(5))[0],
        '{"deployed":5,"status":"ok","task":"t1"}',
    ),
    (
        "error-reply",
        reply_frame("t1", ErrorReply("ValueError: bad"))[0],
        '{"error":"ValueError: bad","status":"error","task":"t1"}',
    ),
]


@pytest.mark.parametrize(("name", "header", "text"), VECTORS, ids=[v[0] for v in VECTORS])
def test_known_answer_headers(name: str, header: dict[str, Any], text: str) -> None:
    frame = encode(header, b"payload")
    assert frame[:4] == MAGIC
    assert int.from_bytes(frame[4:8], "little") == len(text.encode())
    assert frame[8:].decode() == text + "payload"


def test_a_train_task_is_the_previous_coordinators_bytes() -> None:
    """The header the coordinator built by hand before the typed tasks, field by field."""
    sa = CFG
    previous = {
        "kind": "train",
        "round": 4,
        "version": 3,
        "weights_sha256": "ab",
        "train_files": {"manifest.json": "01", "train.tflite": "02"},
        "epochs": 1,
        "local_steps": None,
        "lr": 0.3,
        "secagg": {
            "client_ids": list(sa.client_ids),
            "vector_lengths": list(sa.vector_lengths),
            "threshold": sa.t,
            "bit_width": sa.bit_width,
            "clip_bound": sa.clip_bound,
            "max_weight": sa.max_weight,
            "timeouts": [600.0, 60.0, 60.0, 60.0],
        },
        "client_id": 2,
    }
    assert encode(TRAIN.header()) == encode(previous)


def test_a_previous_pi_reads_the_secagg_config() -> None:
    """How the previous edge client rebuilt the config from the header (int/float casts)."""
    sa = json.loads(encode(TRAIN.header())[8:])["secagg"]
    rebuilt = SecAggConfig(
        client_ids=tuple(int(i) for i in sa["client_ids"]),
        vector_lengths=tuple(int(n) for n in sa["vector_lengths"]),
        threshold=int(sa["threshold"]),
        bit_width=int(sa["bit_width"]),
        clip_bound=float(sa["clip_bound"]),
        max_weight=int(sa["max_weight"]),
        timeouts=StageTimeouts(*(float(x) for x in sa["timeouts"])),
    )
    assert rebuilt.digest == CFG.digest


TASKS = [IdleTask(), TRAIN, SecAggTask(4), EvaluateTask(4, 5, FILES), DeployTask(5, FILES)]


@pytest.mark.parametrize("task", TASKS, ids=[t.kind for t in TASKS])
def test_tasks_round_trip_through_the_wire(task: Any) -> None:
    got = decode_task(decode(encode({**task.header(), "task": "t9"}, b"w"), 1 << 16))
    assert got == task or (got.kind == task.kind == "train" and got.secagg.digest == CFG.digest)


def test_replies_round_trip() -> None:
    for kind, reply in (
        ("train", TrainReply(1.25, 2.5, 0.3, 30, 96, "numpy")),
        ("secagg", SecAggReply("UnmaskRequest", b"bytes")),
        ("evaluate", EvaluateReply(5, METRICS)),
        ("deploy", DeployReply(5)),
        ("train", ErrorReply("RuntimeError: crashed")),
    ):
        head, payload = reply_frame("t1", reply)
        assert decode_reply(kind, decode(encode(head, payload), 1 << 16)) == reply


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ({"kind": "reboot"}, "unknown task kind 'reboot'"),
        ({"round": 1}, "'kind' is missing"),
        ({"kind": "secagg"}, "'round' is missing"),
        ({"kind": "secagg", "round": "1"}, "'round' must be int"),
        ({"kind": "secagg", "round": True}, "'round' must be int"),
        ({"kind": "deploy", "version": 1, "files": {"a": 1}}, "map file names to sha256"),
        ({**TRAIN.header(), "lr": "fast"}, "'lr' must be a number"),
        ({**TRAIN.header(), "secagg": {"client_ids": [1, 2]}}, "missing field"),
    ],
)
def test_a_malformed_task_names_the_field(header: dict[str, Any], error: str) -> None:
    with pytest.raises(WireError, match=error):
        decode_task(Frame(header))


def test_a_malformed_reply_names_the_field() -> None:
    with pytest.raises(WireError, match="'examples' must be int"):
        decode_reply(
            "train",
            Frame({"status": "ok", "loss": 1.0, "train_seconds": 1.0, "lr": 0.1, "examples": 1.5}),
        )
    with pytest.raises(WireError, match="no reply is expected"):
        decode_reply("idle", Frame({"status": "ok"}))
